"""What the core needs from the outside, as typed protocols (it imports no implementation).

``Templates`` is the expression language bound to one step of the decider: everything a
template may ask for that is not in the execution (``now()``, ``uuid()``, ``randomInt()``,
``envs``, ``secret()``) is derived from that step (its time and a seed made of the execution
id and the step's stream sequence) or fixed for the process, so the same history always
decides the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class Templates(Protocol):
    """Renders Kestra expressions for one decider step."""

    @property
    def envs(self) -> Mapping[str, str]:
        """``envs.*``: the process's ``ENV_*`` variables, read once."""
        ...

    def render_value(self, value: Any, variables: Mapping[str, Any]) -> Any:
        """Every string inside ``value`` rendered against ``variables``."""
        ...

    def load_yaml(self, text: str) -> Any:
        """Parse a YAML value (a YAML-typed flow output); raises on bad YAML."""
        ...
