"""The library's own error: a filter or function given what it cannot work with (named in the message)."""

from __future__ import annotations


class FilterError(ValueError):
    """A filter or function was given something it cannot work with."""
