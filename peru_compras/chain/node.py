"""A local chain: Anvil on a free loopback port, as a subprocess.

:class:`LocalNode` is a context manager (stopped at exit) for tests and scripts; :func:`start_detached`
leaves Anvil running in the background for `peru-compras node`/`demo`, its state persisted to a file so
the chain survives restarts.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from ..errors import ConfigurationError, NodeUnavailable
from .rpc import Rpc

_REPO_ANVIL = Path(__file__).resolve().parents[2] / "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"


def anvil_binary() -> str:
    """Anvil: $PERU_COMPRAS_ANVIL, the project's node_modules, or `anvil` on PATH."""
    for candidate in (os.environ.get("PERU_COMPRAS_ANVIL"), str(_REPO_ANVIL), shutil.which("anvil")):
        if candidate and Path(candidate).is_file():
            return candidate
    raise ConfigurationError("Anvil was not found",
                             hint="run scripts/bootstrap (npm ci installs it) or set PERU_COMPRAS_ANVIL")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command(port: int, state: Path | None, extra: list[str]) -> list[str]:
    cmd = [anvil_binary(), "--host", "127.0.0.1", "--port", str(port), "--silent"]
    if state is not None:
        state.parent.mkdir(parents=True, exist_ok=True)
        cmd += ["--state", str(state), "--state-interval", "1"]
    return cmd + extra


def stop_process(process: subprocess.Popen[bytes] | None, *, grace: float = 10.0) -> None:
    """SIGTERM a node process, then SIGKILL it if it has not exited after `grace` seconds."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_ready(url: str, timeout: float = 15.0) -> int:
    """Wait until the node answers; returns its chain id."""
    rpc = Rpc(url, timeout=2.0, attempts=1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            return int(rpc.call("eth_chainId"), 16)
        except NodeUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def set_balance(rpc: Rpc, address: str, wei: int) -> None:
    """Give `address` a balance on a development node: Anvil's ``anvil_setBalance``, else Hardhat's
    ``hardhat_setBalance`` (both take the same parameters)."""
    from .rpc import RpcError

    try:
        rpc.call("anvil_setBalance", [address, hex(wei)])
    except RpcError:
        rpc.call("hardhat_setBalance", [address, hex(wei)])


class LocalNode:
    """Anvil on a free port; stopped when the context exits."""

    def __init__(self, *, state: Path | None = None, extra_args: list[str] | None = None,
                 port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._cmd = _command(self.port, state, extra_args or [])
        self._process: subprocess.Popen[bytes] | None = None
        self.chain_id = 0

    def start(self) -> LocalNode:
        self._process = subprocess.Popen(self._cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            self.chain_id = wait_ready(self.url)
        except NodeUnavailable:
            self.stop()
            raise
        return self

    @property
    def pid(self) -> int | None:
        """Anvil's process id while it runs."""
        return self._process.pid if self._process is not None else None

    def stop(self) -> None:
        """Stop Anvil gracefully (it dumps its state on SIGTERM)."""
        stop_process(self._process)
        self._process = None

    def kill(self) -> None:
        """Kill Anvil at once (SIGKILL), as a crash would."""
        if self._process and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._process = None

    def __enter__(self) -> LocalNode:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def start_detached(state: Path, log: Path, port: int | None = None) -> tuple[str, int, int]:
    """Start Anvil in its own session so it outlives this process: (rpc url, chain id, pid)."""
    port = port or free_port()
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(_command(port, state, []), stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    chain_id = wait_ready(url)
    return url, chain_id, process.pid
