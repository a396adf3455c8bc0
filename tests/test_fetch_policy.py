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
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from peru_compras.errors import ConfigurationError, PeruComprasError
from peru_compras.fetch import (
    DocumentMissing,
    FetchFailed,
    FetchPolicy,
    FetchRefused,
    FetchTooLarge,
    PublishedCheck,
    address_is_public,
    check_published,
    fetch_document,
)
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


# --------------------------------------------------------------------------------------------------
# The rules one by one, each against a real server on 127.0.0.1 where a download is involved.


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up early (the size cap, a time limit) is what the tests ask for


class Routes:
    """A real HTTP server on 127.0.0.1: `routes[path]` writes the whole answer; every request is recorded."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.routes: dict[str, Any] = {}
        state = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 — http.server's name
                state.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                path = self.path.split("?", 1)[0]
                route = state.routes.get(path) or state.routes.get(path.rsplit("/", 1)[0] + "/*")
                if route is None:
                    self.answer(404, b"not here")
                else:
                    route(self)
                self.close_connection = True

            def answer(self, status: int, body: bytes, headers: dict[str, str] | None = None,
                       length: int | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def _close_delimited(handler: Any, body: bytes, pause: float = 0.0, piece: int = 64 * 1024) -> None:
    """An answer without Content-Length: the body ends when the connection closes."""
    handler.send_response(200)
    handler.send_header("Connection", "close")
    handler.end_headers()
    for start in range(0, len(body), piece):
        try:
            handler.wfile.write(body[start:start + piece])
            handler.wfile.flush()
        except OSError:  # the client hung up: exactly what a cap should do
            return
        time.sleep(pause)


def _redirects(handler: Any) -> None:
    left = int(handler.path.rsplit("/", 1)[1])
    if left == 0:
        handler.answer(200, DOCUMENT)
    else:  # relative Location: resolved against the current URL
        handler.answer(302, b"", {"Location": f"{left - 1}"})


PIECES = b"%PDF-1.4\n" + bytes(range(256)) * 200  # 51 KB sent in 4 KB pieces


def _stall(handler: Any) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "100")
    handler.end_headers()
    handler.wfile.write(b"%PDF-1.4\n")
    handler.wfile.flush()
    time.sleep(1)


def _slow_redirects(handler: Any) -> None:
    time.sleep(0.12)
    _redirects(handler)


@pytest.fixture(scope="module")
def web() -> Iterator[Routes]:
    routes = Routes()
    tampered = bytearray(DOCUMENT)
    tampered[-8] ^= 1
    routes.routes.update({
        "/doc.pdf": lambda h: h.answer(200, DOCUMENT, {"Content-Type": "application/pdf"}),
        "/tampered.pdf": lambda h: h.answer(200, bytes(tampered)),
        "/truncated.pdf": lambda h: h.answer(200, DOCUMENT[:-10]),
        "/cut-off.pdf": lambda h: h.answer(200, DOCUMENT[:20], length=len(DOCUMENT)),  # closes mid-body
        "/gone.pdf": lambda h: h.answer(410, b"gone"),
        "/forbidden.pdf": lambda h: h.answer(403, b"no"),
        "/error.pdf": lambda h: h.answer(500, b"oops"),
        "/no-location": lambda h: h.answer(302, b""),
        "/r/*": _redirects,
        "/slow/*": _slow_redirects,
        "/to-other-port": lambda h: h.answer(302, b"", {"Location": "http://127.0.0.1:9/doc.pdf"}),
        "/big-declared": lambda h: h.answer(200, b"", length=10**9),
        "/stream-big": lambda h: _close_delimited(h, b"%" * (8 * 1024 * 1024)),
        "/exact-100": lambda h: _close_delimited(h, b"x" * 100),
        "/exact-101": lambda h: _close_delimited(h, b"x" * 101),
        "/declared-100": lambda h: h.answer(200, b"x" * 100),
        "/declared-101": lambda h: h.answer(200, b"x" * 101),
        "/trickle": lambda h: _close_delimited(h, b"%" * 40, pause=0.03, piece=1),
        "/silent": lambda h: time.sleep(1),
        "/stall": _stall,
        "/pieces.pdf": lambda h: _close_delimited(h, PIECES, piece=4096),
    })
    yield routes
    routes.server.shutdown()
    routes.server.server_close()


def local(web: Routes, **limits: Any) -> FetchPolicy:
    """verify --fetch's policy with the test server as the base URL (its own origin may be local)."""
    return FetchPolicy.from_env(web.url("/"), **limits)


@pytest.mark.parametrize(("path", "outcome", "code"), [
    ("/doc.pdf", "original", 0),
    ("/tampered.pdf", "altered", 1),  # one bit changed
    ("/truncated.pdf", "altered", 1),  # a shorter file, served whole
    ("/cut-off.pdf", "unreachable", 3),  # the connection closed before Content-Length bytes came
    ("/missing.pdf", "missing", 1),  # 404
    ("/gone.pdf", "missing", 1),  # 410
    ("/forbidden.pdf", "unreachable", 3),
    ("/error.pdf", "unreachable", 3),
    ("/no-location", "unreachable", 3),
    ("/big-declared", "too_large", 2),
    ("/to-other-port", "refused", 2),
])
def test_the_verdict_is_original_only_when_the_bytes_match(web: Routes, path: str, outcome: str, code: int) -> None:
    result = check_published(web.url(path), DIGEST, local(web))
    assert (result.outcome, result.exit_code) == (outcome, code), result.detail
    assert result.expected_sha256 == DIGEST and result.url == web.url(path)
    if outcome == "original":
        assert (result.sha256, result.size, result.final_url) == (DIGEST, len(DOCUMENT), result.url)
        assert result.detail is None
        assert result.human() == f"  published: the published PDF is the registered original ({result.url})"
    elif outcome == "altered":
        assert result.sha256 is not None and result.sha256 != DIGEST and result.size == len(DOCUMENT) - (
            10 if "truncated" in path else 0)
        assert result.detail == "its SHA-256 differs from the one registered on chain"
        assert "NOT the registered original" in result.human() and result.detail in result.human()
    else:
        assert result.sha256 is None and result.detail and result.final_url is None
        assert result.human().endswith("\n    " + result.detail)
    data = result.to_json()
    assert data["outcome"] == outcome and data["expected_sha256"] == DIGEST.hex()
    assert data["sha256"] == (result.sha256.hex() if result.sha256 else None)
    if code == 1 and outcome == "missing":
        assert "HTTP 4" in str(result.detail) and "gone" in str(result.detail)


def test_a_missing_document_is_document_missing(web: Routes) -> None:
    for path, status in (("/missing.pdf", 404), ("/gone.pdf", 410)):
        with pytest.raises(DocumentMissing, match=f"answered HTTP {status}"):
            fetch_document(web.url(path), local(web))
    with pytest.raises(FetchFailed, match="answered HTTP 500"):
        fetch_document(web.url("/error.pdf"), local(web))


@pytest.mark.parametrize("credentials", ["user@", "user:pass@", ":pass@", "user:@"])
def test_credentials_in_the_url_are_refused(web: Routes, credentials: str) -> None:
    url = web.url("/doc.pdf").replace("http://", f"http://{credentials}")
    with pytest.raises(FetchRefused, match="carries credentials"):
        fetch_document(url, local(web))
    redirect = Routes()
    redirect.routes["/x"] = lambda h: h.answer(302, b"", {"Location": url})
    try:
        result = check_published(redirect.url("/x"), DIGEST, FetchPolicy.for_page(
            "https://verifica.example.pe", max_bytes=1000, timeout=5, allow_private=True))
        assert result.outcome == "refused" and "redirect 1" in str(result.detail), result.detail
    finally:
        redirect.server.shutdown()
        redirect.server.server_close()
    assert [path for path, _ in web.requests if path == "/doc.pdf" and credentials in path] == []


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/doc.pdf", "file:///etc/passwd", "gopher://x/", "javascript:x",
                                 "http:///doc.pdf", "http://[::1/doc.pdf", "http://host:99999/x", "//host/x.pdf"])
def test_only_http_urls_with_a_host(url: str) -> None:
    policy = FetchPolicy.for_page("https://verifica.example.pe", max_bytes=1000, timeout=5, allow_private=True)
    with pytest.raises(FetchRefused):
        fetch_document(url, policy)


NOT_PUBLIC = [
    "127.0.0.1", "127.255.255.254", "10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.255", "192.168.0.1",
    "169.254.169.254", "169.254.0.1", "100.64.0.1", "100.127.255.254", "0.0.0.0", "0.1.2.3", "224.0.0.1",
    "239.255.255.250", "240.0.0.1", "255.255.255.255", "192.0.2.1", "198.18.0.1", "198.51.100.7",
    "203.0.113.9", "192.0.0.170", "::1", "::", "fc00::1", "fdff:ffff::1", "fe80::1", "febf::1", "ff02::1", "ff0e::1",
    "::ffff:127.0.0.1", "::ffff:10.1.2.3", "::ffff:169.254.169.254", "::ffff:224.0.0.1", "::ffff:0.0.0.0",
    "2001:db8::1", "100::1", "2001::1",
    # IPv6 for a translator to an IPv4 address that is not public: NAT64, 6to4
    "64:ff9b::7f00:1", "64:ff9b::a00:1", "64:ff9b::a9fe:a9fe", "2002:a00:1::1", "2002:7f00:1::", "2002:c0a8:101::",
]
PUBLIC_ADDRESSES = [
    "93.184.215.14", "8.8.8.8", "1.1.1.1", "100.63.255.255", "100.128.0.1", "172.15.255.255", "172.32.0.1",
    "192.167.255.255", "169.253.255.255", "223.255.255.254", "11.0.0.1", "2606:4700:4700::1111",
    "2a00:1450:4001::200e", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_private_and_special_addresses_are_not_public(address: str) -> None:
    assert address_is_public(address) is False


@pytest.mark.parametrize("address", PUBLIC_ADDRESSES)
def test_public_unicast_addresses_are_public(address: str) -> None:
    assert address_is_public(address) is True


def _resolve_to(monkeypatch: pytest.MonkeyPatch, *addresses: str) -> list[str]:
    asked: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        asked.append(host)
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "",
                 (a, int(port))) for a in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


@pytest.mark.parametrize("address", ["224.0.0.1", "0.0.0.0", "100.64.0.1", "169.254.169.254", "::ffff:127.0.0.1",
                                     "fc00::1", "fe80::1%eth0", "10.0.0.1"])
def test_a_name_resolving_to_a_special_address_is_refused_by_both_policies(
        monkeypatch: pytest.MonkeyPatch, address: str) -> None:
    asked = _resolve_to(monkeypatch, address)
    page = FetchPolicy.for_page("https://verifica.example.pe", max_bytes=1000, timeout=5)
    verify = FetchPolicy.from_env("https://verifica.example.pe", [NAME])
    for policy in (page, verify):
        with pytest.raises(FetchRefused, match="loopback or private"):
            fetch_document(f"http://{NAME}/doc.pdf", policy)
    assert asked == [NAME, NAME]
    literal = address.split("%")[0]
    host = f"[{literal}]" if ":" in literal else literal
    with pytest.raises(FetchRefused, match="loopback or private"):  # the address written as the host
        fetch_document(f"http://{host}/doc.pdf", page)


def test_every_address_a_name_resolves_to_must_be_public(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolve_to(monkeypatch, PUBLIC, "10.0.0.1")
    page = FetchPolicy.for_page("https://verifica.example.pe", max_bytes=1000, timeout=5)
    with pytest.raises(FetchRefused, match="resolves to 10.0.0.1"):
        fetch_document(f"http://{NAME}/doc.pdf", page)
    _resolve_to(monkeypatch)
    with pytest.raises(FetchFailed, match="has no address"):
        fetch_document(f"http://{NAME}/doc.pdf", page)


def test_a_name_that_does_not_resolve_is_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    page = FetchPolicy.for_page("https://verifica.example.pe", max_bytes=1000, timeout=5)
    result = check_published(f"http://{NAME}/doc.pdf", DIGEST, page)
    assert (result.outcome, result.exit_code) == ("unreachable", 3) and "cannot resolve" in str(result.detail)


def test_only_the_base_urls_own_origin_may_be_local(web: Routes) -> None:
    # the same host on another port is another service: refused like any other loopback address
    other = Routes()
    other.routes["/doc.pdf"] = lambda h: h.answer(200, DOCUMENT)
    try:
        with pytest.raises(FetchRefused, match="resolves to 127.0.0.1"):
            fetch_document(other.url("/doc.pdf"), local(web))
        assert other.requests == []
        result = check_published(web.url("/to-other-port"), DIGEST, local(web))
        assert result.outcome == "refused" and "redirect 1" in str(result.detail)
        # the page's policy has no local exception at all, even for its own base URL
        page = FetchPolicy.for_page(web.url("/"), max_bytes=1000, timeout=5)
        assert check_published(web.url("/doc.pdf"), DIGEST, page).outcome == "refused"
    finally:
        other.server.shutdown()
        other.server.server_close()


def test_hosts_allowed_for_verify_fetch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERU_COMPRAS_FETCH_HOSTS", " Docs.Example.PE. , files.example.org:8443,, ")
    policy = FetchPolicy.from_env("https://oc.example.pe", ["extra.example.net"])
    assert policy.extra_hosts == frozenset({"docs.example.pe", "files.example.org:8443", "extra.example.net"})
    assert policy.host_allowed("oc.example.pe", 443) and policy.host_allowed("oc.example.pe", 8080)
    assert policy.host_allowed("docs.example.pe", 80)
    assert policy.host_allowed("files.example.org", 8443) and not policy.host_allowed("files.example.org", 443)
    assert policy.host_allowed("extra.example.net", 443)
    assert not policy.host_allowed("evil.example.pe", 443) and not policy.host_allowed("example.pe", 443)
    assert policy.describe_allowed() == "docs.example.pe, extra.example.net, files.example.org:8443, oc.example.pe"
    assert policy.trusted_origin == ("oc.example.pe", 443)
    assert FetchPolicy("http://OC.example.pe./").trusted_origin == ("oc.example.pe", 80)
    with pytest.raises(FetchRefused, match="'evil.example.pe', which is not allowed") as refused:
        fetch_document("https://EVIL.example.pe./x.pdf", policy)
    assert refused.value.hint and "PERU_COMPRAS_FETCH_HOSTS" in refused.value.hint


def test_limits_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = FetchPolicy.from_env("https://oc.example.pe")
    assert (policy.max_bytes, policy.timeout, policy.max_redirects) == (50 * 1024 * 1024, 20.0, 3)
    monkeypatch.setenv("PERU_COMPRAS_FETCH_MAX_BYTES", " 1234 ")
    monkeypatch.setenv("PERU_COMPRAS_FETCH_TIMEOUT", "2.5")
    assert (FetchPolicy.from_env("https://oc.example.pe").max_bytes,
            FetchPolicy.from_env("https://oc.example.pe").timeout) == (1234, 2.5)
    assert FetchPolicy.from_env("https://oc.example.pe", max_bytes=7, timeout=1.0).max_bytes == 7
    assert FetchPolicy.from_env("https://oc.example.pe", max_bytes=7, timeout=1.0).timeout == 1.0
    for bad in ("0", "-5", "abc", "1e3x", "2.5"):
        monkeypatch.setenv("PERU_COMPRAS_FETCH_MAX_BYTES", bad)
        with pytest.raises(ConfigurationError, match=f"PERU_COMPRAS_FETCH_MAX_BYTES.*{re.escape(repr(bad))}"):
            FetchPolicy.from_env("https://oc.example.pe")
    monkeypatch.setenv("PERU_COMPRAS_FETCH_MAX_BYTES", "")
    for bad in ("0", "-1", "nan", "inf", "-inf", "soon"):  # nan or inf would switch the time limit off
        monkeypatch.setenv("PERU_COMPRAS_FETCH_TIMEOUT", bad)
        with pytest.raises(ConfigurationError, match="PERU_COMPRAS_FETCH_TIMEOUT"):
            FetchPolicy.from_env("https://oc.example.pe")


def test_the_request_asks_for_identity_from_the_named_host(web: Routes) -> None:
    web.requests.clear()
    fetch_document(web.url("/doc.pdf?v=1"), local(web))
    [(path, headers)] = web.requests
    assert path == "/doc.pdf?v=1"
    assert headers["host"] == f"127.0.0.1:{web.port}"
    assert headers["accept-encoding"] == "identity" and headers["accept"].startswith("application/pdf")
    assert headers["user-agent"] == "peru-compras-verify"
    assert "authorization" not in headers and "cookie" not in headers


def test_no_proxy_from_the_environment(web: Routes, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = Routes()
    proxy.routes["/*"] = lambda h: h.answer(200, b"%PDF from the proxy")
    try:
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy"):
            monkeypatch.setenv(name, proxy.url(""))
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        assert fetch_document(web.url("/doc.pdf"), local(web)).data == DOCUMENT
        assert proxy.requests == []
    finally:
        proxy.server.shutdown()
        proxy.server.server_close()


@pytest.mark.parametrize(("hops", "ok"), [(0, True), (1, True), (3, True), (4, False), (9, False)])
def test_at_most_three_redirects(web: Routes, hops: int, ok: bool) -> None:
    url = web.url(f"/r/{hops}")
    if ok:
        fetched = fetch_document(url, local(web))
        assert fetched.data == DOCUMENT and fetched.url == web.url("/r/0")
        assert fetched.redirects == tuple(web.url(f"/r/{n}") for n in range(hops - 1, -1, -1))
    else:
        with pytest.raises(FetchRefused, match="redirected more than 3 times"):
            fetch_document(url, local(web))
        assert check_published(url, DIGEST, local(web)).outcome == "refused"
    fewer = FetchPolicy(web.url("/"), max_redirects=1)
    if hops > 1:
        with pytest.raises(FetchRefused, match="more than 1 times"):
            fetch_document(url, fewer)


def test_the_size_cap(web: Routes) -> None:
    policy = local(web, max_bytes=100)
    for path in ("/exact-100", "/declared-100"):  # the cap itself is allowed
        assert len(fetch_document(web.url(path), policy).data) == 100
    for path in ("/exact-101", "/declared-101"):
        with pytest.raises(FetchTooLarge) as too_large:
            fetch_document(web.url(path), policy)
        assert too_large.value.size == 101
    declared = check_published(web.url("/big-declared"), DIGEST, policy)  # refused from the header alone
    assert (declared.outcome, declared.size, declared.exit_code) == ("too_large", 10**9, 2)
    assert "1,000,000,000 bytes" in str(declared.detail)


def test_a_stream_over_the_cap_is_abandoned_early(web: Routes) -> None:
    started = time.monotonic()
    with pytest.raises(FetchTooLarge) as too_large:
        fetch_document(web.url("/stream-big"), local(web, max_bytes=1000))
    assert 1000 < too_large.value.size <= 1000 + 64 * 1024 + 1  # one chunk past the cap, not 8 MB
    assert time.monotonic() - started < 2


def test_time_limits(web: Routes) -> None:
    silent = check_published(web.url("/silent"), DIGEST, local(web, timeout=0.2))
    assert (silent.outcome, silent.exit_code) == ("unreachable", 3)
    assert "0.2 s" in str(silent.detail)
    started = time.monotonic()
    trickle = check_published(web.url("/trickle"), DIGEST, local(web, timeout=0.3))  # every byte in time, not all
    assert trickle.outcome == "unreachable" and "took more than 0.3 s" in str(trickle.detail)
    assert time.monotonic() - started < 0.9


def test_the_time_limit_covers_every_redirect(web: Routes) -> None:
    # four answers of 0.12 s each: every one is within 0.3 s, all of them are not
    assert fetch_document(web.url("/slow/1"), local(web, timeout=2)).data == DOCUMENT
    started = time.monotonic()
    result = check_published(web.url("/slow/3"), DIGEST, local(web, timeout=0.3))
    assert (result.outcome, result.exit_code) == ("unreachable", 3), result.detail
    assert time.monotonic() - started < 0.6


def test_a_closed_port_is_unreachable() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    result = check_published(f"http://127.0.0.1:{port}/doc.pdf", DIGEST, FetchPolicy(f"http://127.0.0.1:{port}"))
    assert (result.outcome, result.exit_code) == ("unreachable", 3) and "cannot download" in str(result.detail)


def _one_line(exc: PeruComprasError, *words: str) -> None:
    """A refusal names the value and the next step: a message with `words` and a hint."""
    assert exc.message and exc.hint, (exc.message, exc.hint)
    for word in words:
        assert word in exc.message, (word, exc.message)
    assert str(exc) == f"{exc.message} — {exc.hint}"


@pytest.mark.parametrize(("path", "kind", "words"), [
    ("/missing.pdf", DocumentMissing, ["HTTP 404", "/missing.pdf"]),
    ("/gone.pdf", DocumentMissing, ["HTTP 410"]),
    ("/error.pdf", FetchFailed, ["HTTP 500", "/error.pdf"]),
    ("/no-location", FetchFailed, ["302 without a Location"]),
    ("/cut-off.pdf", FetchFailed, ["downloading", "/cut-off.pdf", "failed"]),
    ("/big-declared", FetchTooLarge, ["1,000,000,000 bytes", "52,428,800-byte limit"]),
    ("/r/4", FetchRefused, ["/r/4 redirected more than 3 times"]),
    ("/to-other-port", FetchRefused, ["redirect 1 (http://127.0.0.1:9/doc.pdf)", "resolves to 127.0.0.1"]),
])
def test_every_failure_names_the_url_and_the_next_step(web: Routes, path: str, kind: type[Exception],
                                                        words: list[str]) -> None:
    with pytest.raises(kind) as failure:
        fetch_document(web.url(path), local(web))
    assert isinstance(failure.value, PeruComprasError)
    _one_line(failure.value, *words)


def test_refusals_before_any_connection_name_the_next_step(web: Routes, monkeypatch: pytest.MonkeyPatch) -> None:
    policy = local(web)
    cases = [(web.url("/doc.pdf").replace("//", "//u:p@"), ["the document URL carries credentials"]),
             ("ftp://127.0.0.1/doc.pdf", ["the document URL 'ftp://127.0.0.1/doc.pdf' is not http(s)"]),
             ("http:///doc.pdf", ["has no host"]),
             ("http://host:99999/x", ["is not valid"]),
             ("https://elsewhere.example/doc.pdf", ["'elsewhere.example', which is not allowed"]),
             (f"http://127.0.0.1:{web.port + 1 if web.port < 65535 else 1}/x", ["the document URL: host '127.0.0.1' "
                                                                                "resolves to 127.0.0.1"])]
    for url, words in cases:
        with pytest.raises(FetchRefused) as refused:
            fetch_document(url, policy)
        _one_line(refused.value, *words)
    with pytest.raises(FetchTooLarge) as too_large:
        fetch_document(web.url("/exact-101"), local(web, max_bytes=100))
    _one_line(too_large.value, "sent more than the 100-byte limit")
    _resolve_to(monkeypatch)
    with pytest.raises(FetchFailed) as empty:
        fetch_document(f"http://{NAME}/x", FetchPolicy.for_page("https://v.example.pe", max_bytes=9, timeout=1))
    _one_line(empty.value, f"host {NAME!r} has no address")


def test_time_failures_name_the_limit(web: Routes) -> None:
    with pytest.raises(FetchFailed) as silent:
        fetch_document(web.url("/silent"), local(web, timeout=0.2))
    _one_line(silent.value, "did not answer within 0.2 s")  # not "took more than": time was left to ask
    with pytest.raises(FetchFailed) as stall:
        fetch_document(web.url("/stall"), local(web, timeout=0.2))
    _one_line(stall.value, "stopped sending for 0.2 s")
    with pytest.raises(FetchFailed) as trickle:
        fetch_document(web.url("/trickle"), local(web, timeout=0.3))
    _one_line(trickle.value, "took more than 0.3 s")
    with pytest.raises(FetchFailed) as hops:  # the hop that runs out of time says so
        fetch_document(web.url("/slow/3"), local(web, timeout=0.3))
    _one_line(hops.value, "0.3 s")
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(FetchFailed) as closed:
        fetch_document(f"http://127.0.0.1:{port}/doc.pdf", FetchPolicy(f"http://127.0.0.1:{port}"))
    _one_line(closed.value, "cannot download")


def test_a_document_sent_in_many_pieces_is_whole(web: Routes) -> None:
    fetched = fetch_document(web.url("/pieces.pdf"), local(web, max_bytes=len(PIECES)))
    assert fetched.data == PIECES
    result = check_published(web.url("/pieces.pdf"), hashlib.sha256(PIECES).digest(), local(web))
    assert (result.outcome, result.size) == ("original", len(PIECES))
    with pytest.raises(FetchTooLarge) as too_large:  # the cap counts every piece, not the last one
        fetch_document(web.url("/pieces.pdf"), local(web, max_bytes=len(PIECES) - 1))
    assert too_large.value.size == len(PIECES)


def test_a_listed_host_with_a_port_allows_that_port_only(web: Routes, monkeypatch: pytest.MonkeyPatch) -> None:
    _resolve_to(monkeypatch, "127.0.0.1")
    policy = FetchPolicy("https://oc.example.pe", frozenset({f"{NAME}:{web.port}"}), allow_private=True)
    assert fetch_document(f"http://{NAME}:{web.port}/doc.pdf", policy).data == DOCUMENT
    with pytest.raises(FetchRefused, match="not allowed"):
        fetch_document(f"http://{NAME}:{web.port + 1}/doc.pdf", policy)


def test_the_page_policy_keeps_its_own_limits() -> None:
    page = FetchPolicy.for_page("https://verifica.example.pe", max_bytes=1234, timeout=3.5)
    assert (page.base_url, page.max_bytes, page.timeout, page.any_host, page.local_base, page.allow_private) == (
        "https://verifica.example.pe", 1234, 3.5, True, False, False)
    assert page.user_agent == "peru-compras document check"


def test_limits_of_one_are_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERU_COMPRAS_FETCH_MAX_BYTES", "1")
    monkeypatch.setenv("PERU_COMPRAS_FETCH_TIMEOUT", "0.5")
    policy = FetchPolicy.from_env("https://oc.example.pe")
    assert (policy.max_bytes, policy.timeout) == (1, 0.5)


@pytest.mark.parametrize(("url", "host_header", "sni"), [
    ("http://docs.example.pe/x.pdf", "docs.example.pe", None),
    ("http://docs.example.pe:443/x.pdf", "docs.example.pe:443", None),
    ("http://docs.example.pe:81/x.pdf", "docs.example.pe:81", None),
    ("https://docs.example.pe:443/x.pdf", "docs.example.pe", "docs.example.pe"),
    ("https://docs.example.pe:80/x.pdf", "docs.example.pe:80", "docs.example.pe"),
    ("https://[2606:4700::1111]/x.pdf", "[2606:4700::1111]", "2606:4700::1111"),
    ("http://[2606:4700::1111]:8080/x.pdf", "[2606:4700::1111]:8080", None),
])
def test_the_host_header_and_sni(monkeypatch: pytest.MonkeyPatch, url: str, host_header: str, sni: str | None) -> None:
    _resolve_to(monkeypatch, PUBLIC)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=DOCUMENT)

    policy = FetchPolicy.for_page("https://verifica.example.pe", max_bytes=1000, timeout=5)
    result = check_published(url, DIGEST, policy, transport=httpx.MockTransport(handler))
    assert result.outcome == "original", result.detail
    [request] = seen
    assert request.headers["host"] == host_header
    assert request.extensions.get("sni_hostname") == sni


def test_human_lines_never_show_a_missing_detail() -> None:
    for outcome in ("missing", "unreachable", "refused", "too_large", "altered"):
        assert "\n" not in PublishedCheck(outcome, "https://x/d.pdf", DIGEST).human()


def test_the_remaining_refusals_name_the_next_step(web: Routes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERU_COMPRAS_FETCH_TIMEOUT", "never")
    with pytest.raises(ConfigurationError) as setting:
        FetchPolicy.from_env("https://oc.example.pe")
    _one_line(setting.value, "'never', not a positive number")
    monkeypatch.delenv("PERU_COMPRAS_FETCH_TIMEOUT")
    # only verify --fetch has a local exception, and its hint says which
    with pytest.raises(FetchRefused) as verify:
        fetch_document(f"http://127.0.0.1:{web.port + 1}/x", local(web))
    assert verify.value.hint and "only the base URL's own host may be local" in verify.value.hint
    page = FetchPolicy.for_page("https://verifica.example.pe", max_bytes=1000, timeout=5)
    with pytest.raises(FetchRefused) as paged:
        fetch_document(web.url("/doc.pdf"), page)
    assert paged.value.hint == "publish documents on a public address"
    _resolve_to(monkeypatch, PUBLIC)
    with pytest.raises(FetchRefused) as idna:  # a host name IDNA cannot encode
        fetch_document("http://ex\u00e4mple..pe/x.pdf", page)
    _one_line(idna.value, "is not valid")


def test_a_resolver_failure_names_the_host_and_the_next_step(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    with pytest.raises(FetchFailed) as failed:
        fetch_document(f"http://{NAME}/doc.pdf", FetchPolicy.for_page("https://v.example.pe", max_bytes=9, timeout=1))
    _one_line(failed.value, f"cannot resolve host {NAME!r}")
