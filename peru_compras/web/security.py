"""Security headers and request limits for every answer of the page, as plain ASGI (cheap on every request).

:class:`Guard` wraps the Starlette app: it refuses over-long URLs (414) and bodies (413), adds the common
headers, the page's Content-Security-Policy (scripts from this origin only, the one stylesheet by its hash,
no third-party resources, Trusted Types) or, on a PDF, the sandbox policy, and HSTS on answers that came over
HTTPS. It also dispatches the hottest GET routes itself (:data:`FastRoutes`), skipping the router.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

if TYPE_CHECKING:
    from .page import Page

MAX_URL = 2048
MAX_BODY = 16 * 1024

Handler = Callable[[Request], Awaitable[Response]]
#: the hottest routes, dispatched without the router: path -> handler (or None: let the app route it)
FastRoutes = Callable[[str], Handler | None]

#: every PDF the page sends: no scripts, no plugins, no requests, a unique origin (with `attachment`)
DOCUMENT_CSP = "sandbox; default-src 'none'; frame-ancestors 'none'"
DOCUMENT_CSP_HEADER = (b"content-security-policy", DOCUMENT_CSP.encode())
#: sent on answers that came over HTTPS (directly, or from a trusted proxy's X-Forwarded-Proto)
HSTS = (b"strict-transport-security", b"max-age=31536000")


def content_security_policy(style_hash: str) -> str:
    return ("default-src 'none'; script-src 'self'; style-src 'sha256-" + style_hash + "'; img-src 'self' data:; "
            "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'; "
            "manifest-src 'self'; require-trusted-types-for 'script'; trusted-types 'none'")


def _is_pdf(headers: list[tuple[bytes, bytes]]) -> bool:
    return (b"content-type", b"application/pdf") in headers


class Guard:
    """Adds the security headers to every response and refuses oversized requests."""

    def __init__(self, app: Starlette, csp: str, fast: FastRoutes | None = None) -> None:
        self.app = app
        self.fast = fast
        self.common = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
        ]
        self.csp = (b"content-security-policy", csp.encode())

    @property
    def page(self) -> Page:
        page: Page = self.app.state.page
        return page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") > MAX_URL:
            await self._refuse(send, 414, b"URI too long")
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > MAX_BODY):
                await self._refuse(send, 413, b"request body too large")
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > MAX_BODY:
                raise StarletteHTTPException(413, "request body too large")
            return message

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name for name, _ in headers}
                headers += [item for item in self.common if item[0] not in names]
                if b"content-security-policy" not in names:
                    headers.append(DOCUMENT_CSP_HEADER if _is_pdf(headers) else self.csp)
                if scope.get("scheme") == "https":
                    headers.append(HSTS)
                message = {**message, "headers": headers}
            await send(message)

        handler = self.fast(scope["path"]) if self.fast and scope["method"] in ("GET", "HEAD") else None
        if handler is not None:
            request = Request(scope, limited_receive)
            try:
                response = await handler(request)
            except Exception:  # noqa: BLE001 — the full app runs it again and answers the error its way
                response = None
            if response is not None:
                await response(scope, limited_receive, send_with_headers)
                return
        await self.app(scope, limited_receive, send_with_headers)

    async def _refuse(self, send: Send, status: int, text: bytes) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(text)).encode()), *self.common, self.csp]})
        await send({"type": "http.response.body", "body": text})
