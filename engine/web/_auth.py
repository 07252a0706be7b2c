"""Who may read the pages: anyone who can reach a loopback address, else only with the token.

Binding to another address without a token is refused (:func:`check_binding`). The token is
accepted as ``Authorization: Bearer <token>`` (Prometheus, curl) or as the password of HTTP basic
auth, any user name (browsers ask for it). It is compared in constant time and never logged.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
from typing import Optional

TOKEN_ENV = "RUNJOURNAL_SERVE_TOKEN"
REALM = "runjournal"


class BindingRefused(Exception):
    exit_code = 2


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: Optional[str]) -> None:
    if token or is_loopback(host):
        return
    raise BindingRefused(
        f"--host {host} is not a loopback address: anyone who reaches it would read the journal. "
        f"Give a token with --token or ${TOKEN_ENV} (sent as 'Authorization: Bearer <token>', or as the "
        "basic-auth password), or bind to 127.0.0.1 behind a reverse proxy that authenticates."
    )


def authorized(header: Optional[str], token: str) -> bool:
    """Whether an ``Authorization`` header carries ``token``."""
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme == "basic":
        try:
            value = base64.b64decode(value, validate=True).decode("utf-8").partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return False
    elif scheme != "bearer":
        return False
    return hmac.compare_digest(value.encode("utf-8"), token.encode("utf-8"))


class TokenAuth:
    """ASGI middleware: a request without the token gets 401 and a basic-auth challenge."""

    def __init__(self, app, token: str):
        self.app, self.token = app, token

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        header = headers.get(b"authorization")
        if authorized(header.decode("latin-1") if header else None, self.token):
            await self.app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"www-authenticate", f'Basic realm="{REALM}", charset="UTF-8"'.encode()),
        ]})
        await send({"type": "http.response.body", "body": b"401: this runjournal needs its token\n"})
