"""Kestra's state names, shared by executions, taskruns and attempts."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    CREATED = "CREATED"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    RESTARTED = "RESTARTED"
    KILLING = "KILLING"
    RETRYING = "RETRYING"
    RESUBMITTED = "RESUBMITTED"  # its worker was lost: the task goes to another worker as a new attempt
    SUCCESS = "SUCCESS"
    WARNING = "WARNING"
    FAILED = "FAILED"
    KILLED = "KILLED"
    CANCELLED = "CANCELLED"
    SKIPPED = "SKIPPED"
    RETRIED = "RETRIED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def failed(self) -> bool:
        return self in FAILED_STATES


TERMINAL = frozenset(
    {State.SUCCESS, State.WARNING, State.FAILED, State.KILLED, State.CANCELLED, State.SKIPPED, State.RETRIED}
)

FAILED_STATES = frozenset({State.FAILED, State.KILLED, State.CANCELLED})

# A state from its name by a lookup: ``State(name)`` costs 1 µs here, and a step made several per
# taskrun. A name is its member's equal (a StrEnum), so ``name in TERMINAL`` needs no conversion.
STATE_OF: dict[str, State] = {s.value: s for s in State}

# Worst-first: the state of a block is the worst of its children.
_SEVERITY = {
    State.KILLED: 4,
    State.FAILED: 3,
    State.CANCELLED: 3,
    State.WARNING: 2,
    State.SUCCESS: 1,
    State.SKIPPED: 0,
}


def worst(states: list[State]) -> State:
    """The combined state of finished children (SUCCESS when there are none)."""
    result = State.SUCCESS
    for s in states:
        if _SEVERITY.get(s, 1) > _SEVERITY.get(result, 1):
            result = s
    return result
