"""Kestra's own Python API client, ``kestrapy`` 2.x, against ``engine server local``.

The server is a real subprocess (``python -m engine server local``) with its embedded NATS, an
empty data directory and a free 127.0.0.1 port; the client is the published package, used as its
README shows (``KestraClient(host=...)``, tenant ``main``). Each call is asserted against what
Kestra answers (routes, shapes, status codes).
"""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from engine.testing.serve import local_server

with warnings.catch_warnings():
    # kestrapy's generated models name a field "validate" (pydantic warns once, at import)
    warnings.filterwarnings("ignore", 'Field name "validate"', UserWarning)
    from kestrapy import KestraClient
    from kestrapy.exceptions import BadRequestException, NotFoundException
    from kestrapy.models.kv_controller_api_delete_bulk_request import KVControllerApiDeleteBulkRequest
    from kestrapy.models.query_filter_field import QueryFilterField as F
    from kestrapy.query import and_, eq, in_, or_, where

# The first test also starts the server (a subprocess with its own NATS): more than the default.
pytestmark = pytest.mark.timeout(180)
TENANT = "main"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``engine server local`` on a free port, stopped (its PID) at the end of the module."""
    with local_server(tmp_path_factory.mktemp("kestrapy")) as url:
        yield url


@pytest.fixture
def kestra(server: str) -> KestraClient:
    return KestraClient(host=server, timeout=30)


@pytest.fixture
def ns() -> str:
    return f"compat.k{uuid.uuid4().hex[:8]}"


def eventually(read: Callable[[], Any], ok: Callable[[Any], bool], timeout: float = 30) -> Any:
    """``read()`` until ``ok`` holds (a 404 counts as not yet: the projection may lag a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = read()
            if ok(value):
                return value
        except NotFoundException:
            value = "404"
        assert time.monotonic() < deadline, f"never reached: {value!r}"
        time.sleep(0.1)


def state_of(e: Any) -> str:
    current = e.state.current
    return str(getattr(current, "value", current))


def hello(ns: str, fid: str = "hello", message: str = "Hello") -> str:
    return f"""id: {fid}
namespace: {ns}
labels:
  team: data
inputs:
  - id: name
    type: STRING
  - id: times
    type: INT
    defaults: 1
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: "{message} {{{{ inputs.name }}}} x{{{{ inputs.times }}}}"
  - id: ret
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ inputs.name | upper }}}}"
outputs:
  - id: shout
    type: STRING
    value: "{{{{ outputs.ret.value }}}}"
"""


def test_flows_create_get_update_search_delete(kestra: KestraClient, ns: str) -> None:
    created = kestra.flows.create_flow(TENANT, hello(ns))
    assert (created.id, created.namespace, created.revision) == ("hello", ns, 1)
    assert created.updated is not None and created.source.startswith("id: hello")
    got = kestra.flows.flow(ns, "hello", TENANT)
    assert got.revision == 1 and got.labels is not None
    updated = kestra.flows.update_flow(ns, "hello", TENANT, hello(ns, message="Hi"))
    assert updated.revision == 2
    kestra.flows.create_flow(TENANT, hello(ns + ".sub", "other"))

    mine = kestra.flows.search_flows(TENANT, filters=where(eq(F.NAMESPACE, ns)))
    assert mine.total == 1 and [f.id for f in mine.results] == ["hello"]
    below = kestra.flows.search_flows(
        TENANT, filters=[{"field": "namespace", "operation": "PREFIX", "value": ns}]
    )
    assert below.total == 2
    nothing = kestra.flows.search_flows(TENANT, filters=where(eq(F.FLOW_ID, "no-such-flow")))
    assert nothing.total == 0 and nothing.results == []
    either = where(or_(eq(F.FLOW_ID, "hello"), eq(F.FLOW_ID, "other")))
    assert kestra.flows.search_flows(TENANT, filters=either).total >= 2
    labelled = kestra.flows.search_flows(
        TENANT, filters=[eq(F.NAMESPACE, ns), eq(F.LABELS, {"team": "data"})]
    )
    assert labelled.total == 1
    with pytest.raises(BadRequestException) as info:  # a field the flows search has not: a 400
        kestra.flows.search_flows(TENANT, filters=where(eq(F.STATE, "SUCCESS")))
    assert "state" in info.value.body

    assert [f.id for f in kestra.flows.list_flows_by_namespace(ns, TENANT)] == ["hello"]
    assert ns in kestra.flows.list_distinct_namespaces(TENANT)
    kestra.flows.delete_flow(ns, "hello", TENANT)
    with pytest.raises(NotFoundException):
        kestra.flows.flow(ns, "hello", TENANT)
    gone = kestra.flows.delete_flows_by_query(TENANT, filters=where(eq(F.NAMESPACE, ns + ".sub")))
    assert gone.count == 1
    assert kestra.flows.search_flows(TENANT, filters=[eq(F.NAMESPACE, ns + ".sub")]).total == 0
    with pytest.raises(NotFoundException):  # one tenant: main
        kestra.flows.search_flows("acme")


def test_execution_with_inputs_to_success_then_its_logs(kestra: KestraClient, ns: str) -> None:
    kestra.flows.create_flow(TENANT, hello(ns))
    created = kestra.executions.create_execution(TENANT, ns, "hello", inputs={"name": "Ada", "times": 3})
    assert created.id and created.flow_id == "hello" and created.inputs == {"name": "Ada", "times": 3}
    done = eventually(
        lambda: kestra.executions.execution(created.id, TENANT), lambda e: state_of(e) == "SUCCESS"
    )
    assert done.state.duration and done.state.end_date is not None
    assert [t.task_id for t in done.task_run_list] == ["say", "ret"]
    assert kestra.outputs.execution_outputs(created.id, TENANT) == {"shout": "ADA"}
    [info] = kestra.outputs.task_outputs_information(created.id, TENANT)
    assert info.task_id == "ret"
    assert kestra.outputs.task_run_outputs(created.id, info.task_run_id, TENANT) == {"value": "ADA"}

    # Search reads the projection, which may be a moment behind the log GET read the end from.
    found = eventually(
        lambda: kestra.executions.search_executions(
            TENANT, filters=where(and_(eq(F.NAMESPACE, ns), in_(F.STATE, ["SUCCESS", "WARNING"])))
        ),
        lambda page: bool(page["results"]),
    )
    assert [e["id"] for e in found["results"]] == [created.id]
    none = kestra.executions.search_executions(TENANT, filters=[eq(F.NAMESPACE, ns), eq(F.STATE, "FAILED")])
    assert none == {"results": [], "total": 0}
    by_flow = kestra.executions.search_executions_by_flow_id(TENANT, ns, "hello")
    assert [e["id"] for e in by_flow["results"]] == [created.id]

    logs = eventually(
        lambda: kestra.logs.list_logs_from_execution(created.id, TENANT), lambda lines: len(lines) >= 1
    )
    said = [x for x in logs if x.task_id == "say"]
    assert [x.message for x in said] == ["Hello Ada x3"] and said[0].execution_id == created.id
    text = kestra.logs.download_logs_from_execution(created.id, TENANT, task_id="say")
    assert text.rstrip("\n").endswith("INFO Hello Ada x3") and text.count("\n") == 1
    searched = kestra.logs.search_logs(TENANT, filters=where(eq(F.EXECUTION_ID, created.id)))
    assert "Hello Ada x3" in [x.message for x in searched.results]
    assert kestra.logs.search_logs(TENANT, filters=where(eq(F.EXECUTION_ID, "nope"))).results == []


def test_kv_set_get_list_inheritance_delete(kestra: KestraClient, ns: str) -> None:
    kestra.kv.set_key_value(ns, "greeting", TENANT, '"hello"')
    kestra.kv.set_key_value(ns, "answer", TENANT, "42")
    kestra.kv.set_key_value(ns + ".team", "greeting", TENANT, '"hi"')
    detail = kestra.kv.key_value(ns, "greeting", TENANT)
    assert detail.value == "hello" and str(getattr(detail.type, "value", detail.type)) == "STRING"
    assert detail.revision and detail.updated is not None
    assert kestra.kv.key_value(ns, "answer", TENANT).value == 42
    listed = kestra.kv.list_all_keys(TENANT, filters=where(eq(F.NAMESPACE, ns)))
    assert sorted(e.key for e in listed.results) == ["answer", "greeting"] and listed.total == 2
    inherited = kestra.kv.list_keys_with_inheritance(ns + ".team", TENANT)
    assert sorted((e.namespace, e.key) for e in inherited) == [(ns, "answer"), (ns, "greeting")]
    assert kestra.kv.delete_key_value(ns, "answer", TENANT) is True
    bulk = kestra.kv.delete_key_values(
        ns, TENANT, KVControllerApiDeleteBulkRequest(keys=["greeting", "nope"])
    )
    assert bulk.keys == ["greeting"]
    with pytest.raises(NotFoundException):
        kestra.kv.key_value(ns, "answer", TENANT)


def test_kill_restart_resume_replay(kestra: KestraClient, ns: str) -> None:
    kestra.flows.create_flow(
        TENANT,
        f"""id: slow
namespace: {ns}
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT60S
""",
    )
    kestra.flows.create_flow(
        TENANT,
        f"""id: broken
namespace: {ns}
tasks:
  - id: fail
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: broken on purpose
""",
    )
    slow = kestra.executions.create_execution(TENANT, ns, "slow")
    eventually(lambda: kestra.executions.execution(slow.id, TENANT), lambda e: state_of(e) == "RUNNING")
    answered = kestra.executions.kill_execution(slow.id, TENANT)
    assert answered.id == slow.id
    killed = eventually(
        lambda: kestra.executions.execution(slow.id, TENANT), lambda e: state_of(e) == "KILLED"
    )
    assert killed.state.duration

    broken = kestra.executions.create_execution(TENANT, ns, "broken")
    eventually(lambda: kestra.executions.execution(broken.id, TENANT), lambda e: state_of(e) == "FAILED")
    restarted = kestra.executions.restart_execution(broken.id, TENANT)
    assert restarted.id == broken.id
    again = eventually(
        lambda: kestra.executions.execution(broken.id, TENANT),
        lambda e: (
            state_of(e) == "FAILED"
            and "RESTARTED" in [str(getattr(h.state, "value", h.state)) for h in e.state.histories]
        ),
    )
    assert len(again.task_run_list[0].attempts) == 2  # the failed task ran again

    assert kestra.executions.restart_executions_by_ids(TENANT, [broken.id]) == {"count": 1}
    eventually(
        lambda: kestra.executions.execution(broken.id, TENANT),
        lambda e: state_of(e) == "FAILED" and len(e.task_run_list[0].attempts) == 3,
    )
    other = kestra.executions.create_execution(TENANT, ns, "slow")
    eventually(lambda: kestra.executions.execution(other.id, TENANT), lambda e: state_of(e) == "RUNNING")
    with pytest.raises(BadRequestException):  # one refused (already ended): nothing is killed
        kestra.executions.kill_executions_by_ids(TENANT, [other.id, slow.id])
    assert kestra.executions.kill_executions_by_ids(TENANT, [other.id]) == {"count": 1}
    eventually(lambda: kestra.executions.execution(other.id, TENANT), lambda e: state_of(e) == "KILLED")
    assert kestra.executions.delete_executions_by_ids(TENANT, [other.id, slow.id]).count == 2
    with pytest.raises(NotFoundException):
        kestra.executions.execution(other.id, TENANT)

    replayed = kestra.executions.replay_execution(broken.id, TENANT)
    assert replayed.id != broken.id and replayed.original_id == broken.id
    eventually(lambda: kestra.executions.execution(replayed.id, TENANT), lambda e: state_of(e) == "FAILED")

    kestra.flows.create_flow(
        TENANT,
        f"""id: gate
namespace: {ns}
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: resumed
""",
    )
    gate = kestra.executions.create_execution(TENANT, ns, "gate")
    eventually(lambda: kestra.executions.execution(gate.id, TENANT), lambda e: state_of(e) == "PAUSED")
    assert kestra.executions.resume_execution(gate.id, TENANT).id == gate.id
    eventually(lambda: kestra.executions.execution(gate.id, TENANT), lambda e: state_of(e) == "SUCCESS")


def test_namespaces_and_delete_executions_by_query(kestra: KestraClient, ns: str) -> None:
    kestra.flows.create_flow(TENANT, hello(ns + ".team"))
    found = kestra.namespaces.search_namespaces(TENANT, filters=where(eq(F.NAMESPACE, ns)))
    assert [n.id for n in found.results] == [ns]  # a parent of a flow's namespace
    existing = kestra.namespaces.search_namespaces(TENANT, existing=True, filters=[eq(F.QUERY, ns)])
    assert [n.id for n in existing.results] == [ns + ".team"]
    assert kestra.namespaces.namespace(ns + ".team", TENANT).id == ns + ".team"
    with pytest.raises(NotFoundException):
        kestra.namespaces.namespace(ns + ".nothing", TENANT)

    ids = [
        kestra.executions.create_execution(TENANT, ns + ".team", "hello", inputs={"name": n}).id
        for n in ("a", "b")
    ]
    for execution_id in ids:
        eventually(
            lambda i=execution_id: kestra.executions.execution(i, TENANT), lambda e: state_of(e) == "SUCCESS"
        )
    none = kestra.executions.delete_executions_by_query(
        TENANT, filters=[eq(F.NAMESPACE, ns + ".team"), eq(F.STATE, "FAILED")]
    )
    assert none == {"count": 0}
    deleted = kestra.executions.delete_executions_by_query(TENANT, filters=[eq(F.NAMESPACE, ns + ".team")])
    assert deleted == {"count": 2}
    with pytest.raises(NotFoundException):
        kestra.executions.execution(ids[0], TENANT)
