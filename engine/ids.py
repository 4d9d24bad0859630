"""New execution ids: random, so they live outside the core (which derives every other id)."""

from __future__ import annotations

import uuid

from engine.core.tree import base62_id


def new_execution_id() -> str:
    """Kestra-style 22-character base62 id (random)."""
    return base62_id(uuid.uuid4().int)
