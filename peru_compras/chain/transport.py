"""HTTP for JSON-RPC: one POST at a time over a keep-alive connection per thread (``http.client``).

Why not ``requests`` (which :mod:`.rpc` used): importing it costs 0.1 s of CPU (urllib3's and http.cookiejar's
regular expressions) and each call 0.7 to 1.3 ms of CPU against 0.09 ms here (``eth_blockNumber`` to a local
Anvil, thread time over 300 calls), about 0.15 s of a 2,000-order batch's 1.5 s. What requests did for a node
is kept: the proxy from the environment (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``; a
tunnel for https), the CA bundle (``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE``, else certifi's), credentials
in the URL (basic authentication), gzip and deflate answers, and 307/308 redirects (at most 30; the
``Authorization`` header is not sent to another host). Failures raise :class:`Unreachable`, named as
requests named them (``ConnectionError``, ``ConnectTimeout``, ``ReadTimeout``, ``SSLError``, ``ProxyError``),
so the messages users see do not change.
"""

from __future__ import annotations

import base64
import http.client
import os
import select
import ssl
import threading
import time
import zlib
from functools import cache
from urllib.parse import unquote, urljoin, urlsplit

from ..errors import ConfigurationError
from ..urls import host_of, node_url_problem

_REDIRECTS = 30


class Unreachable(OSError):
    """The node could not be reached or its answer was cut off; `name` is requests' name for it."""

    def __init__(self, name: str, detail: str = "") -> None:
        super().__init__(detail or name)
        self.name = name


class Undecodable(ValueError):
    """The answer's body does not decompress as its Content-Encoding says."""


@cache
def _tls() -> ssl.SSLContext:
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if not bundle:
        import certifi

        bundle = certifi.where()
    if os.path.isdir(bundle):
        return ssl.create_default_context(capath=bundle)
    return ssl.create_default_context(cafile=bundle)


def _basic(user: str | None, password: str | None) -> str:
    return "Basic " + base64.b64encode(f"{unquote(user or '')}:{unquote(password or '')}".encode()).decode()


class _Target:
    """Where a URL's requests go: the host, the request target, and the proxy (from the environment)."""

    def __init__(self, url: str) -> None:
        problem = node_url_problem(url)
        if problem:
            raise ValueError(problem)
        parts = urlsplit(url)
        assert parts.hostname is not None  # (node_url_problem)
        self.https = parts.scheme == "https"
        self.host, self.port = parts.hostname, parts.port or (443 if self.https else 80)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.auth = _basic(parts.username, parts.password) if parts.username is not None else None
        self.proxy: tuple[str, int, str | None] | None = None
        from urllib.request import getproxies, proxy_bypass

        proxies = getproxies()
        proxy = proxies.get(parts.scheme) or proxies.get("all")
        if proxy and not proxy_bypass(self.host):
            found = urlsplit(proxy if "://" in proxy else "http://" + proxy)
            if not found.hostname:
                raise Unreachable("ProxyError", "the proxy's address")
            credentials = _basic(found.username, found.password) if found.username is not None else None
            self.proxy = (found.hostname, found.port or 80, credentials)
        self.url = url

    def connect(self, timeout: float) -> http.client.HTTPConnection:
        if self.proxy is None:
            if self.https:
                return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=_tls())
            return http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        host, port, credentials = self.proxy
        if self.https:  # a tunnel through the proxy, TLS with the node itself
            tunnel = http.client.HTTPSConnection(host, port, timeout=timeout, context=_tls())
            tunnel.set_tunnel(self.host, self.port, {"Proxy-Authorization": credentials} if credentials else None)
            return tunnel
        return http.client.HTTPConnection(host, port, timeout=timeout)

    def request_target(self) -> str:
        """The path, or the whole URL when a plain-HTTP proxy forwards it."""
        return self.url.split("#", 1)[0] if self.proxy is not None and not self.https else self.path


class TooLarge(ValueError):
    """The answer's body, decompressed, is over the limit."""


class _Inflate:
    """A bounded decompressor for one Content-Encoding (gzip or deflate, zlib-wrapped or raw)."""

    def __init__(self, coding: str) -> None:
        self.window = 16 + zlib.MAX_WBITS if coding in ("gzip", "x-gzip") else zlib.MAX_WBITS
        self.inflate = zlib.decompressobj(self.window)
        self.first = True

    def __call__(self, chunk: bytes, room: int) -> bytes:
        """At most `room` + 1 bytes out of what came so far (more than `room`: the caller stops)."""
        try:
            out = self.inflate.decompress(self.inflate.unconsumed_tail + chunk, room + 1)
        except zlib.error:
            if self.window == zlib.MAX_WBITS and self.first:  # "deflate" sent raw, as some servers do
                self.window, self.inflate = -zlib.MAX_WBITS, zlib.decompressobj(-zlib.MAX_WBITS)
                return self(chunk, room)
            raise Undecodable from None
        self.first = False
        return out


def _decoder(encoding: str) -> _Inflate | None:
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip() and c.strip().lower() != "identity"]
    if len(codings) != 1 or codings[0] not in ("gzip", "x-gzip", "deflate"):
        return None  # none, or one requests could not undo either: the body is handed over as it came
    return _Inflate(codings[0])


class Http:
    """POSTs to one URL, a keep-alive connection per thread; `headers` go with every request."""

    def __init__(self, url: str, headers: dict[str, str], timeout: float) -> None:
        self.url, self.timeout = url, timeout
        self.headers = {"Accept": "*/*", "Accept-Encoding": "gzip, deflate", **headers}
        self._local = threading.local()
        try:  # once: the URL's parts and the environment's proxy (read again only for a redirect)
            self._target = _Target(url)
        except ValueError as exc:
            raise ConfigurationError(f"the node URL {host_of(url)} is not usable: {exc}",
                                     hint="give the node's JSON-RPC URL, e.g. http://127.0.0.1:8545") from None

    def post(self, body: bytes) -> http.client.HTTPResponse:
        """The answer to `body` (307 and 308 redirects followed), its body not read yet: read it with
        :meth:`read`, or :meth:`drop` the connection."""
        url, target = self.url, self._target
        for _ in range(_REDIRECTS + 1):
            headers = dict(self.headers)
            if target.host != self._target.host:
                headers.pop("Authorization", None)  # as requests does when a redirect leaves the host
            if target.auth and "Authorization" not in headers:
                headers["Authorization"] = target.auth
            if target.proxy is not None and target.proxy[2] and not target.https:
                headers["Proxy-Authorization"] = target.proxy[2]
            answer = self._send(target, body, headers)
            location = answer.getheader("Location")
            if answer.status not in (307, 308) or not location:
                return answer
            self._drop()
            url = urljoin(url, location)
            try:
                target = _Target(url)
            except ValueError:
                raise Unreachable("InvalidURL", "a redirect to an address that is not a node's") from None
        raise Unreachable("TooManyRedirects", f"more than {_REDIRECTS} redirects")

    def read(self, answer: http.client.HTTPResponse, max_bytes: int, chunk: int) -> bytes:
        """`answer`'s body, decompressed, at most `max_bytes` (TooLarge), within `timeout` for the whole."""
        deadline = time.monotonic() + self.timeout
        decode = _decoder(answer.getheader("Content-Encoding", "") or "")
        chunks: list[bytes] = []
        size = 0
        try:
            # one receive at a time (read1), so that the deadline also bounds a body that trickles in; sizes
            # counted after decompression: a compressed bomb stops here too
            while raw := answer.read1(chunk):
                piece = decode(raw, max_bytes - size) if decode is not None else raw
                size += len(piece)
                if size > max_bytes:
                    raise TooLarge(size)
                if time.monotonic() > deadline:
                    raise Unreachable("Timeout", f"the answer took over {self.timeout:g} s")
                chunks.append(piece)
        except (TooLarge, Undecodable, Unreachable):
            self._drop()
            raise
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            self._drop()
            raise _named(exc, connected=True) from None
        answer.close()  # read to its end: the connection takes the next request (read1 does not say so)
        if answer.will_close:
            self._drop()
        return b"".join(chunks)

    def drop(self) -> None:
        """Close this thread's connection (after an answer that is not read)."""
        self._drop()

    def _send(self, target: _Target, body: bytes, headers: dict[str, str]) -> http.client.HTTPResponse:
        key = (target.host, target.port, target.https)
        reused = getattr(self._local, "key", None) == key and self._alive()
        for attempt in (0, 1):
            connection = self._local.connection if reused else self._open(target, key)
            try:
                connection.request("POST", target.request_target(), body=body, headers=headers)
                return connection.getresponse()
            except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected) as exc:
                self._drop()
                if reused and attempt == 0:  # the node closed an idle connection: once more, on a new one
                    reused = False
                    continue
                raise Unreachable("ConnectionError", type(exc).__name__) from None
            except (TimeoutError, OSError, http.client.HTTPException) as exc:
                self._drop()
                raise _named(exc, connected=True) from None
        raise AssertionError("unreachable")

    def _open(self, target: _Target, key: tuple[str, int, bool]) -> http.client.HTTPConnection:
        self._drop()
        connection = target.connect(self.timeout)
        try:
            connection.connect()
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            connection.close()
            if target.proxy is not None and not isinstance(exc, (TimeoutError, ssl.SSLError)):
                raise Unreachable("ProxyError", type(exc).__name__) from None
            raise _named(exc, connected=False) from None
        self._local.connection, self._local.key = connection, key
        return connection

    def _alive(self) -> bool:
        """Whether the kept connection is still open (an idle socket that reads is one the node closed)."""
        sock = getattr(getattr(self._local, "connection", None), "sock", None)
        if sock is None:
            return False
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def _drop(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
        self._local.connection = self._local.key = None


def _named(exc: BaseException, *, connected: bool) -> Unreachable:
    """requests' name for a failure: timeouts by when they happened, TLS apart, the rest ConnectionError."""
    if isinstance(exc, ssl.SSLError):
        return Unreachable("SSLError", type(exc).__name__)
    if isinstance(exc, TimeoutError):
        return Unreachable("ReadTimeout" if connected else "ConnectTimeout", "timed out")
    return Unreachable("ConnectionError", type(exc).__name__)
