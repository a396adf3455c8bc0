"""Run the page: in the foreground (:func:`serve`, for ``peru-compras serve``) or detached in the background
(:func:`start_detached`, for ``peru-compras demo``), its pid and URL recorded in ``<home>/web.json``.

The server is uvicorn with uvloop and httptools (measured here: several times the requests per second of
the pure-Python h11 parser; see benchmarks/web.py), one process, access log off.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import NodeUnavailable, PeruComprasError

if TYPE_CHECKING:
    from ..config import Workspace

STATE_FILE = "web.json"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def default_address(base_url: str) -> tuple[str, int]:
    """Where to listen when nothing is said: the base URL's port when it is a loopback address."""
    parts = urlsplit(base_url)
    if parts.hostname in LOOPBACK:
        return "127.0.0.1", parts.port or 80
    return "127.0.0.1", 8000


def uvicorn_config(app: Any, host: str, port: int, *, log_level: str = "warning") -> Any:
    import uvicorn

    try:
        import httptools  # noqa: F401
        import uvloop  # noqa: F401

        loop, http = "uvloop", "httptools"
    except ImportError:  # pragma: no cover - the [web] extra installs both
        loop, http = "auto", "auto"
    return uvicorn.Config(app, host=host, port=port, loop=loop, http=http, lifespan="off", access_log=False,
                          log_level=log_level, server_header=False, proxy_headers=True,
                          limit_concurrency=4096, timeout_keep_alive=5)


def serve(ws: Workspace, host: str | None = None, port: int | None = None) -> None:
    """Serve the page for the workspace's registry until interrupted."""
    import uvicorn

    from .app import app_from_workspace

    default_host, default_port = default_address(ws.settings.base_url)
    host = host or default_host
    port = port or default_port
    app = app_from_workspace(ws)
    try:
        registry = app.page.chain.registry
        print(f"registry {registry.address} at {registry.rpc.url}", file=sys.stderr)
    except NodeUnavailable as exc:
        print(f"warning: {exc} (the page answers 503 until the node is back)", file=sys.stderr)
    shown = "[" + host + "]" if ":" in host else host
    print(f"verification page at http://{shown}:{port} (orders at {ws.settings.base_url}/o/…); Ctrl-C stops it",
          file=sys.stderr)
    uvicorn.Server(uvicorn_config(app, host, port)).run()


# --------------------------------------------------------------------------------------------------
# Detached


@dataclass(frozen=True, slots=True)
class Served:
    """A page server running in the background."""

    url: str
    pid: int
    reused: bool

    def page(self, verify_path: str) -> str:
        return self.url + verify_path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _answers(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=timeout) as response:  # noqa: S310 - loopback
            return bool(response.status)
    except urllib.error.HTTPError:
        return True  # it answered (503: node down) — it is our server
    except (OSError, ValueError):
        return False


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def start_detached(ws: Workspace, *, host: str | None = None, port: int | None = None,
                   timeout: float = 20.0) -> Served:
    """Start ``peru-compras serve`` in its own session so it outlives this process (or reuse the one
    already running for this home folder). Its pid and URL go to ``<home>/web.json``, its output to
    ``<home>/web/server.log``."""
    state_file = ws.home / STATE_FILE
    try:
        known = json.loads(state_file.read_text())
        if _alive(int(known["pid"])) and _answers(str(known["url"])):
            return Served(str(known["url"]), int(known["pid"]), True)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    default_host, default_port = default_address(ws.settings.base_url)
    host = host or default_host
    if port is None:
        port = default_port if _port_free(host, default_port) else _free_port(host)
    settings = ws.settings
    flags = ["--home", str(ws.home), "--base-url", settings.base_url, "--network", settings.network.name]
    if settings.rpc:
        flags += ["--rpc", settings.rpc]
    if settings.registry:
        flags += ["--registry", settings.registry]
    log = ws.home / "web" / "server.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "peru_compras", *flags, "serve", "--host", host, "--port", str(port)]
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    url = f"http://{host}:{port}"
    deadline = time.monotonic() + timeout
    while not _answers(url, timeout=0.5):
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                process.terminate()
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            raise NodeUnavailable(f"the verification page did not start on {url}: {tail[0]}",
                                  hint=f"see {log}")
        time.sleep(0.1)
    state_file.write_text(json.dumps({"url": url, "pid": process.pid, "host": host, "port": port}) + "\n")
    return Served(url, process.pid, False)


def stop_detached(home: Path) -> bool:
    """Stop the background page server recorded under `home` (SIGTERM); False when none was running."""
    state_file = home / STATE_FILE
    try:
        pid = int(json.loads(state_file.read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    state_file.unlink(missing_ok=True)
    if not _alive(pid):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError as exc:
        raise PeruComprasError(f"cannot stop the page server (pid {pid}): {exc.strerror}") from None
    return True

