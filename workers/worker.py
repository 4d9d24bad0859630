"""The worker: pulls runnable taskruns, runs them under a concurrency limit, reports attempts.

Each attempt is announced (``AttemptStarted``) before it runs and reported
(``AttemptEnded``) after; retries happen here, each one a new attempt. ``timeout`` cancels
the attempt (script processes are killed with their whole process group). A kill message
for the execution cancels its running attempts.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from engine.aio import cancelling, unsubscribe_all, until_done
from engine.clock import utcnow
from engine.core import events as ev
from engine.core.errors import EngineError, ExpressionError, PayloadTooLarge, PluginNotFound, TaskFailed
from engine.core.ports import Delivery, LogLine, Subscription, WorkerStore
from engine.core.retry import attempt_delay
from engine.core.states import TERMINAL
from engine.core.work import WorkItem, decode_work
from engine.handoff import Handoff, LocalWork
from engine.logs import get_logger
from eventstore import subjects as S
from eventstore.reader import read_execution
from plugins.api import FileStorage, KVStore, TaskResult
from plugins.registry import Registry
from workers.context import TaskRunContext
from workers.lines import HeldLines
from workers.workdir import finish, restore_cache

log = get_logger("engine.worker")

START_REPORT_DELAY = 0.02  # seconds an attempt runs before it is announced as RUNNING
REPORT_RETRY_FIRST_S, REPORT_RETRY_MAX_S = 0.2, 5.0  # a report that failed is sent again after these
MEMORY_KEYS = 100_000  # attempts received in memory that are remembered (a queued copy is skipped)
HANDOFF_WAIT_S = 10.0  # how long a report handed to this process's executor may wait to be stored
HEARTBEAT_RETRY_S = 0.5  # a heartbeat that failed is tried again after this
FENCE_AT = 0.7  # share of the heartbeat TTL without a renewal after which running attempts are given up
# The largest report of an attempt's outputs (encoded). Outputs travel in the execution's events and
# in the work of every later task: NATS's default max_payload (1 MiB) keeps them well under the
# engine's own server limit (8 MB). Larger values belong in internal storage (``outputFiles``).
MAX_OUTPUTS = 1 << 20
MAX_LOG = 1 << 20  # bytes of one log line's message


class Attempted(NamedTuple):
    """What one attempt gave: its result, its error, whether a failure may be retried, its metrics."""

    result: TaskResult
    error: str | None
    retryable: bool
    metrics: tuple[ev.Metric, ...]
    workdir_outputs: dict[str, str] | None = None  # a WorkingDirectory's `outputFiles` after this task


class Worker:
    def __init__(
        self,
        store: WorkerStore,
        registry: Registry,
        expressions: Any,
        *,
        kv: KVStore,
        storage: FileStorage,
        group: str | None = None,
        concurrency: int = 16,
        worker_id: str | None = None,
        workdir: Path | None = None,
        heartbeat_ttl: int = S.HEARTBEAT_TTL_S,
        max_outputs: int = MAX_OUTPUTS,
        handoff: Handoff | None = None,
    ) -> None:
        self.handoff = handoff  # the executor of this process, when it runs one
        self.max_outputs = max_outputs
        self.heartbeat_ttl = heartbeat_ttl  # seconds without a beat after which this worker counts as lost
        self.store = store
        self.registry = registry
        self.expressions = expressions
        self.group = group or "default"
        self.concurrency = concurrency
        # A subject token: no dots (hostnames have them), no spaces.
        host = socket.gethostname().replace(".", "_").replace(" ", "_")
        self.worker_id = (worker_id or f"{host}-{uuid.uuid4().hex[:8]}").replace(".", "_")
        self.kv = kv
        self.storage = storage
        self.workdir = workdir
        self._slots = asyncio.Semaphore(concurrency)
        self._running: dict[str, set[asyncio.Task[None]]] = {}
        self._killed: dict[str, float] = {}
        self._beat_ok_at = time.monotonic()  # the last heartbeat the store acknowledged
        # Attempts still running their task (not yet reporting), and those given up when the
        # heartbeat lapsed: only these are stopped by the fence, never a report on its way.
        self._attempts: set[asyncio.Future[Any]] = set()
        self._abandoned: set[asyncio.Future[Any]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._subs: list[Subscription] = []
        self._in_memory: dict[tuple[str, str, int], LocalWork] = {}  # work handed over in memory
        self._shared_dirs: set[Path] = set()

    async def run(self) -> None:
        on_work = self._on_work

        async def on_kill(execution_id: str) -> None:
            self._killed[execution_id] = time.monotonic()
            for task in list(self._running.get(execution_id, ())):
                task.cancel("killed")

        # Alive before taking work: an attempt announced by a worker with no heartbeat yet would
        # look lost to the executor and run a second time.
        while not await self.beat():
            await asyncio.sleep(HEARTBEAT_RETRY_S)
        self._subs.append(await self.store.watch_kills(on_kill))
        self._subs += await self.store.consume_work(self.group, on_work, max(self.concurrency * 4, 64))
        if self.handoff is not None:
            self.handoff.attach_worker(self._take_work)
        if cancelling():  # nats-py can swallow a cancellation that lands while it subscribes
            await unsubscribe_all(self._subs)
            raise asyncio.CancelledError
        try:
            while True:
                beaten = await self.beat()
                if not beaten:
                    self._fence()
                # A missed beat is tried again soon: a TTL without any beat makes this worker "lost"
                # and its running attempts run a second time elsewhere.
                await asyncio.sleep(self.heartbeat_ttl / 3 if beaten else HEARTBEAT_RETRY_S)
        finally:
            if self.handoff is not None:
                self.handoff.detach_worker(self._take_work)
            await unsubscribe_all(self._subs)
            for task in list(self._tasks):
                task.cancel()
            for path in self._shared_dirs:
                shutil.rmtree(path, ignore_errors=True)

    def _lapsed(self) -> bool:
        return time.monotonic() - self._beat_ok_at >= self.heartbeat_ttl * FENCE_AT

    def _fence(self) -> None:
        """Our heartbeat is about to expire unrenewed: the executor will give our attempts to other
        workers. Stop them first (their processes are killed and each is reported lost, attempt + 1
        runs elsewhere), so that no script runs to its end twice."""
        if not self._lapsed():
            return
        running = [t for t in self._attempts if not t.done() and t not in self._abandoned]
        if not running:
            return
        log.error(
            "worker.heartbeat_lapsed",
            seconds=round(time.monotonic() - self._beat_ok_at, 1),
            abandoned=len(running),
        )
        for task in running:
            self._abandoned.add(task)
            task.cancel("heartbeat lapsed")

    async def beat(self) -> bool:
        """Renew the liveness key; False when it could not be renewed in time (the caller retries soon).

        A publish whose NATS node just died waits for its full timeout (10 s, the TTL itself): each
        beat is given a quarter of the TTL, then abandoned for the next one.
        """
        running = sum(len(v) for v in self._running.values())
        info = {"group": self.group, "host": socket.gethostname(), "running": running}
        write = asyncio.ensure_future(self.store.heartbeat(self.worker_id, info, self.heartbeat_ttl))
        write.add_done_callback(_retrieve)
        try:
            # Not wait_for: it would wait for the cancelled publish, and nats-py can swallow that.
            await asyncio.wait({write}, timeout=max(0.5, self.heartbeat_ttl / 4))
        finally:
            if not write.done():
                write.cancel()
        if write.cancelled() or not write.done():
            if cancelling():
                raise asyncio.CancelledError
            log.warning("worker.heartbeat_slow", timeout=max(0.5, self.heartbeat_ttl / 4))
            return False
        exc = write.exception()
        if exc is not None:  # liveness must not kill the worker; the next beat retries
            if cancelling():
                raise asyncio.CancelledError from exc
            log.warning("worker.heartbeat_failed", error=str(exc))
            return False
        self._beat_ok_at = time.monotonic()
        return True

    async def _shared_workdir(self, ctx: TaskRunContext, item: WorkItem) -> None:
        """Tasks of one WorkingDirectory share a directory; its inputFiles are written when it is made."""
        root = self.workdir or Path(tempfile.gettempdir())
        path = root / f"engine-wd-{item.workdir}"
        ctx.shared_workdir = path
        if path.exists():
            return
        path.mkdir(parents=True)
        self._shared_dirs.add(path)
        await restore_cache(ctx, item, path)
        files = await ctx.render(item.workdir_files) if item.workdir_files else None
        if files:
            from plugins.scripts.common import write_input_files

            await write_input_files(path, files, ctx.storage)

    def _spawn(self, job: Any) -> None:
        task = asyncio.create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_work(self, msg: Delivery) -> None:
        await self._slots.acquire()
        self._spawn(self._handle(msg))

    def _take_work(self, work: LocalWork) -> bool:
        """Work from the executor of this process, in memory (``engine.handoff.MemoryWork``)."""
        if (work.group or "default") != self.group or self._lapsed():
            return False
        held = self._in_memory.get(work.key)
        if held is not None and held.outcome is not False:
            # The same attempt sent again (a step decided again): in hand already, or reported.
            if held.outcome:
                self._spawn(work.ack())  # nothing owed: the executor stops tracking this copy
            return True
        self._in_memory[work.key] = work
        while len(self._in_memory) > MEMORY_KEYS:  # the oldest first: long reported
            del self._in_memory[next(iter(self._in_memory))]
        self._spawn(self._take_slot_and_handle(work))
        return True

    async def _take_slot_and_handle(self, work: LocalWork) -> None:
        await self._slots.acquire()
        await self._handle(work)  # one task, not _on_work's two: the hand-over is its own backpressure

    async def _handle(self, msg: Delivery) -> None:
        try:
            item = decode_work(msg.data)
        except msgspec.DecodeError:
            log.error("worker.bad_work_item", group=self.group, size=len(msg.data))
            await msg.term()
            self._slots.release()
            return
        held = self._in_memory.get((item.execution_id, item.taskrun_id, item.attempt))
        if held is not None and held is not msg and held.outcome is not False:
            # The queued copy of an attempt this worker holds or ran in memory (its partition changed
            # hands meanwhile): the memory one answers for it.
            await msg.ack()
            self._slots.release()
            return
        try:
            if item.execution_id in self._killed:
                await msg.ack()
                return
            if self._lapsed():  # we cannot show we are alive: another worker takes it
                await msg.nak(delay=1)
                return
            if msg.redelivered:
                settled = await self._settled_or_unknown(item)
                if settled is None:  # the store cannot tell now: ask again in a moment, never run blind
                    await msg.nak(delay=1)
                    return
                if settled:
                    log.info(
                        "worker.redelivered_settled",
                        execution_id=item.execution_id,
                        taskrun_id=item.taskrun_id,
                        attempt=item.attempt,
                    )
                    await msg.ack()
                    return
            current = asyncio.current_task()
            assert current is not None
            self._running.setdefault(item.execution_id, set()).add(current)
            try:
                await self.execute(item, msg)
            finally:
                running = self._running.get(item.execution_id)
                if running is not None:
                    running.discard(current)
                    if not running:
                        del self._running[item.execution_id]
        finally:
            self._slots.release()

    async def _settled_or_unknown(self, item: WorkItem) -> bool | None:
        """``_settled``, or None when the store cannot tell now (a node down, an election): the caller
        hands the message back rather than run it blind or let the check's failure drop it (chaos
        seed 36)."""
        try:
            return await self._settled(item)
        except Exception as exc:
            if cancelling():
                raise asyncio.CancelledError from exc
            log.warning(
                "worker.settled_check_failed",
                execution_id=item.execution_id,
                error=f"{type(exc).__name__}: {exc}",
            )
            return None

    async def _settled(self, item: WorkItem) -> bool:
        """Did a previous holder of this work message already finish it?

        A worker that dies after reporting an attempt's end but before acknowledging its work
        message leaves the message to be delivered again (after the ack wait): running it again
        would run a finished task twice. The report is either still waiting in the inbox (asked
        first), or the executor has consumed it and the history shows it (asked second, from the
        leader: a report consumed between the two questions is in the history by then).
        """
        pending = await self.store.pending_input(
            item.execution_id, f"{item.execution_id}:{item.taskrun_id}:{item.attempt}:ended"
        )
        if pending is not None:
            report = ev.decode_input(pending)
            # An end that asks for a retry is the dead holder's to continue: run it again as before.
            return not isinstance(report, ev.AttemptEnded) or report.final
        state = (await read_execution(self.store, item.execution_id, leader=True)).state
        if state is None:
            return False
        if state.is_terminal:
            return True
        taskrun = state.taskruns.get(item.taskrun_id)
        if taskrun is None:
            return False
        # Ended, or given to a newer attempt (its holder was declared lost): this one is stale.
        return taskrun.state in TERMINAL or taskrun.dispatched > item.attempt

    @staticmethod
    def _emit_log(lines: HeldLines) -> Any:
        def emit(line: LogLine) -> None:
            message = _bounded_log(line.message)  # secrets are masked by the task's context
            if message is not line.message:
                line = msgspec.structs.replace(line, message=message)
            lines.emit(line)  # held for the end report, or queued: a failure is logged by the store

        return emit

    async def _report(
        self, item: WorkItem, event: ev.Input, kind: str, attempt: int, data: bytes | None = None
    ) -> None:
        msg_id = f"{item.execution_id}:{item.taskrun_id}:{attempt}:{kind}"
        data = ev.encode_input(event) if data is None else data
        # Refused as the inbox would refuse it: a report too large fails its attempt, not the step.
        self.store.check_size(data, {"Nats-Msg-Id": msg_id})
        if await self._handed_over(item.execution_id, data):
            return
        await self._persist(
            f"report {kind}", lambda: self.store.send_input(item.execution_id, event, msg_id=msg_id)
        )

    async def _handed_over(self, execution_id: str, data: bytes) -> bool:
        """Did the executor of this process store the report in its step (``engine.handoff``)?"""
        if self.handoff is None:
            return False
        # A busy executor: past the wait, the inbox takes it (a duplicate report is ignored).
        return await self.handoff.hand_over(execution_id, S.partition(execution_id), data, HANDOFF_WAIT_S)

    async def _report_ended(self, item: WorkItem, event: ev.AttemptEnded, emit: Any) -> ev.AttemptEnded:
        """Report an attempt's end; outputs too large to be stored fail it instead (never a retry
        loop: the same bytes would be refused again). Returns the report that was stored."""
        data = ev.encode_input(event)
        if event.logs and len(data) > self.max_outputs:
            for line in event.logs:  # too much with the outputs: published on their own
                emit(line)
            event = msgspec.structs.replace(event, logs=())
            data = ev.encode_input(event)
        try:
            if len(data) > self.max_outputs:
                raise PayloadTooLarge(len(data), self.max_outputs)
            await self._report(item, event, "ended", event.attempt, data)
            return event
        except PayloadTooLarge as exc:
            error = (
                f"the task's outputs are {exc.size} bytes, over the limit of {exc.limit} bytes: "
                "write large values to a file (`outputFiles`) and pass its kestra:// URI"
            )
        emit(LogLine(utcnow(), "ERROR", error, item.taskrun_id, item.task.id, event.attempt))
        failed = msgspec.structs.replace(
            event, state="FAILED", outputs={}, metrics=(), final=True, error=error
        )
        await self._report(item, failed, "ended", event.attempt)
        return failed

    async def _persist(self, what: str, write: Callable[[], Awaitable[None]]) -> None:
        """A write the executor depends on, retried until acknowledged.

        A NATS node that dies (or a stream whose leader moves) fails or times out a publish; the
        worker is alive and heartbeating, so nothing else would ever notice that the attempt's
        report never arrived: the taskrun would stay RUNNING forever. Every write here is
        idempotent (the same message id, deduplicated by the stream; the executor ignores a
        report it already has), so it is simply sent again.
        """

        def warn(exc: Exception, delay: float) -> None:
            log.warning("worker.write_retry", what=what, error=f"{type(exc).__name__}: {exc}", delay=delay)

        await until_done(write, warn, REPORT_RETRY_FIRST_S, REPORT_RETRY_MAX_S, never=(PayloadTooLarge,))

    async def _announce(self, item: WorkItem, attempt: int, started: str, msg: Delivery | None) -> None:
        """Report a long attempt as started, then release its work message (the executor owns it now)."""
        event = ev.AttemptStarted(
            date=started, taskrun_id=item.taskrun_id, attempt=attempt, worker_id=self.worker_id
        )
        # Recorded before the work message is released: from here on, only this record (checked
        # against our heartbeat) lets the executor notice if this worker dies mid-task.
        await self._persist(
            "mark running",
            lambda: self.store.mark_running(self.worker_id, item.execution_id, item.taskrun_id, attempt),
        )
        await self._report(item, event, "started", attempt)
        if msg is not None:
            await msg.ack()

    async def execute(self, item: WorkItem, msg: Delivery | None = None) -> None:
        """Run every attempt of one taskrun and report each one."""
        task = item.task
        attempt = item.attempt
        first_started = item.first_started
        lines = HeldLines(partial(self.store.post_log, item.execution_id))
        emit = self._emit_log(lines)
        while True:
            lines.hold()
            started = utcnow()
            first_started = first_started or started
            # Short attempts are reported once, when they end (one write instead of two); an attempt
            # still running after START_REPORT_DELAY is announced so its RUNNING state shows.
            announcement = _Announcement(partial(self._announce, item, attempt, started, msg))
            running = asyncio.ensure_future(self._attempt(item, attempt, emit))
            self._attempts.add(running)
            try:
                result, error, retryable, metrics, collected = await running
            except asyncio.CancelledError:
                lines.release()  # no end report will carry them
                if not (running.cancelled() and running in self._abandoned):
                    raise  # we are cancelled ourselves (shutdown)
                self._abandoned.discard(running)
                await self._give_up(item, attempt, announcement, msg)
                return
            finally:
                self._attempts.discard(running)
                announced = await announcement.finish(cut=True)
            if announced:
                msg = None  # announced, and the work message already acknowledged
            final = True
            delay = None
            ended = utcnow()
            if result.state == "FAILED" and retryable and task.retry is not None:
                # The rule the executor applies, on the dates the history records.
                delay = attempt_delay(task.retry, item.taskrun_id, attempt, first_started, ended)
                final = delay is None
            reported = await self._report_ended(
                item,
                ev.AttemptEnded(
                    date=ended,
                    taskrun_id=item.taskrun_id,
                    attempt=attempt,
                    state=result.state,
                    outputs=result.outputs,
                    final=final,
                    error=error,
                    started=started,
                    metrics=metrics,
                    workdir_outputs=collected,
                    logs=lines.take(),
                ),
                emit,
            )
            final = reported.final
            if announced:
                await self._persist(
                    "clear running",
                    lambda: self.store.clear_running(self.worker_id, item.execution_id, item.taskrun_id),
                )
            if msg is not None:
                await msg.ack()
                msg = None
            if final:
                return
            assert delay is not None
            emit(
                LogLine(
                    utcnow(),
                    "WARN",
                    f"attempt {attempt} failed, retrying in {delay:.3g}s",
                    item.taskrun_id,
                    task.id,
                    attempt,
                )
            )
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                if item.execution_id in self._killed:
                    return  # killed between attempts: the executor ends the taskrun KILLED
                raise
            attempt += 1

    async def _give_up(
        self, item: WorkItem, attempt: int, announcement: _Announcement, msg: Delivery | None
    ) -> None:
        """An attempt stopped because our heartbeat lapsed: hand it back (it was killed, not ended).

        Its announcement is let finish rather than cancelled: cut half way (the running mark or the
        started report stored, the work message not released), neither the executor nor another
        worker could tell whether it had started. Announced, then reported lost: attempt + 1 runs.
        """
        if not await announcement.finish(cut=False):
            if msg is not None:
                await msg.nak()  # never announced: the same attempt goes to another worker
            return
        lost = ev.AttemptLost(
            date=utcnow(), taskrun_id=item.taskrun_id, attempt=attempt, worker_id=self.worker_id
        )
        # The id the executor uses when it notices the lapse itself: whichever comes first counts once.
        msg_id = f"{item.execution_id}:{item.taskrun_id}:{attempt}:lost:{self.worker_id}"
        await self._persist(
            "report lost", lambda: self.store.send_input(item.execution_id, lost, msg_id=msg_id)
        )
        await self._persist(
            "clear running",
            lambda: self.store.clear_running(self.worker_id, item.execution_id, item.taskrun_id),
        )

    async def _attempt(self, item: WorkItem, attempt: int, emit: Any) -> Attempted:
        ctx = TaskRunContext(item, attempt, self.workdir, self.kv, self.expressions, emit, self.storage)
        try:
            result, error, retryable = await self._run(ctx, item)
            collected = None
            if ctx.shared_workdir is not None and (item.workdir_outputs or item.workdir_cache):
                try:
                    collected = await finish(ctx, item, ctx.shared_workdir)
                except EngineError as exc:
                    ctx.log("ERROR", f"WorkingDirectory: {exc}")
                    result, error, retryable = TaskResult(state="FAILED"), f"WorkingDirectory: {exc}", True
        finally:
            ctx.cleanup()
        # What the task rendered or read with secret() (and its SECRET inputs) never leaves the worker.
        outputs = ctx.masked(result.outputs)
        if outputs != result.outputs:
            result = msgspec.structs.replace(result, outputs=outputs)
        metrics = tuple(
            msgspec.structs.replace(m, tags=ctx.masked(m.tags)) if m.tags else m
            for m in ctx.metrics.snapshot()
        )
        return Attempted(result, ctx.masked(error) if error else error, retryable, metrics, collected)

    async def _run(self, ctx: TaskRunContext, item: WorkItem) -> tuple[TaskResult, str | None, bool]:
        task = item.task
        try:
            if item.workdir is not None:
                await self._shared_workdir(ctx, item)
            # `version:` (kept in props by the loader) picks one of the plugin's installed versions
            props_in = dict(task.props)
            version = props_in.pop("version", None)
            try:
                spec = self.registry.resolve(task.type, None if version is None else str(version))
            except PluginNotFound as exc:
                raise TaskFailed(f"{exc} on worker {self.worker_id}", retryable=False) from None
            if spec.run is None:
                raise TaskFailed(f"{task.type} is not a runnable task", retryable=False)
            variables = spec.extra.get("render_variables")  # e.g. a script's {{ workingDir }}
            if variables is not None:
                ctx.variables.update(variables(ctx, props_in))
            raw = await ctx.render(props_in) if spec.render else props_in
            try:
                props = msgspec.convert(raw, spec.props, strict=False)
            except msgspec.ValidationError as exc:
                raise TaskFailed(f"invalid properties after rendering: {exc}", retryable=False) from exc
            try:
                if task.timeout is None:  # most tasks: no Timeout object to enter and leave
                    result = await spec.run(props, ctx)
                else:
                    async with asyncio.timeout(task.timeout):
                        result = await spec.run(props, ctx)
            except TimeoutError:
                raise TaskFailed(f"timeout after {task.timeout:g}s (the task's `timeout`)") from None
            return result, None, True
        except asyncio.CancelledError:
            if item.execution_id in self._killed:
                ctx.log("WARN", "killed")
                return TaskResult(state="KILLED"), "killed", False
            raise
        except TaskFailed as exc:
            ctx.log("ERROR", str(exc))
            return TaskResult(state="FAILED", outputs=dict(exc.outputs)), str(exc), exc.retryable
        except ExpressionError as exc:
            ctx.log("ERROR", str(exc))
            return TaskResult(state="FAILED"), str(exc), True  # Kestra retries a rendering failure
        except EngineError as exc:
            ctx.log("ERROR", str(exc))
            return TaskResult(state="FAILED"), str(exc), False
        except Exception as exc:
            ctx.log("ERROR", f"{type(exc).__name__}: {exc}")
            return TaskResult(state="FAILED"), f"{type(exc).__name__}: {exc}", True


def _bounded_log(message: str) -> str:
    """A log line over MAX_LOG bytes would be refused by the server and lost without a word (logs
    are sent without waiting): keep its head, and say how much was cut."""
    if len(message) <= MAX_LOG // 4:
        return message  # at most 4 bytes a character: certainly under the limit
    raw = message.encode()
    if len(raw) <= MAX_LOG:
        return message
    head = raw[:MAX_LOG].decode(errors="ignore")
    return f"{head} [cut: the line was {len(raw)} bytes, a log line keeps {MAX_LOG}]"


class _Announcement:
    """An attempt's start report: a timer until ``START_REPORT_DELAY``, and a task only for an
    attempt still running then (most end before: no task, no sleep to cancel)."""

    def __init__(self, send: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._send = send
        self._task: asyncio.Task[None] | None = None
        self._timer = asyncio.get_running_loop().call_later(START_REPORT_DELAY, self._start)

    def _start(self) -> None:
        self._task = asyncio.create_task(self._send())
        self._task.add_done_callback(_retrieve)  # a failed announce (shutdown) is not an error to print

    async def finish(self, *, cut: bool) -> bool:
        """Whether the attempt was announced. ``cut`` stops an announcement on its way; otherwise it is
        let finish (cut half way, neither the executor nor another worker could tell whether the
        attempt had started)."""
        self._timer.cancel()
        task = self._task
        if task is None:
            return False
        if cut and not task.done():
            task.cancel()
        await asyncio.wait({task})
        return not task.cancelled() and task.exception() is None


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()
