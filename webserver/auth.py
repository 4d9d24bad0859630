"""Who may call the API: basic-auth users and/or bearer API tokens (``Auth.from_env``).

Every route but ``/health`` and ``/ready`` is guarded; binding a non-loopback address without
auth is refused (``is_loopback``).
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from litestar.types import ASGIApp, Receive

from engine.core.errors import EngineError
from engine.settings import Settings, settings

PUBLIC = frozenset({"/health", "/ready"})
# Webhooks are open, as in Kestra: the trigger's key in the path is the secret (compared in constant
# time); a caller of a webhook has no API credentials.
PUBLIC_PATHS = re.compile(r"/api/v1/(?:[^/]+/)?executions/webhook/")


@dataclass(frozen=True)
class Auth:
    """Who may call the API: basic-auth users and/or bearer tokens. Empty = no auth (loopback only)."""

    users: Mapping[str, str] = field(default_factory=dict)
    tokens: frozenset[str] = frozenset()

    @property
    def enabled(self) -> bool:
        return bool(self.users or self.tokens)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Auth:
        """``ENGINE_API_USER`` + ``ENGINE_API_PASSWORD`` (basic auth), ``ENGINE_API_TOKENS`` (comma list)."""
        given = settings() if env is None else Settings.from_env(env)
        users = {}
        user, password = given.api_user, given.api_password
        if user and password:
            users[user] = password
        elif user or password:
            raise EngineError("set both ENGINE_API_USER and ENGINE_API_PASSWORD for basic auth (or neither)")
        return cls(users, given.api_tokens)

    def check(self, header: str | None) -> bool:
        if not self.enabled:
            return True
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer":
            return any(hmac.compare_digest(value.encode(), t.encode()) for t in self.tokens)
        if scheme.lower() == "basic" and self.users:
            try:
                user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            expected = self.users.get(user)
            return expected is not None and hmac.compare_digest(password.encode(), expected.encode())
        return False


def auth_middleware(auth: Auth) -> Any:
    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Any, receive: Receive, send: Any) -> None:
            path = scope.get("path", "")
            if scope["type"] != "http" or not auth.enabled or path in PUBLIC or PUBLIC_PATHS.match(path):
                await app(scope, receive, send)
                return
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            if auth.check(headers.get("authorization")):
                await app(scope, receive, send)
                return
            schemes = (["Basic"] if auth.users else []) + (["Bearer"] if auth.tokens else [])
            body = (
                b'{"message":"authentication required: send Authorization: '
                + " or ".join(schemes).encode()
                + b' credentials (ENGINE_API_USER/ENGINE_API_PASSWORD or ENGINE_API_TOKENS)"}'
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"www-authenticate", f'{schemes[0]} realm="engine"'.encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})

        return middleware

    return factory


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
