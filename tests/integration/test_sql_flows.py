"""SQL and files end to end: flows on the real nats-server download a CSV from a local HTTP server,
convert it, query it with DuckDB, SQLite and a real PostgreSQL, and convert the stored rows back."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from integration_helpers import Engine, by_task
from pg_server import PASSWORD, USER, PgServer

pytestmark = pytest.mark.anyio
ORDERS = b"order_id,customer,amount\n1,Ada,10.5\n2,Bob,20\n3,Ada,17.25\n4,Cy,3\n"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(ORDERS)))
        self.end_headers()
        self.wfile.write(ORDERS)


@pytest.fixture(scope="module")
def orders_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/orders.csv"
    finally:
        server.shutdown()
        server.server_close()


def ns() -> str:
    return f"it.sql{uuid.uuid4().hex[:10]}"


async def test_download_convert_and_query(eng: Engine, orders_url: str) -> None:
    st = await eng.run(
        f"""
id: sql_etl
namespace: {ns()}
tasks:
  - id: download
    type: io.kestra.plugin.core.http.Download
    uri: {orders_url}
  - id: to_ion
    type: io.kestra.plugin.serdes.csv.CsvToIon
    from: "{{{{ outputs.download.uri }}}}"
  - id: top
    type: io.kestra.plugin.jdbc.duckdb.Query
    inputFiles:
      orders.csv: "{{{{ outputs.download.uri }}}}"
    sql: |
      SELECT customer, sum(amount) AS total
      FROM read_csv_auto('{{{{ workingDir }}}}/orders.csv')
      GROUP BY customer ORDER BY total DESC
    fetchType: FETCH_ONE
  - id: store
    type: io.kestra.plugin.jdbc.duckdb.Query
    inputFiles:
      orders.csv: "{{{{ outputs.download.uri }}}}"
    sql: SELECT order_id, customer FROM 'orders.csv' WHERE amount > :min ORDER BY order_id
    parameters:
      min: 5
    fetchType: STORE
  - id: csv
    type: io.kestra.plugin.serdes.csv.IonToCsv
    from: "{{{{ outputs.store.uri }}}}"
  - id: json
    type: io.kestra.plugin.serdes.json.IonToJson
    from: "{{{{ outputs.to_ion.uri }}}}"
  - id: lite
    type: io.kestra.plugin.jdbc.sqlite.Query
    sql: SELECT count(*) AS n FROM (VALUES (1), (2))
    fetchType: FETCH_ONE
  - id: show
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ read(outputs.csv.uri) }}}}|{{{{ outputs.top.row.customer }}}}|{{{{ outputs.lite.row.n }}}}"
""",
        timeout=60,
    )
    assert st.state == "SUCCESS", st
    trs = by_task(st)
    assert trs["download"].outputs["length"] == len(ORDERS)
    assert trs["to_ion"].outputs["size"] == 4
    assert trs["top"].outputs["row"] == {"customer": "Ada", "total": 27.75}
    assert trs["store"].outputs["size"] == 3
    assert trs["show"].outputs["value"] == "order_id,customer\n1,Ada\n2,Bob\n3,Ada\n|Ada|2"
    assert trs["json"].outputs["size"] == 4


async def test_a_long_query_is_stopped_by_the_task_timeout(eng: Engine) -> None:
    started = time.monotonic()
    st = await eng.run(
        f"""
id: sql_timeout
namespace: {ns()}
tasks:
  - id: slow
    type: io.kestra.plugin.jdbc.duckdb.Query
    timeout: PT1S
    sql: SELECT sum(hash(a.range * b.range)) FROM range(1000000) a, range(1000000) b
    fetchType: FETCH_ONE
""",
        timeout=60,
    )
    assert st.state == "FAILED"
    assert time.monotonic() - started < 30
    logs = [line.message for line in await eng.rt.store.read_logs(st.id)]
    assert any("timeout after 1s" in m for m in logs), logs


async def test_postgres_query_in_a_flow(eng: Engine) -> None:
    bindir, why = PgServer.find()
    if bindir is None:
        pytest.fail(f"{why} (.ci/deps installs postgresql)")
    pg = PgServer(bindir)
    try:
        pg.start()
        st = await eng.run(
            f"""
id: pg_flow
namespace: {ns()}
tasks:
  - id: make
    type: io.kestra.plugin.jdbc.postgresql.Query
    url: {pg.url}
    username: {USER}
    password: "{{{{ '{PASSWORD}' }}}}"
    sql: CREATE TABLE IF NOT EXISTS t AS SELECT g AS id FROM generate_series(1, 1000) g
  - id: rows
    type: io.kestra.plugin.jdbc.postgresql.Query
    url: {pg.url}
    username: {USER}
    password: {PASSWORD}
    sql: SELECT id, id * 2 AS twice FROM t ORDER BY id
    fetchType: STORE
    fetchSize: 100
  - id: csv
    type: io.kestra.plugin.serdes.csv.IonToCsv
    from: "{{{{ outputs.rows.uri }}}}"
""",
            timeout=60,
        )
    finally:
        pg.stop()
    assert st.state == "SUCCESS", st
    trs = by_task(st)
    assert trs["rows"].outputs["size"] == 1000
    from eventstore.storage import InternalStorage

    text = (await InternalStorage(eng.rt.store).get(trs["csv"].outputs["uri"])).decode()
    assert text.splitlines()[:3] == ["id,twice", "1,2", "2,4"] and len(text.splitlines()) == 1001
