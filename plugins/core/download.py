"""http.Download: an HTTP response body streamed to internal storage (Kestra's ``core.http.Download``,
alias ``fs.http.Download``). Outputs ``uri``, ``code``, ``headers`` and ``length``.

The body goes to a local file chunk by chunk and from there to storage, so its size is bounded by the
disk, not memory (``options.maxContentLength`` caps it when set). As in Kestra: a body whose size is not
the ``Content-Length`` fails; an empty body fails unless ``failOnEmptyResponse: false`` (a warning then)
or ``options.allowFailed``; a ``Content-Disposition`` file name names the stored file; a response code
>= 400 fails unless allowed (``allowFailed``, ``options.allowedResponseCodes``), like http.Request.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from engine.core.errors import TaskFailed
from plugins.api import RunContext, TaskResult, runnable
from plugins.core.http import Request, RequestOptions, body_chunks, header_lists, sent
from plugins.files import put_task_file, scratch_dir, temp_name

P = "io.kestra.plugin.core.http."


class Download(Request, frozen=True):
    failOnEmptyResponse: bool = True


def _extension(uri: str) -> str | None:
    last = urlsplit(uri).path.rsplit("/", 1)[-1]
    return last[last.rindex(".") :] if "." in last else None


_FILENAME = re.compile(r"""filename\*?\s*=\s*(?:[\w-]+'[^']*')?"?([^";]+)"?""", re.I)


def filename_from(disposition: str | None) -> str | None:
    """The file name of a ``Content-Disposition`` header (``filename*`` wins), without any directory."""
    if not disposition:
        return None
    name = None
    for part in disposition.split(";"):
        match = _FILENAME.fullmatch(part.strip())
        if match and (name is None or part.strip().lower().startswith("filename*")):
            name = unquote(match.group(1).strip())
    if not name:
        return None
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    return quote(name, safe="") if name not in ("", ".", "..") else None


def _allowed(props: Download, code: int) -> bool:
    options = props.options or RequestOptions()
    if options.allowedResponseCodes is not None:
        return code in options.allowedResponseCodes
    return code < 400 or bool(props.allowFailed or options.allowFailed)


async def run(props: Download, ctx: RunContext) -> TaskResult:
    options = props.options or RequestOptions()
    with scratch_dir(ctx) as tmp:
        target = tmp / temp_name(_extension(props.uri))
        size = 0
        async with sent(props) as response:
            with target.open("wb") as out:
                # decoded (gzip...): the file as the server meant it
                async for chunk in body_chunks(response, props.uri, options.maxContentLength):
                    size += len(chunk)
                    out.write(chunk)
        code = response.status_code
        headers = header_lists(response)
        if not _allowed(props, code):
            raise TaskFailed(f"Failed http request with response code '{code}'", outputs={"code": code})
        expected = response.headers.get("Content-Length")
        encoded = response.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")
        if expected is not None and expected.isdigit() and int(expected) != size and not encoded:
            raise TaskFailed(f"Invalid size, got {size}, expected {expected}")
        if size == 0:
            if props.failOnEmptyResponse and not options.allowFailed:
                raise TaskFailed(f"No response from server: {props.uri} sent an empty body (code {code})")
            ctx.log("WARN", f"File '{props.uri}' is empty")
        file_name = filename_from(response.headers.get("Content-Disposition"))
        uri = await put_task_file(ctx, target, file_name)
    ctx.log("DEBUG", f"File '{props.uri}' downloaded with size '{size}'")
    outputs: dict[str, Any] = {"uri": uri, "code": code, "headers": headers, "length": size}
    return TaskResult(outputs=outputs)


SPECS = [
    runnable(
        P + "Download",
        Download,
        run,
        "Download a file over HTTP into internal storage (streamed) → outputs `uri`, `code`, `headers`, "
        "`length`.",
        aliases=("io.kestra.plugin.fs.http.Download",),
    ),
]
