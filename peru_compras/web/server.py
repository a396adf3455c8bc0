"""Run the page: in the foreground (:func:`serve`, for ``peru-compras serve``) or detached in the background
(:func:`start_detached`, for ``peru-compras demo``), its pid and URL recorded in ``<home>/web.json``.

The server is uvicorn with uvloop and httptools (measured here: several times the requests per second of
the pure-Python h11 parser; see benchmarks/web.py), one process, access log off.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..chain.node import free_port, pid_alive, port_in_use
from ..errors import NodeUnavailable, PeruComprasError
from ..settings import (
    DEFAULT_KEEP_ALIVE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_TRUSTED_PROXIES,
    Settings,
)

if TYPE_CHECKING:
    from ..workspace import Workspace

STATE_FILE = "web.json"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def default_address(base_url: str) -> tuple[str, int]:
    """Where to listen when nothing is said: the base URL's port when it is a loopback address."""
    parts = urlsplit(base_url)
    if parts.hostname in LOOPBACK:
        return "127.0.0.1", parts.port or 80
    return "127.0.0.1", 8000


#: variables `serve` never needs: the process drops them from its environment before it listens
SECRET_VARIABLES = ("PERU_COMPRAS_PRIVATE_KEY", "PERU_COMPRAS_KEYSTORE_PASSWORD", "PERU_COMPRAS_RELAYER_PRIVATE_KEY",
                    "PERU_COMPRAS_RELAYER_KEYSTORE_PASSWORD")


def protocol_class(request_timeout: float, max_per_client: int) -> type[Any]:
    """uvicorn's httptools protocol with a request deadline and a per-client connection cap.

    uvicorn's own keep-alive timer only runs between requests and stops at the first byte of the next one,
    so a client that sends one header line every few seconds would hold its connection for ever. Here each
    request must be whole (head and body) within `request_timeout` of the connection opening or of the
    previous response; each client address may hold at most `max_per_client` connections (one counter per
    server: the class is made per server)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    open_per_client: dict[str, int] = {}

    class GuardedProtocol(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None
        _counted: str | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            host = self.client[0] if self.client else "-"
            if open_per_client.get(host, 0) >= max_per_client:
                transport.abort()
                return
            open_per_client[host] = open_per_client.get(host, 0) + 1
            self._counted = host
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self._counted is not None:
                left = open_per_client.get(self._counted, 1) - 1
                if left > 0:
                    open_per_client[self._counted] = left
                else:
                    open_per_client.pop(self._counted, None)
                self._counted = None
            super().connection_lost(exc)

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
                self._arm()

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(request_timeout, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                self.transport.abort()

    return GuardedProtocol


def uvicorn_config(app: Any, host: str, port: int, *, settings: Settings | None = None, log_level: str = "warning",
                   request_timeout: float | None = None, keep_alive: int | None = None,
                   max_per_client: int | None = None, trusted_proxies: str | None = None) -> Any:
    """uvicorn's settings for the page. Each limit is the argument given, else `settings`' (its
    ``PERU_COMPRAS_…`` variable or ``peru-compras.toml`` key), else its default:

    - `request_timeout` (``request_timeout``, 10 s): a request's head (request line and headers) and body must
      arrive within this many seconds of the connection opening or of the previous response (slow clients
      cannot hold connections open)
    - `keep_alive` (``keep_alive_timeout``, 5 s): an idle keep-alive connection is closed after this long
    - `max_per_client` (``max_connections_per_client``, 32): open connections one client address may hold;
      more are closed at once (behind a proxy every visitor shares the proxy's address: raise it there)
    - `trusted_proxies` (``trusted_proxies``, loopback): whose X-Forwarded-For / X-Forwarded-Proto are believed
    """
    import uvicorn

    try:
        import httptools  # noqa: F401
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:  # pragma: no cover - the [web] extra installs both
        loop = "auto"
    timeout = request_timeout or (settings.request_timeout if settings else DEFAULT_REQUEST_TIMEOUT)
    idle = keep_alive or (settings.keep_alive_timeout if settings else DEFAULT_KEEP_ALIVE_TIMEOUT)
    cap = max_per_client or (settings.max_connections_per_client if settings else DEFAULT_MAX_CONNECTIONS_PER_CLIENT)
    proxies = trusted_proxies or (settings.trusted_proxies if settings else DEFAULT_TRUSTED_PROXIES)
    return uvicorn.Config(app, host=host, port=port, loop=loop, http=protocol_class(timeout, cap), lifespan="off",
                          access_log=False, log_level=log_level, server_header=False, proxy_headers=True,
                          forwarded_allow_ips=proxies, limit_concurrency=4096, timeout_keep_alive=idle)


def drop_secrets() -> None:
    """Re-run this process without the signing secrets in its environment (``serve`` never signs).

    Removing them from ``os.environ`` is not enough: /proc/<pid>/environ shows the environment the process
    was started with. So the process replaces itself (same pid, same arguments) with a clean environment."""
    if not any(name in os.environ for name in SECRET_VARIABLES):
        return
    clean = {name: value for name, value in os.environ.items() if name not in SECRET_VARIABLES}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], clean)


def serve(ws: Workspace, host: str | None = None, port: int | None = None) -> None:
    """Serve the page for the workspace's registry until interrupted."""
    import uvicorn

    from .app import app_from_workspace

    drop_secrets()
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
    uvicorn.Server(uvicorn_config(app, host, port, settings=ws.settings)).run()


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


def _answers(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=timeout) as response:  # noqa: S310 - loopback
            return bool(response.status)
    except urllib.error.HTTPError:
        return True  # it answered (503: node down) — it is our server
    except (OSError, ValueError):
        return False


def start_detached(ws: Workspace, *, host: str | None = None, port: int | None = None,
                   timeout: float = 20.0) -> Served:
    """Start ``peru-compras serve`` in its own session so it outlives this process (or reuse the one
    already running for this home folder). The server records its pid and URL in ``<home>/web.json`` itself
    (``serve`` does, :meth:`~peru_compras.workspace.Workspace.serving_page`), before it answers; its output
    goes to ``<home>/web/server.log``."""
    state_file = ws.home / STATE_FILE
    try:
        known = json.loads(state_file.read_text())
        if pid_alive(int(known["pid"])) and _answers(str(known["url"])):
            return Served(str(known["url"]), int(known["pid"]), True)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    default_host, default_port = default_address(ws.settings.base_url)
    host = host or default_host
    if port is None:
        port = free_port() if port_in_use(host, default_port) else default_port
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
        env = {name: value for name, value in os.environ.items() if name not in SECRET_VARIABLES}
        process = subprocess.Popen(command, stdout=out, stderr=out, stdin=subprocess.DEVNULL, env=env,
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
    return Served(url, process.pid, False)


def stop_detached(home: Path) -> bool:
    """Stop the background page server recorded under `home` (SIGTERM); False when none was running."""
    state_file = home / STATE_FILE
    try:
        pid = int(json.loads(state_file.read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    state_file.unlink(missing_ok=True)
    if not pid_alive(pid):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError as exc:
        raise PeruComprasError(f"cannot stop the page server (pid {pid}): {exc.strerror}") from None
    return True

