"""http.Request: one HTTP call with httpx; Kestra's outputs ``uri``, ``code``, ``headers``, ``body``.

As in Kestra, a response code >= 400 fails the task unless ``allowFailed`` (or
``options.allowFailed``) is true; ``options.allowedResponseCodes`` replaces that rule with an
explicit list. The body is returned as text (use ``json(...)`` in expressions to parse it).
Environment proxy variables are ignored, like Kestra's Java client; use ``options.proxy*``.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    import httpx

from engine.core.errors import TaskFailed
from plugins.api import RunContext, TaskResult, runnable
from plugins.core.sleep import duration_prop

P = "io.kestra.plugin.core.http."

DEFAULT_READ_TIMEOUT_S = 10.0
DEFAULT_MAX_CONTENT_LENGTH = 10 * 1024 * 1024
MULTIPART = "multipart/form-data"


class RequestOptions(msgspec.Struct, frozen=True):
    connectTimeout: str | float | None = None
    readTimeout: str | float | None = None
    readIdleTimeout: str | float | None = None
    connectionPoolIdleTimeout: str | float | None = None
    maxContentLength: int | None = None
    proxyType: str | None = None
    proxyAddress: str | None = None
    proxyPort: int | None = None
    proxyUsername: str | None = None
    proxyPassword: str | None = None
    defaultCharset: str | None = None
    followRedirects: bool = True
    logLevel: str | None = None
    basicAuthUser: str | None = None
    basicAuthPassword: str | None = None
    allowFailed: bool | None = None
    allowedResponseCodes: list[int] | None = None


class SslOptions(msgspec.Struct, frozen=True):
    insecureTrustAllCertificates: bool | None = None


class Request(msgspec.Struct, frozen=True):
    uri: str
    method: str = "GET"
    body: Any = None
    formData: dict[str, Any] | None = None
    contentType: str | None = None
    headers: dict[str, Any] | None = None
    options: RequestOptions | None = None
    sslOptions: SslOptions | None = None
    allowFailed: bool = False
    encryptBody: bool = False


def _timeout(options: RequestOptions) -> httpx.Timeout:
    import httpx

    read = DEFAULT_READ_TIMEOUT_S
    if options.readTimeout is not None:
        read = duration_prop(options.readTimeout, "options.readTimeout")
    connect = read
    if options.connectTimeout is not None:
        connect = duration_prop(options.connectTimeout, "options.connectTimeout")
    return httpx.Timeout(read, connect=connect)


def _proxy(options: RequestOptions) -> str | None:
    if not options.proxyAddress or options.proxyPort is None:
        return None
    if (options.proxyType or "HTTP").upper() == "DIRECT":
        return None
    scheme = "socks5" if (options.proxyType or "").upper() == "SOCKS" else "http"
    auth = ""
    if options.proxyUsername:
        auth = options.proxyUsername + (f":{options.proxyPassword}" if options.proxyPassword else "") + "@"
    return f"{scheme}://{auth}{options.proxyAddress}:{options.proxyPort}"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _request_kwargs(props: Request) -> dict[str, Any]:
    headers = {str(k): "" if v is None else str(v) for k, v in (props.headers or {}).items()}
    lowered = {k.lower() for k in headers}
    kwargs: dict[str, Any] = {}
    options = props.options or RequestOptions()
    if options.basicAuthUser is not None and options.basicAuthPassword is not None:
        token = base64.b64encode(f"{options.basicAuthUser}:{options.basicAuthPassword}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    if props.formData is not None:
        content_type = (props.contentType or "").split(";")[0].strip().lower()
        if content_type == MULTIPART:
            # (None, value) parts are plain fields; (filename, content) parts are files.
            kwargs["files"] = [
                (str(key), (str(value["name"]), _text(value["content"]).encode()))
                if isinstance(value, dict) and "name" in value and "content" in value
                else (str(key), (None, _text(value).encode()))
                for key, value in props.formData.items()
            ]
        else:
            kwargs["data"] = {str(k): _text(v) for k, v in props.formData.items()}
            if props.contentType and "content-type" not in lowered:
                headers["Content-Type"] = props.contentType
    elif props.body is not None:
        kwargs["content"] = _text(props.body).encode()
        if "content-type" not in lowered:
            headers["Content-Type"] = props.contentType or "application/json"
    kwargs["headers"] = headers
    return kwargs


@contextlib.asynccontextmanager
async def sent(props: Request) -> AsyncIterator[httpx.Response]:
    """The task's request sent; yields the response with its body still to read (stream it, bound it:
    ``body_chunks``). httpx's failures, sending or reading, become a TaskFailed that says why."""
    import httpx  # imported on first use: it costs ~60 ms at start-up

    options = props.options or RequestOptions()
    method = props.method.upper()
    verify = not (props.sslOptions and props.sslOptions.insecureTrustAllCertificates)
    try:
        async with httpx.AsyncClient(
            timeout=_timeout(options),
            follow_redirects=options.followRedirects,
            verify=verify,
            trust_env=False,
            proxy=_proxy(options),
        ) as client:
            request = client.build_request(method, props.uri, **_request_kwargs(props))
            response = await client.send(request, stream=True)
            try:
                yield response
            finally:
                await response.aclose()
    except httpx.InvalidURL as exc:
        raise TaskFailed(f"uri: invalid URI {props.uri!r}: {exc}", retryable=False) from None
    except httpx.UnsupportedProtocol as exc:
        raise TaskFailed(f"uri: {exc}", retryable=False) from None
    except httpx.TimeoutException as exc:
        raise TaskFailed(f"{method} {props.uri} timed out: {type(exc).__name__}") from None
    except httpx.HTTPError as exc:
        raise TaskFailed(f"{method} {props.uri} failed: {exc or type(exc).__name__}") from None


async def body_chunks(response: httpx.Response, uri: str, limit: int | None) -> AsyncIterator[bytes]:
    """The response's body (decoded: gzip...), refused past ``limit`` bytes (``maxContentLength``)."""
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if limit is not None and size > limit:
            raise TaskFailed(
                f"response body from {uri} is larger than options.maxContentLength ({limit} bytes)",
                retryable=False,
            )
        yield chunk


def header_lists(response: httpx.Response) -> dict[str, list[str]]:
    """Kestra's ``headers`` output: every value of every header, in order."""
    headers: dict[str, list[str]] = {}
    for name, value in response.headers.raw:
        headers.setdefault(name.decode("latin-1"), []).append(value.decode("latin-1"))
    return headers


async def run(props: Request, ctx: RunContext) -> TaskResult:
    options = props.options or RequestOptions()
    method = props.method.upper()
    if props.encryptBody:
        ctx.log("WARN", "encryptBody is not supported: the body is returned in clear in output `body`")
    limit = options.maxContentLength if options.maxContentLength is not None else DEFAULT_MAX_CONTENT_LENGTH
    async with sent(props) as response:
        chunks = [
            chunk async for chunk in body_chunks(response, props.uri, None if method == "HEAD" else limit)
        ]

    raw = b"".join(chunks)
    encoding = response.charset_encoding or options.defaultCharset or "utf-8"
    try:
        body: str | None = raw.decode(encoding, errors="replace") if raw else None
    except LookupError:
        body = raw.decode("utf-8", errors="replace")
    code = response.status_code
    outputs: dict[str, Any] = {
        "uri": props.uri,
        "code": code,
        "headers": header_lists(response),
        "body": body,
    }
    ctx.log("DEBUG", f"Request '{props.uri}' with the response code '{code}'")

    if options.allowedResponseCodes is not None:
        if code not in options.allowedResponseCodes:
            raise TaskFailed(
                f"Failed http request with response code '{code}' (allowed: {options.allowedResponseCodes})",
                outputs=outputs,
            )
    elif code >= 400 and not (props.allowFailed or options.allowFailed):
        raise TaskFailed(f"Failed http request with response code '{code}'", outputs=outputs)
    return TaskResult(outputs=outputs)


SPECS = [
    runnable(
        P + "Request",
        Request,
        run,
        "Make an HTTP request; outputs `uri`, `code`, `headers` and `body` (text).",
        aliases=("io.kestra.plugin.fs.http.Request",),
    ),
]
