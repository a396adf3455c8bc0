"""Plumbing shared by the tests' stand-in servers: reading a request body and sending a well-formed JSON
answer from an http.server handler. Stubs that send something malformed on purpose (a wrong length, no
length, chunks, garbage, a redirect) write their answers themselves."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request's body: Content-Length bytes (none without the header)."""
    return handler.rfile.read(int(handler.headers.get("Content-Length", 0)))


def send_json(handler: BaseHTTPRequestHandler, answer: Any, status: int = 200,
              headers: dict[str, str] | None = None) -> None:
    """Answer `answer` (bytes as they are, anything else as JSON) with its true Content-Length, as
    application/json, with `headers` besides."""
    data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)

