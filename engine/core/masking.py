"""Secret values masked out of what people and the API read (logs, task and flow outputs).

A secret is masked where it is rendered: the worker masks the values its task rendered or read
(``secret()``, SECRET inputs) out of the task's log lines and outputs, and the decider out of flow
outputs, so no event or log line ever carries one and every reader (API, SSE, indexer, CLI) sees
the mask.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MASK = "********"

# Values this short would mask ordinary text everywhere ("1", "true"): Kestra masks them too, but a
# mask that hides every "a" in a log is no protection and unreadable.
MIN_MASKED = 3


def masked_text(text: str, secrets: Iterable[str]) -> str:
    # Longest first: a secret that contains another is masked whole.
    for secret in sorted((s for s in secrets if len(s) >= MIN_MASKED), key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def masked(value: Any, secrets: Iterable[str]) -> Any:
    """``value`` with every secret inside its strings (keys included) replaced by the mask."""
    values = tuple(secrets)
    if not values:
        return value
    if isinstance(value, str):
        return masked_text(value, values)
    if isinstance(value, Mapping):
        return {masked(k, values): masked(v, values) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(masked(v, values) for v in value)
    return value
