"""One download policy for ``verify --fetch`` and the verification page's document check
(``peru_compras.fetch``): each host is resolved once, checked, and connected to at the checked address, so a
DNS rebinding (a public address for the check, 127.0.0.1 for the connection) cannot reach the server's own
network. Real HTTP servers on 127.0.0.1; ``socket.getaddrinfo`` is scripted to rebind a test name, and
``socket.create_connection`` records every connection and routes the made-up public address to a local server
standing in for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from peru_compras.fetch import FetchPolicy, FetchRefused, PublishedCheck, check_published, fetch_document
from peru_compras.web.published import DocumentChecker

NAME = "docs.rebind.test"
PUBLIC = "93.184.215.14"  # a public address; connections to it go to the `public` server below
DOCUMENT = b"%PDF-1.4\n% the registered original\n%%EOF\n"
DIGEST = hashlib.sha256(DOCUMENT).digest()


@dataclass
class Server:
    """A real HTTP server on 127.0.0.1 answering every GET with `status`, `headers` and `body`."""

    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hits: list[tuple[str, str]] = field(default_factory=list)  # (path, Host header)
    port: int = 0

    def start(self) -> ThreadingHTTPServer:
        server_state = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 — http.server's name
                server_state.hits.append((self.path, self.headers.get("Host", "")))
                self.send_response(server_state.status)
                for key, value in {"Content-Length": str(len(server_state.body)), **server_state.headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(server_state.body)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return server


@dataclass
class Rebinding:
    """`NAME` resolves to `PUBLIC` the first time and to 127.0.0.1 (where `internal` listens) afterwards."""

    internal: Server
    public: Server
    lookups: list[str]
    connects: list[tuple[str, int]]

    @property
    def url(self) -> str:
        return f"http://{NAME}:{self.internal.port}/doc.pdf"


@pytest.fixture
def rebinding(monkeypatch: pytest.MonkeyPatch) -> Iterator[Rebinding]:
    internal = Server(b"%PDF-1.4\n% an internal service, never to be reached\n")
    public = Server(DOCUMENT)
    servers = [internal.start(), public.start()]
    state = Rebinding(internal, public, [], [])
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.create_connection

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in (NAME, NAME.encode()):  # anyio, for one, passes the name IDNA-encoded, as bytes
            state.lookups.append(host)
            address = PUBLIC if len(state.lookups) == 1 else "127.0.0.1"
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, int(port)))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        state.connects.append((address[0], address[1]))
        if address[0] == PUBLIC:
            address = ("127.0.0.1", public.port)
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    yield state
    for server in servers:
        server.shutdown()
        server.server_close()


def check(kind: str, url: str) -> tuple[str, str | None]:
    """(outcome, detail) of checking `url` the page's way or the `verify --fetch` way."""
    if kind == "page":
        result = asyncio.run(DocumentChecker(None, "https://verifica.example.pe", timeout=5).check(1, url, DIGEST, "c"))
        return result.outcome, result.detail
    policy = FetchPolicy("http://127.0.0.1:8000", frozenset({NAME}), timeout=5)
    published: PublishedCheck = check_published(url, DIGEST, policy)
    return published.outcome, published.detail


@pytest.mark.parametrize("kind", ["page", "verify"])
def test_a_rebinding_name_is_connected_to_at_the_checked_address(rebinding: Rebinding, kind: str) -> None:
    outcome, detail = check(kind, rebinding.url)
    assert outcome == "original", detail  # "altered" would mean the internal server answered
    assert rebinding.lookups == [NAME]  # resolved once: no second lookup for the connection
    assert rebinding.connects == [(PUBLIC, rebinding.internal.port)]
    assert rebinding.internal.hits == []
    assert rebinding.public.hits == [("/doc.pdf", f"{NAME}:{rebinding.internal.port}")]


@pytest.mark.parametrize("kind", ["page", "verify"])
def test_a_redirect_that_rebinds_to_loopback_is_refused(rebinding: Rebinding, kind: str) -> None:
    rebinding.public.status, rebinding.public.body = 302, b""
    rebinding.public.headers = {"Location": rebinding.url.replace("/doc.pdf", "/again.pdf")}
    outcome, detail = check(kind, rebinding.url)
    assert outcome == "refused" and detail, detail
    if kind == "verify":
        assert "resolves to 127.0.0.1" in detail
    else:  # the public page does not tell what an internal name resolves to
        assert "127.0.0.1" not in detail and "public internet addresses" in detail
    assert rebinding.lookups == [NAME, NAME]  # the redirect was re-checked with a fresh lookup
    assert rebinding.connects == [(PUBLIC, rebinding.internal.port)]
    assert rebinding.internal.hits == []


def test_the_pinned_request_keeps_the_host_name_for_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, *a, **k: [
        (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (PUBLIC, port))])
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=DOCUMENT)

    policy = FetchPolicy.for_page("https://verifica.example.pe", max_bytes=1000, timeout=5)
    for url, name in (("https://docs.example.pe/x.pdf", "docs.example.pe"),
                      ("https://ñandú.pe:8443/x.pdf", "xn--and-6ma2c.pe")):
        fetched = fetch_document(url, policy, transport=httpx.MockTransport(handler))
        request = seen[-1]
        assert fetched.data == DOCUMENT and request.url.host == PUBLIC
        assert request.extensions["sni_hostname"] == name  # the certificate is checked against the name
        assert request.headers["host"] == (name if url.count(":") == 1 else f"{name}:8443")
        assert request.headers["user-agent"] == "peru-compras document check"


def test_page_and_verify_policies() -> None:
    page = FetchPolicy.for_page("http://127.0.0.1:8000", max_bytes=1000, timeout=5)
    verify = FetchPolicy.from_env("http://127.0.0.1:8000", ["docs.example.pe"])
    # the page checks any registered host; verify --fetch only the base URL's and the listed ones
    assert page.host_allowed("transparencia.example.org", 443)
    assert not verify.host_allowed("transparencia.example.org", 443)
    with pytest.raises(FetchRefused, match="not allowed"):
        fetch_document("http://transparencia.example.org/x.pdf", verify)
    # verify --fetch trusts its own local origin; the page never fetches a local address (its own
    # documents come from the store), unless a test allows it
    server = Server(DOCUMENT)
    running = server.start()
    try:
        own = f"http://127.0.0.1:{server.port}/d/x"
        local = FetchPolicy.for_page(f"http://127.0.0.1:{server.port}", max_bytes=1000, timeout=5)
        with pytest.raises(FetchRefused, match="loopback or private"):
            fetch_document(own, local)
        assert fetch_document(own, FetchPolicy.from_env(f"http://127.0.0.1:{server.port}")).data == DOCUMENT
        allowed = FetchPolicy.for_page("https://verifica.example.pe", max_bytes=1000, timeout=5, allow_private=True)
        assert fetch_document(own, allowed).data == DOCUMENT
        small = FetchPolicy.for_page("https://verifica.example.pe", max_bytes=10, timeout=5, allow_private=True)
        too_large = check_published(own, DIGEST, small)
        assert too_large.outcome == "too_large" and too_large.size == len(DOCUMENT)
    finally:
        running.shutdown()
        running.server_close()
    for url in ("http://[::1", "http://host:99999/x.pdf", "file:///etc/passwd"):
        assert check_published(url, DIGEST, page).outcome == "refused", url
