"""Attempts that will never report: their worker is gone, or their end never came.

A worker records each attempt it announces (one running past 20 ms) as running in the store until
the attempt's end is stored: in the inbox, or in the step of this process's executor. So an attempt
whose mark outlives its worker's heartbeat was lost with the worker. And an attempt the history shows
running, announced by a worker, whose mark is gone, had its end stored: if that end is neither in
the inbox nor in the history a while later, it was lost on its way. Seen in chaos runs (seed 120):
a deposed executor took the partition's inbox consumer, and the end it was handed was never folded.
Nothing else would ever end such a taskrun. Either way the attempt is declared lost: it fails, and
the next attempt goes to a worker (Kestra's RESUBMITTED). A task whose end was lost then runs twice;
the alternative is an execution that never ends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from engine.core import events as ev
from engine.core.execution import Execution
from engine.core.ports import ExecutorStore
from engine.logs import get_logger

log = get_logger("engine.lost")

_Key = tuple[str, str, int]  # execution, taskrun, attempt


class LostAttempts:
    def __init__(
        self,
        store: ExecutorStore,
        owns: Callable[[str], bool],
        clock: Callable[[], str],
        open_states: Callable[[], Iterable[Execution]],
        read_leader: Callable[[str], Awaitable[Execution | None]],
    ) -> None:
        self.store = store
        self.owns = owns  # an execution of a partition this executor holds
        self.clock = clock
        self.open_states = open_states  # the executions this executor holds in memory
        self.read_leader = read_leader  # an execution as the stream's leader has it
        self._unmarked: dict[_Key, str] = {}  # seen at the last check: announced, running, no mark

    async def check(self) -> int:
        """Declare lost every attempt found lost since the last check; returns how many."""
        held = await self.store.running_attempts()
        unmarked = self._without_mark({(w, eid, trid) for w, eid, trid, _ in held})
        # Twice in a row, a check's period apart: an end reported just now has had time to land.
        twice = [(key, w) for key, w in unmarked.items() if self._unmarked.get(key) == w]
        self._unmarked = unmarked
        if not held and not twice:
            return 0
        live = await self.store.live_workers()
        lost = 0
        for worker, execution_id, taskrun_id, attempt in held:
            if worker in live or not self.owns(execution_id):
                continue
            await self._declare(execution_id, taskrun_id, attempt, worker, f"worker {worker} lost")
            await self.store.clear_running(worker, execution_id, taskrun_id)
            lost += 1
        for (execution_id, taskrun_id, attempt), worker in twice:
            if await self._end_lost(execution_id, taskrun_id, attempt, worker):
                why = f"the end of attempt {attempt} on worker {worker} never arrived"
                await self._declare(execution_id, taskrun_id, attempt, worker, why)
                lost += 1
        return lost

    def _without_mark(self, marked: set[tuple[str, str, str]]) -> dict[_Key, str]:
        """Attempts the history shows running, announced by a worker, with no running mark."""
        out: dict[_Key, str] = {}
        for state in self.open_states():
            if state.is_terminal or not self.owns(state.id):
                continue
            for tr in state.taskruns.values():
                if tr.state != "RUNNING" or not tr.attempts:
                    continue
                current = tr.attempts[-1]
                worker = current.worker_id
                if current.state == "RUNNING" and worker and (worker, state.id, tr.id) not in marked:
                    out[(state.id, tr.id, current.number)] = worker
        return out

    async def _end_lost(self, execution_id: str, taskrun_id: str, attempt: int, worker: str) -> bool:
        # The mark as the leader has it: the list of marks reads replicas, which may lag.
        if await self.store.running_attempt(worker, execution_id, taskrun_id) is not None:
            return False
        # The inbox first, the history second: an end consumed between the two reads is in the
        # history by then (the executor acknowledges an input once its step is stored).
        ended = f"{execution_id}:{taskrun_id}:{attempt}:ended"
        if await self.store.pending_input(execution_id, ended) is not None:
            return False
        state = await self.read_leader(execution_id)
        tr = state.taskruns.get(taskrun_id) if state is not None else None
        current = tr.attempts[-1] if tr is not None and tr.attempts else None
        return (
            current is not None
            and current.number == attempt
            and current.state == "RUNNING"
            and current.worker_id == worker
        )

    async def _declare(self, execution_id: str, taskrun_id: str, attempt: int, worker: str, why: str) -> None:
        item = ev.AttemptLost(
            date=self.clock(), taskrun_id=taskrun_id, attempt=attempt, worker_id=worker, reason=why
        )
        # The worker is in the id: one attempt number can be held by two workers in turn (its work
        # message comes back when the first dies before announcing it), and the second loss must
        # not be dropped as a duplicate of the first (chaos seed 29: the taskrun stayed RUNNING).
        await self.store.send_input(
            execution_id, item, msg_id=f"{execution_id}:{taskrun_id}:{attempt}:lost:{worker}"
        )
        log.warning(
            "executor.attempt_lost", worker=worker, execution=execution_id, taskrun=taskrun_id, why=why
        )
