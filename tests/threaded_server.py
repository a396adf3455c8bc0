"""The page served by uvicorn (uvloop + httptools, as `peru-compras serve` runs it) in a background thread,
for the browser tests."""

from __future__ import annotations

import threading
import time
from typing import Any

from peru_compras.web.server import uvicorn_config


class ThreadedServer:
    def __init__(self, app: Any, port: int) -> None:
        import uvicorn

        self.server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
