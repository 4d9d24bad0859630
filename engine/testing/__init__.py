"""Drive the decider in memory, without a server: for unit tests of flows and of the decider.

``simulate`` plays the executor and the worker: each dispatched taskrun gets an attempt whose
outcome comes from ``outcomes`` (a state name, or a callable returning ``(state, outputs)``).

``engine.testing.memory.MemoryStore`` is every store port in memory, and
``engine.testing.run.MemoryEngine`` runs the real executor and worker on it (no server).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from engine.core import events as ev
from engine.core.accept import accept
from engine.core.decider import Dispatch, Kill, NotifyParent, StartRetry, StartSubflow, Timer, settle
from engine.core.execution import Execution, evolve
from engine.core.model import Flow

Outcome = str | Callable[[Dispatch], tuple[str, dict[str, Any]]]


@dataclass
class Simulation:
    state: Execution
    events: list[ev.Event] = field(default_factory=list)
    dispatched: list[Dispatch] = field(default_factory=list)
    subflows: list[StartSubflow] = field(default_factory=list)
    kills: list[Kill] = field(default_factory=list)
    notified: list[NotifyParent] = field(default_factory=list)
    timers: list[Timer] = field(default_factory=list)
    retries: list[StartRetry] = field(default_factory=list)

    def taskrun(self, task_id: str, value: str | None = None) -> Any:
        for tr in self.state.taskruns.values():
            if tr.task_id == task_id and (value is None or tr.value == value):
                return tr
        raise KeyError(task_id)

    def states(self) -> dict[str, str]:
        """task_id (with [value] inside loops) -> state."""
        return {
            (f"{tr.task_id}[{tr.value}]" if tr.value is not None else tr.task_id): tr.state
            for tr in self.state.taskruns.values()
        }


class Clock:
    def __init__(self, start: datetime | None = None) -> None:
        self.t = start or datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> str:
        self.t += timedelta(milliseconds=1)
        return self.t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def default_renderer() -> Any:
    from engine.expressions import Expressions

    return Expressions()


def simulate(
    flow: Flow,
    outcomes: Mapping[str, Outcome] | None = None,
    *,
    inputs: Mapping[str, Any] | None = None,
    execution_id: str = "exec",
    renderer: Any = None,
    max_rounds: int = 10_000,
    interrupt: Callable[[Simulation], list[ev.Input]] | None = None,
    fire_timers: bool = False,
    created: ev.ExecutionCreated | None = None,
) -> Simulation:
    """Run ``flow`` to its end (or until nothing is runnable) and return what happened.

    ``created`` (e.g. the next try a ``StartRetry`` asks for) replaces the first event; the clock
    then starts at its date."""
    renderer = renderer or default_renderer()
    outcomes = outcomes or {}
    if created is not None:
        clock = Clock(datetime.fromisoformat(created.date.replace("Z", "+00:00")))
    else:
        clock = Clock()
        created = ev.ExecutionCreated(
            date=clock(),
            execution_id=execution_id,
            namespace=flow.namespace,
            flow_id=flow.id,
            flow_revision=flow.revision,
            inputs=dict(inputs or {}),
        )
    state = evolve(None, created)
    assert state is not None
    sim = Simulation(state, [created])
    return drive(
        sim,
        flow,
        [],
        outcomes,
        renderer=renderer,
        max_rounds=max_rounds,
        interrupt=interrupt,
        fire_timers=fire_timers,
        clock=clock,
    )


def drive(
    sim: Simulation,
    flow: Flow,
    queue: list[ev.Input],
    outcomes: Mapping[str, Outcome] | None = None,
    *,
    renderer: Any = None,
    max_rounds: int = 10_000,
    interrupt: Callable[[Simulation], list[ev.Input]] | None = None,
    fire_timers: bool = False,
    clock: Clock | None = None,
) -> Simulation:
    """Feed ``queue`` to a simulation and go on until nothing more happens (e.g. after a restart)."""
    renderer = renderer or default_renderer()
    outcomes = outcomes or {}
    clock = clock or Clock(datetime(2026, 1, 2, tzinfo=UTC))
    for _ in range(max_rounds):
        now = clock()
        for item in queue:
            for event in accept(sim.state, flow, item, now):
                evolve(sim.state, event)
                sim.events.append(event)
        queue = []
        decision = settle(sim.state, flow, now, renderer.for_step(now, f"{sim.state.id}:{len(sim.events)}"))
        sim.events.extend(decision.events)
        for effect in decision.effects:
            if isinstance(effect, Dispatch):
                sim.dispatched.append(effect)
                outcome = outcomes.get(effect.task.id, "SUCCESS")
                result, outputs = outcome(effect) if callable(outcome) else (outcome, {})
                if result == "RUNNING":
                    queue.append(
                        ev.AttemptStarted(date=clock(), taskrun_id=effect.taskrun_id, attempt=effect.attempt)
                    )
                    continue
                queue.append(
                    ev.AttemptStarted(date=clock(), taskrun_id=effect.taskrun_id, attempt=effect.attempt)
                )
                queue.append(
                    ev.AttemptEnded(
                        date=clock(),
                        taskrun_id=effect.taskrun_id,
                        attempt=effect.attempt,
                        state=result,
                        outputs=outputs,
                    )
                )
            elif isinstance(effect, StartSubflow):
                sim.subflows.append(effect)
            elif isinstance(effect, Kill):
                sim.kills.append(effect)
            elif isinstance(effect, NotifyParent):
                sim.notified.append(effect)
            elif isinstance(effect, StartRetry):
                sim.retries.append(effect)
            elif isinstance(effect, Timer):
                sim.timers.append(effect)
                if fire_timers:
                    queue.append(effect.input)
        if interrupt is not None:
            queue.extend(interrupt(sim))
        if not queue:
            return sim
    raise AssertionError(f"simulation did not end within {max_rounds} rounds")


T = TypeVar("T")


def run_then_collect(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on its own event loop, then collect its garbage at once: a connection or socket
    it left open fails the caller (an AssertionError listing the ResourceWarnings), not whatever test
    the garbage collector happens to run in next. For tests that kill NATS nodes under clients."""
    import asyncio
    import gc
    import warnings

    try:
        return asyncio.run(coro)
    finally:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            gc.collect()
        leaked = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
        assert not leaked, leaked
