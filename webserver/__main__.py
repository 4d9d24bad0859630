"""``python -m webserver openapi [-o FILE]``: export the OpenAPI 3.1 document without a server."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from webserver.app import openapi_schema


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "openapi":
        sys.stderr.write("usage: python -m webserver openapi [-o FILE]\n")
        return 2
    text = json.dumps(openapi_schema(), indent=2) + "\n"
    if len(argv) >= 3 and argv[1] in ("-o", "--output"):
        Path(argv[2]).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
