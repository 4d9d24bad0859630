"""``io.kestra.plugin.jdbc.postgresql.Query``: SQL on a PostgreSQL server, with psycopg 3.

``url`` is Kestra's JDBC URL (``jdbc:postgresql://host:port/db?sslmode=require``), with ``username`` and
``password``; ``ssl``, ``sslMode``, ``sslRootCert``, ``sslCert``, ``sslKey`` (PEM text, written to
private files for libpq) and ``sslKeyPassword`` as Kestra's. STORE and FETCH_ONE of a query that
returns rows read through a server-side cursor, ``fetchSize`` rows a round trip, so a large result
never sits whole in memory. A task timeout or a kill cancels the query on the server.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from engine.core.errors import TaskFailed
from plugins.api import RunContext, TaskResult, runnable
from plugins.jdbc.common import Fetched, QueryProps, bind_parameters, fetch_result, fetch_type, interruptible
from plugins.jdbc.common import store_result as store_uri
from plugins.jdbc.embedded import render_props, render_sql

TYPE = "io.kestra.plugin.jdbc.postgresql.Query"
SslMode = Literal["DISABLE", "ALLOW", "PREFER", "REQUIRE", "VERIFY_CA", "VERIFY_FULL"]
CONNECT_TIMEOUT_S = 30


class PostgresQuery(QueryProps, frozen=True, kw_only=True):
    ssl: bool = False
    sslMode: SslMode | None = None
    sslRootCert: str | None = None
    sslCert: str | None = None
    sslKey: str | None = None
    sslKeyPassword: str | None = None


# JDBC URL parameters → libpq keywords (pgjdbc's names, the ones flows use)
_URL_PARAMS = {
    "user": "user",
    "password": "password",
    "sslmode": "sslmode",
    "sslrootcert": "sslrootcert",
    "sslcert": "sslcert",
    "sslkey": "sslkey",
    "applicationname": "application_name",
    "connecttimeout": "connect_timeout",
    "options": "options",
}


def conninfo(url: str | None) -> dict[str, Any]:
    """libpq connection keywords from Kestra's ``jdbc:postgresql://host:port/db?k=v`` URL."""
    if not url or not url.startswith("jdbc:postgresql://"):
        raise TaskFailed(
            f"url: {url!r} is not a PostgreSQL JDBC URL — write 'jdbc:postgresql://host:5432/database'",
            retryable=False,
        )
    parts = urlsplit(url[len("jdbc:") :])
    hosts, ports = [], []
    for hostport in (parts.netloc.rsplit("@", 1)[-1] or "localhost").split(","):
        host, _, port = hostport.partition(":")
        hosts.append(host or "localhost")
        ports.append(port or "5432")
    info: dict[str, Any] = {
        "host": ",".join(hosts),
        "port": ",".join(ports),
        "dbname": unquote(parts.path.lstrip("/")) or None,
        "connect_timeout": CONNECT_TIMEOUT_S,
    }
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        lowered = key.lower()
        if lowered == "ssl":
            if value.lower() in ("", "true"):
                info.setdefault("sslmode", "require")
        elif lowered == "currentschema":
            info["options"] = f"-c search_path={value}"
        elif lowered in _URL_PARAMS:
            info[_URL_PARAMS[lowered]] = value
        else:
            raise TaskFailed(
                f"url: the parameter {key!r} is not supported — use one of "
                f"{', '.join(sorted([*_URL_PARAMS, 'ssl', 'currentSchema']))}",
                retryable=False,
            )
    return {k: v for k, v in info.items() if v is not None}


def _ssl(props: PostgresQuery, info: dict[str, Any], private: Path) -> None:
    if props.sslMode is not None:
        info["sslmode"] = props.sslMode.lower().replace("_", "-")
    elif props.ssl:
        info.setdefault("sslmode", "require")
    for pem, keyword in (
        (props.sslRootCert, "sslrootcert"),
        (props.sslCert, "sslcert"),
        (props.sslKey, "sslkey"),
    ):
        if pem:
            target = private / f"{keyword}.pem"
            target.write_text(pem)
            target.chmod(0o600)  # libpq refuses a key others can read
            info[keyword] = str(target)
    if props.sslKeyPassword:
        info["sslpassword"] = props.sslKeyPassword


_ROWS = re.compile(r"^\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*\(?\s*(select|with|values|table)\b", re.I | re.S)


def _single(sql: str) -> bool:
    """True when ``sql`` is one statement (a trailing ``;`` allowed): only those use a server cursor."""
    return ";" not in sql.strip().rstrip(";")


async def run(props: PostgresQuery, ctx: RunContext) -> TaskResult:
    import psycopg

    props = await render_props(props, ctx)
    info = conninfo(props.url)
    if props.username is not None:
        info["user"] = props.username
    if props.password is not None:
        info["password"] = props.password
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    private = Path(tempfile.mkdtemp(prefix=".engine-tmp-", dir=ctx.workdir))
    _ssl(props, info, private)
    sql = await render_sql(ctx, props.sql, ctx.workdir, {}) or ""
    after = await render_sql(ctx, props.afterSQL, ctx.workdir, {})
    if props.parameters:
        # psycopg reads % as a placeholder once parameters are given: a literal one is written %%
        sql, params = bind_parameters(sql.replace("%", "%%"), props.parameters, "%s")
    else:
        params = []
    after_sql, after_params = (
        bind_parameters(after.replace("%", "%%"), props.parameters, "%s")
        if after and props.parameters
        else (after, [])
    )
    mode = fetch_type(props)
    try:
        conn = await interruptible(lambda: psycopg.connect(**info), lambda: None, "postgres-connect")
    except psycopg.Error as exc:
        shutil.rmtree(private, ignore_errors=True)
        raise TaskFailed(f"PostgreSQL: cannot connect to {info['host']}:{info['port']}: {exc}") from None

    def work() -> Fetched:
        if props.timeZoneId:
            conn.execute("SELECT set_config('TimeZone', %s, false)", [props.timeZoneId])
        if mode in ("STORE", "FETCH_ONE") and _ROWS.match(sql) and _single(sql):
            cursor: Any = conn.cursor(name="engine_query")
            cursor.itersize = max(1, props.fetchSize)
        else:
            cursor = conn.cursor()
        cursor.execute(sql, params or None)
        while cursor.nextset():  # several statements: the last one's result
            pass
        fetched = fetch_result(cursor, mode, props.fetchSize, private)
        cursor.close()
        if after_sql:
            conn.execute(after_sql, after_params or None)
        conn.commit()
        return fetched

    def cancel() -> None:
        conn.cancel_safe()  # psycopg >= 3.2: a new connection sends the cancel request

    try:
        try:
            fetched = await interruptible(work, cancel, "postgres-query")
        except psycopg.Error as exc:
            raise TaskFailed(f"PostgreSQL: {exc}".strip(), retryable=False) from None
        finally:
            conn.close()
        outputs = await store_uri(ctx, fetched)
    finally:
        shutil.rmtree(private, ignore_errors=True)
    return TaskResult(outputs=outputs)


SPECS = [
    runnable(
        TYPE,
        PostgresQuery,
        run,
        "Run SQL on PostgreSQL (`url` jdbc:postgresql://host:port/db, `username`, `password`); "
        "`fetchType` NONE/FETCH_ONE/FETCH/STORE → outputs `row`, `rows`, `uri` (ION), `size`.",
        render=False,
        extra={
            "not_supported": {
                "outputFiles": "the server cannot write to the worker's disk (as in Kestra): STORE the "
                "rows (fetchType: STORE) and convert the ION file (io.kestra.plugin.serdes.csv.IonToCsv)"
            }
        },
    ),
]
