"""A JSON-RPC node in front of a real one, for tests that need a node which lies, refuses or stalls.

`answer(request, forward)` decides each call: it returns the answer object to send, where ``forward()``
gives the upstream node's own answer (None for `answer` means: forward it as it is)."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from .http_stub import read_body, send_json

Answer = Callable[[dict[str, Any], Callable[[], dict[str, Any]]], dict[str, Any]]


class RpcProxy:
    def __init__(self, upstream: str, answer: Answer | None = None) -> None:
        self.answer = answer
        self.seen: list[dict[str, Any]] = []  # every request, as sent
        self.errors: list[str] = []  # what a handler raised (a client that hung up, ...)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 — http.server's name
                body = read_body(self)
                request = json.loads(body)
                proxy.seen.append(request)

                def forward() -> dict[str, Any]:
                    reply: dict[str, Any] = requests.post(
                        upstream, data=body, headers={"Content-Type": "application/json"}, timeout=30).json()
                    return reply

                send_json(self, proxy.answer(request, forward) if proxy.answer else forward())

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                proxy.errors.append(repr(sys.exc_info()[1]))

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
