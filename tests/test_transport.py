"""The JSON-RPC transport (chain/transport.py) does for a node what requests did, side by side with requests
itself against the same local servers: the proxy from the environment and NO_PROXY, credentials in the URL,
307/308 redirects (and no Authorization to another host), keep-alive with a node that closes idle
connections, gzip answers, and failures named as requests named them."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from peru_compras.chain.rpc import Rpc
from peru_compras.chain.transport import Http
from peru_compras.errors import NodeUnavailable

from .http_stub import read_body, send_json

ANSWER = {"jsonrpc": "2.0", "id": 1, "result": "0x7a69"}


class _Seen(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[dict[str, Any]]
    redirect: str | None = None
    gzip = False
    close_after = False

    def do_POST(self) -> None:  # noqa: N802 — http.server's name
        body = read_body(self)
        self.seen.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization"),
                          "proxy_auth": self.headers.get("Proxy-Authorization"), "host": self.headers.get("Host"),
                          "connection": self.client_address[1]})  # the client port: one per connection
        if self.redirect is not None:
            self.send_response(307)
            self.send_header("Location", self.redirect)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = json.dumps(ANSWER).encode()
        if self.gzip:
            data = gzip.compress(data)
        send_json(self, data, headers={**({"Content-Encoding": "gzip"} if self.gzip else {}),
                                       **({"Connection": "close"} if self.close_after else {})})
        if self.close_after:
            self.close_connection = True

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def server(**options: Any) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    handler = type("Handler", (_Seen,), {"seen": seen, **options})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def _ours(url: str, headers: dict[str, str] | None = None) -> Any:
    return Rpc(url, headers=headers).call("eth_chainId")


def _theirs(url: str, headers: dict[str, str] | None = None) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    return requests.post(url, json=body, headers=headers, timeout=10).json()["result"]


def _same_requests(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> None:
    keys = ("path", "auth", "proxy_auth", "host")
    assert [{k: r[k] for k in keys} for r in ours] == [{k: r[k] for k in keys} for r in theirs]
    assert [json.loads(r["body"])["method"] for r in ours] == [json.loads(r["body"])["method"] for r in theirs]


def test_credentials_in_the_url_and_a_query_are_sent_as_requests_sends_them() -> None:
    with server() as (url, seen):
        target = url.replace("http://", "http://us%40er:p%3Ass@") + "/rpc/v1?key=abc"
        assert _ours(target) == _theirs(target) == "0x7a69"
        _same_requests(seen[:1], seen[1:])
        assert seen[0]["auth"].startswith("Basic ") and seen[0]["path"] == "/rpc/v1?key=abc"


def test_a_plain_http_proxy_from_the_environment_and_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    with server() as (proxy, via_proxy):
        node = "http://node.invalid:8545/"  # never resolved: only the proxy is asked
        monkeypatch.setenv("HTTP_PROXY", proxy.replace("http://", "http://pu:pp@"))
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        assert _ours(node) == _theirs(node) == "0x7a69"
        _same_requests(via_proxy[:1], via_proxy[1:])
        assert via_proxy[0]["path"] == node and via_proxy[0]["proxy_auth"].startswith("Basic ")
        monkeypatch.setenv("NO_PROXY", "node.invalid")
        with pytest.raises(NodeUnavailable, match=r"cannot reach the node at http://node.invalid:8545 "
                                                  r"\(ConnectionError\)"):
            Rpc(node, attempts=1).call("eth_chainId")
        with pytest.raises(requests.ConnectionError):
            _theirs(node)
        assert len(via_proxy) == 2  # neither went through the proxy


def test_a_307_redirect_is_followed_with_its_body_and_no_authorization_to_another_host() -> None:
    with server() as (final, landed), server() as (_unused, _):
        other_host = final.replace("127.0.0.1", "localhost") + "/moved"
        with server(redirect=other_host) as (first, redirected):
            headers = {"Authorization": "Bearer secret"}
            assert _ours(first, headers) == _theirs(first, headers) == "0x7a69"
        _same_requests(redirected[:1], redirected[1:])
        _same_requests(landed[:1], landed[1:])
        assert redirected[0]["auth"] == "Bearer secret" and landed[0]["auth"] is None
        assert json.loads(landed[0]["body"])["method"] == "eth_chainId" and landed[0]["path"] == "/moved"


def test_one_connection_is_kept_and_a_closed_one_is_opened_again_at_once() -> None:
    with server() as (url, seen):
        rpc = Rpc(url)
        for _ in range(3):
            assert rpc.call("eth_chainId") == "0x7a69"
        assert len({r["connection"] for r in seen}) == 1  # keep-alive
    with server(close_after=True) as (url, seen):
        rpc = Rpc(url)
        started = time.monotonic()
        for _ in range(3):
            assert rpc.call("eth_chainId") == "0x7a69"
        assert time.monotonic() - started < 1.0  # no backoff (0.2 s) spent on a connection the node closed
        assert len({r["connection"] for r in seen}) == 3


def test_a_gzip_answer_is_read_as_requests_reads_it() -> None:
    with server(gzip=True) as (url, _seen):
        assert _ours(url) == _theirs(url) == "0x7a69"


def test_failures_are_named_as_requests_names_them() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(requests.ConnectionError):
        _theirs(url)
    with pytest.raises(NodeUnavailable, match=rf"cannot reach the node at {url} \(ConnectionError\)"):
        Rpc(url, attempts=1).call("eth_chainId")
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts, never answers
    try:
        slow = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(requests.ReadTimeout):
            requests.post(slow, data=b"{}", timeout=0.5)
        with pytest.raises(NodeUnavailable, match=r"\(ReadTimeout\)"):
            Rpc(slow, attempts=1, timeout=0.5).call("eth_chainId")
    finally:
        silent.close()


def test_each_thread_has_its_own_connection() -> None:
    with server() as (url, seen):
        http = Http(url, {"Content-Type": "application/json"}, 10)
        results: list[bytes] = []

        def ask() -> None:
            for _ in range(5):
                answer = http.post(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).encode())
                results.append(http.read(answer, 1 << 20, 1 << 16))

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(results) == 20 and all(json.loads(r) == ANSWER for r in results)
        assert len({r["connection"] for r in seen}) == 4


def test_a_redirect_to_an_address_that_is_no_node_is_unreachable_not_followed() -> None:
    with server(redirect="ftp://elsewhere.example/") as (url, seen):
        with pytest.raises(NodeUnavailable, match=r"\(InvalidURL\)"):
            Rpc(url, attempts=1).call("eth_chainId")
        assert len(seen) == 1


class _Dropping(BaseHTTPRequestHandler):
    """Answers the first request of each connection; reads the next ones and hangs up without a word (a node
    whose keep-alive timer fired as the request arrived) — all of them, when `always` is set."""

    protocol_version = "HTTP/1.1"
    seen: list[int]  # the client port of each request: one per connection
    always = False

    def do_POST(self) -> None:  # noqa: N802 — http.server's name
        read_body(self)
        first = self.client_address[1] not in self.seen
        self.seen.append(self.client_address[1])
        if first and not self.always:
            send_json(self, ANSWER)
        else:
            self.close_connection = True  # nothing sent: the client reads RemoteDisconnected

    def log_message(self, *args: Any) -> None:
        pass


def test_a_kept_connection_dropped_under_a_request_is_tried_once_on_a_new_one() -> None:
    """The select() check sees a connection the node closed while it was idle; one it closes as a request
    arrives looks alive. That request is sent once more on a new connection — once: a node that drops every
    request is Unreachable, and a request on a new connection is never sent twice."""
    seen: list[int] = []
    handler = type("Dropping", (_Dropping,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        http = Http(url, {"Content-Type": "application/json"}, timeout=5)
        for _ in range(3):
            assert json.loads(http.read(http.post(b"{}"), 1 << 20, 1 << 16)) == ANSWER
        # each call after the first: dropped on the kept connection, then answered on a new one
        assert len(seen) == 5 and len(set(seen)) == 3 and seen[1] == seen[0] and seen[3] == seen[2]
        handler.always = True
        seen.clear()
        with pytest.raises(OSError) as caught:  # Unreachable: "ConnectionError" as requests names it
            http.post(b"{}")
        assert getattr(caught.value, "name", "") == "ConnectionError"
        assert len(seen) == 2 and seen[0] != seen[1]  # the kept connection, then one new one: no third try
        seen.clear()
        with pytest.raises(OSError):
            Http(url, {}, timeout=5).post(b"{}")  # a new connection from the start
        assert len(seen) == 1
    finally:
        server.shutdown()
        server.server_close()
