"""Wiring: the embedded server (or ENGINE_NATS_URL), the store, and the in-process roles."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jinja2

from engine.aio import (
    cancelling,
    run_async,  # noqa: F401 - re-exported for callers of the runtime
)
from engine.clock import utcnow
from engine.core import events as ev
from engine.core.errors import EngineError
from engine.core.execution import Execution
from engine.core.factory import execution_created
from engine.core.model import Flow
from engine.core.ports import Inputs
from engine.core.states import TERMINAL, State
from engine.flows import FlowCache
from engine.handoff import Handoff
from engine.ids import new_execution_id
from engine.logs import get_logger
from engine.settings import data_home, settings
from eventstore.reader import read_execution
from eventstore.server import EmbeddedServer, owner_endpoint, register_client
from eventstore.storage import InternalStorage
from eventstore.store import JetStreamKV, Store
from eventstore.subjects import partition

# How long a creation handed to this process's executor may wait to be stored before it goes to
# the inbox instead (a second creation of one id starts nothing: the executor accepts one).
CREATION_HANDOFF_WAIT_S = 10.0

log = get_logger("engine.runtime")


def make_expressions(store: Store | None, *, kv: Any = None, files: Any = None, logs: Any = None) -> Any:
    """The expression engine with the functions that need the store (kv) or the environment (secret).

    ``kv``, ``files`` and ``logs`` (a ``read_logs``) replace the store's: ``engine.testing`` passes its
    in-memory ones, so ``kv()``, ``read()`` and ``errorLogs()`` work there too."""
    from engine.expressions import Expressions, error_logs_function
    from engine.secrets import read_secret

    functions: dict[str, Callable[..., Any]] = {"secret": read_secret}
    with_logs = logs is not None or store is not None
    if store is not None:
        kv = kv if kv is not None else JetStreamKV(store)
        files = files if files is not None else InternalStorage(store)
        logs = logs if logs is not None else store.read_logs
    if kv is not None:
        store_kv = kv

        @jinja2.pass_context
        async def kv_function(
            context: Any,
            key: str,
            namespace: str | None = None,
            errorOnMissing: bool = False,  # Kestra's KvFunction: a missing key is null unless asked
        ) -> Any:
            from engine.core.errors import ExpressionError

            namespace = namespace or (context.get("flow") or {}).get("namespace")
            if not namespace:
                raise ExpressionError("kv(): no namespace here; pass it: kv('key', 'my.namespace')")
            value = await store_kv.get(namespace, key)
            if value is None and errorOnMissing:
                raise ExpressionError(f"The key '{key}' does not exist in the namespace '{namespace}'.")
            return value

        functions["kv"] = kv_function
    if with_logs:
        functions["errorLogs"] = error_logs_function(logs)
    if files is not None:
        from engine.files import storage_functions

        functions.update(storage_functions(files))  # read(), fileSize(), ...
    return Expressions(functions=functions)


class Starter:
    """Sends the command that creates an execution: the one way every caller starts one (the
    runtime is a Starter; ``engine.testing`` makes one over its in-memory store)."""

    def __init__(
        self,
        commands: Inputs,
        files: Any,
        handoff: Handoff | None = None,
        last_seq: Callable[[str], Awaitable[int]] | None = None,
    ) -> None:
        self.commands = commands
        self.files = files
        # This process's executor (``engine.handoff``): a creation it takes is stored by its first step.
        self.handoff = handoff
        # The store's last step of an execution (0: none): whether a given id is free to hand over.
        self.last_seq = last_seq

    async def create_execution(
        self,
        flow: Flow,
        inputs: dict[str, Any],
        labels: dict[str, str] | None = None,
        execution_id: str | None = None,
        trigger: dict[str, Any] | None = None,
        secret_inputs: tuple[str, ...] = (),
        *,
        fresh: bool = False,
        keyed: bool = False,
    ) -> str:
        """Send the creation of an execution of ``flow``; its local FILE inputs go to ``files``.

        ``fresh``: the caller made ``execution_id`` up at random just now (an id made here is too),
        so no execution can have it yet: this process's executor may store the creation at once.
        ``keyed``: the id derives from an event a source may deliver again (a durable realtime
        consumer's message): read first when this process's executor could take it, an execution
        that has it already is left as it is (the inbox would drop or ignore a second creation too).
        """
        if flow.disabled:
            raise EngineError(f"flow {flow.namespace}.{flow.id} is disabled: executions are refused")
        fresh = fresh or execution_id is None
        execution_id = execution_id or new_execution_id()
        from engine.files import upload_file_inputs

        inputs = await upload_file_inputs(flow, inputs, execution_id, self.files)
        created = execution_created(
            flow, execution_id, utcnow(), inputs, labels, trigger=trigger, secret_inputs=secret_inputs or None
        )
        msg_id = f"{execution_id}:created"
        if keyed and not fresh and self.handoff is not None and self.last_seq is not None:
            if await self.last_seq(execution_id):
                return execution_id  # created before: a redelivered event
            fresh = True  # free a moment ago; a creation racing this one is refused by the stream
        if not (fresh and await self._handed_over(execution_id, created, msg_id)):
            await self.commands.send_input(execution_id, created, msg_id=msg_id)
        return execution_id

    async def _handed_over(self, execution_id: str, created: ev.ExecutionCreated, msg_id: str) -> bool:
        """Did the executor of this process store the creation (its first step, no inbox write)?

        The creation through the inbox costs a durable write, and a delete once consumed, before the
        executor's first step writes the same event again; handed over in memory, that first step
        is the one write. It answers once the step is stored; anything else (not its partition, a
        failed append, too slow) and the inbox takes the creation as before.

        Only an id known to be free comes this way: the inbox drops a second creation of an id by its
        message id, whereas here it would reach the executor, whose first step would be refused by the
        stream (the execution exists), yet seen by live watchers of the execution's events.
        """
        handoff = self.handoff
        if handoff is None:
            return False
        data = ev.encode_input(created)
        self.commands.check_size(data, {"Nats-Msg-Id": msg_id})  # refused as the inbox would refuse it
        # Past the wait, the executor's later answer is ignored (a second creation starts nothing).
        return await handoff.hand_over(execution_id, partition(execution_id), data, CREATION_HANDOFF_WAIT_S)


class Runtime(Starter):
    """Connects to NATS (starting the embedded server unless ENGINE_NATS_URL is set)."""

    def __init__(
        self, nats_url: str | None = None, home: Path | None = None, *, spawned: EmbeddedServer | None = None
    ) -> None:
        self.nats_url = nats_url or settings().nats_url
        self.home = home or data_home()
        self.server: EmbeddedServer | None = None
        # The data directory's embedded server, already spawned by the caller (``spawn_early``).
        self._spawned = spawned
        # The process that owns the data directory's embedded server, when this one talks to it
        # (its pid, and whether it runs an executor and a worker); None otherwise.
        self.owner: dict[str, Any] | None = None
        self._client: Path | None = None  # this process's mark among the owner's clients
        self.store: Store
        self.flows: FlowCache
        self.expressions: Any

    async def __aenter__(self) -> Runtime:
        url = self.nats_url
        if not url and self._spawned is not None:
            self.server, self._spawned = self._spawned, None
            url = await asyncio.to_thread(self.server.wait_ready)
        elif not url:
            self.owner = owner_endpoint(self.home / "nats")
            if self.owner is not None:
                self._client = register_client(self.home / "nats")
                try:
                    self.store = await Store.connect(str(self.owner["url"]))
                except (OSError, EngineError, TimeoutError):
                    self.owner = None  # it stopped meanwhile: this process owns the directory now
                    self._client.unlink(missing_ok=True)
                    self._client = None
                else:
                    return self._ready()
            self.server = EmbeddedServer(self.home / "nats")
            url = await asyncio.to_thread(self.server.start)
        try:
            self.store = await Store.connect(url)
        except BaseException:
            if self.server:
                self.server.stop()
            raise
        return self._ready()

    def _ready(self) -> Runtime:
        # This process's worker hands its reports to this process's executor (engine.handoff), and
        # creations made here with a fresh id go to that executor too, and that executor's work to
        # this worker while it is the only live executor (MemoryWork, with its marks). On a
        # replicated cluster too: the stall once seen there after a quorum loss was
        # wait_terminal's (a replica read behind), not the hand-off's.
        handoff = Handoff()
        self.flows = FlowCache(self.store)
        self.expressions = make_expressions(self.store)
        # A keyed creation's read of its id asks the stream's leader on a cluster: a replica a moment
        # behind could say "absent" of an execution that exists (the stream would refuse the
        # creation's step, but live watchers of the execution would see it go by). One server
        # answers a direct get, cheaper than the leader's API request.
        last_seq = functools.partial(self.store.last_seq, leader=self.store.replicas > 1)
        Starter.__init__(self, self.store, InternalStorage(self.store), handoff, last_seq)
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.store.close()
        finally:
            if self._client is not None:
                self._client.unlink(missing_ok=True)
            if self.server is not None:
                await asyncio.to_thread(self.server.stop)

    def executor(self) -> Any:
        from engine.executor import Executor

        return Executor(self.store, self.flows, self.expressions, handoff=self.handoff)

    def worker(self, **kwargs: Any) -> Any:
        from plugins.registry import default_registry
        from workers.worker import Worker

        kv, storage = JetStreamKV(self.store), InternalStorage(self.store)
        kwargs.setdefault("handoff", self.handoff)
        return Worker(self.store, default_registry(), self.expressions, kv=kv, storage=storage, **kwargs)

    async def get_execution(self, execution_id: str) -> Execution:
        state = await self.load_execution(execution_id)
        if state is None:
            from engine.core.errors import ExecutionNotFound

            raise ExecutionNotFound(f"no execution {execution_id!r} in this store")
        return state

    async def kill(self, execution_id: str) -> None:
        state = await self.get_execution(execution_id)
        if state.is_terminal:
            raise EngineError(f"execution {execution_id} already ended {state.state}: nothing to kill")
        await self.store.send_input(execution_id, ev.KillRequested(date=utcnow(), reason="kill requested"))

    async def resume(self, execution_id: str, inputs: dict[str, Any] | None = None) -> None:
        state = await self.get_execution(execution_id)
        if state.state != "PAUSED":
            raise EngineError(f"execution {execution_id} is {state.state}: only a PAUSED execution resumes")
        flow = await self.flows.get(state.namespace, state.flow_id, state.flow_revision)
        inputs = resolve_resume_inputs(flow, state, inputs or {})
        if inputs:  # FILE onResume inputs given as local paths are uploaded (kestra:// URIs)
            from engine.files import upload_resume_inputs

            inputs = await upload_resume_inputs(flow, state, inputs, InternalStorage(self.store))
        await self.store.send_input(execution_id, ev.Resume(date=utcnow(), inputs=dict(inputs or {})))

    async def delete(self, execution_id: str) -> None:
        """Delete a finished execution: an ExecutionDeleted event; projections drop it, the log keeps it."""
        state = await self.get_execution(execution_id)
        if not state.is_terminal:
            raise EngineError(f"execution {execution_id} is {state.state}: kill it before deleting it")
        await self.store.send_input(
            execution_id, ev.DeleteRequested(date=utcnow()), msg_id=f"{execution_id}:delete"
        )

    async def restart(self, execution_id: str) -> None:
        """Failed taskruns run again as new attempts, in the same execution."""
        from engine.core.history import restart_events

        state = await self.get_execution(execution_id)
        flow = await self.flows.get(state.namespace, state.flow_id, state.flow_revision)
        restart_events(state, flow, utcnow())  # refuses (EngineError) what cannot restart
        await self.store.send_input(execution_id, ev.Restart(date=utcnow()))

    async def replay(self, execution_id: str, taskrun: str | None = None, revision: int | None = None) -> str:
        """A new execution that keeps what happened before ``taskrun`` (an id, or a task id) and runs on."""
        state = await self.get_execution(execution_id)
        taskrun_id = None
        if taskrun is not None:
            if taskrun in state.taskruns:
                taskrun_id = taskrun
            else:
                matches = [tr.id for tr in state.taskruns.values() if tr.task_id == taskrun]
                if not matches:
                    known = ", ".join(sorted({tr.task_id for tr in state.taskruns.values()})) or "none"
                    raise EngineError(
                        f"execution {execution_id} has no taskrun or task {taskrun!r} (its tasks: {known})"
                    )
                taskrun_id = matches[-1]
        await self.flows.get(state.namespace, state.flow_id, revision or state.flow_revision)
        new_id = new_execution_id()
        item = ev.ReplayRequested(
            date=utcnow(), source_execution_id=execution_id, taskrun_id=taskrun_id, revision=revision
        )
        await self.store.send_input(new_id, item, msg_id=f"{new_id}:replay")
        return new_id

    async def load_execution(self, execution_id: str, upto: int | None = None) -> Execution | None:
        """The execution as it stands (``upto``: as it stood after that step); None when unknown.

        As a replica serves it: readable while a stream leader is being elected (a node of the
        cluster died), perhaps a moment behind; ``wait_terminal`` waits for the step it expects.
        """
        return (await read_execution(self.store, execution_id, upto=upto, leader=False)).state

    async def wait_terminal(
        self, execution_id: str, on_start: Callable[[], Any] | None = None, timeout: float | None = None
    ) -> Execution:
        """Wait until the execution ends (subscribe first, then call ``on_start``, so nothing is missed).

        An execution that had already ended before ``on_start`` (a restart, a resume) must end again.
        """
        before = await self.store.last_seq(execution_id) if on_start is not None else 0
        done = asyncio.Event()

        async def on_events(events: list[ev.Event]) -> None:
            for event in events:
                if isinstance(event, ev.ExecutionStateChanged) and State(event.state) in TERMINAL:
                    done.set()

        def ended(state: Execution | None) -> bool:
            return state is not None and state.is_terminal and state.seq > before

        loop = asyncio.get_running_loop()
        until = None if timeout is None else loop.time() + timeout
        sub = await self.store.watch_events(execution_id, on_events)
        try:
            if on_start is not None:
                await on_start()
            # Read again every second too: a replica read can be a moment behind (a node that just
            # came back), and the live copy of the last step may have gone by before we subscribed.
            while not done.is_set():
                state = await self._read_while_waiting(execution_id)
                if ended(state):
                    assert state is not None
                    return state
                wait = 1.0 if until is None else min(1.0, until - loop.time())
                if wait <= 0:
                    raise TimeoutError
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), wait)
        finally:
            await sub.unsubscribe()
        # The live copy of the terminal step can arrive before the stream serves it to a read (a
        # replica a moment behind, a loaded machine): wait for it, bounded.
        deadline = loop.time() + 10
        while loop.time() < deadline:
            state = await self._read_while_waiting(execution_id)
            if ended(state):
                assert state is not None
                return state
            await asyncio.sleep(0.01)
        raise EngineError(
            f"execution {execution_id}: its terminal step was announced but cannot be read back"
        )

    async def _read_while_waiting(self, execution_id: str) -> Execution | None:
        """A read that may fail for a moment (a node restarting: no responders, a timeout) without
        ending the wait: the live events and the next read decide."""
        try:
            return await self.load_execution(execution_id)
        except Exception as exc:
            if cancelling():
                raise asyncio.CancelledError from exc
            log.debug("runtime.read_retry", execution_id=execution_id, error=f"{type(exc).__name__}: {exc}")
            return None


def resolve_resume_inputs(flow: Flow, state: Execution, given: dict[str, Any]) -> dict[str, Any]:
    """Check and type the inputs of a resume against the paused Pause tasks' ``onResume`` declarations."""
    from engine.core.errors import InputError
    from engine.core.model import Input
    from engine.core.tree import index_tasks
    from engine.inputs import coerce_input

    tasks = index_tasks(flow)
    declared: list[Any] = []
    for tr in state.taskruns.values():
        task = tasks.get(tr.task_id)
        if tr.state == "PAUSED" and task is not None:
            declared.extend(d for d in task.props.get("onResume") or () if isinstance(d, dict))
    if not declared:
        return dict(given)
    out: dict[str, Any] = {}
    problems = []
    for d in declared:
        input_id = str(d.get("id") or d.get("name"))
        value = given.get(input_id, d.get("defaults"))
        if value is None:
            if d.get("required", True):
                problems.append(
                    f"Invalid input for `{input_id}`, missing required input, but received `null`"
                )
            continue
        if str(d.get("type", "STRING")).upper() == "FILE":
            out[input_id] = value  # uploaded by the caller
            continue
        extra = {
            k: v
            for k, v in d.items()
            if k not in ("id", "name", "type", "required", "defaults", "description")
        }
        spec = Input(id=input_id, type=str(d.get("type", "STRING")).upper(), extra=extra)
        try:
            out[input_id] = coerce_input(spec, value)
        except InputError as exc:
            problems.append(str(exc))
    if problems:
        raise InputError("resume refused: " + "; ".join(problems))
    return out
