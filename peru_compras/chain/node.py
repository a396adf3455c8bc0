"""A local chain: Anvil on a free loopback port, as a subprocess.

:class:`LocalNode` is a context manager (stopped at exit) for tests and scripts. :class:`FolderChain` is
the embedded default's chain: one per state folder, run by one owner process (`peru-compras node` in the
foreground, or started in the background by a command that writes), its state kept in a file so the
chain survives restarts, ended by `peru-compras stop`.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from ..errors import ConfigurationError, InvalidInput, NodeUnavailable, PeruComprasError
from ..retry import every, poll, retry
from ..store import write_atomic
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
    """A loopback TCP port free right now (for a server this process starts next)."""
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
    return retry(lambda: int(rpc.call("eth_chainId"), 16), retry_on=NodeUnavailable, deadline=timeout,
                 delays=every(0.05))


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


# --------------------------------------------------------------------------------------------------
# One folder, one chain


class ChainBusy(PeruComprasError):
    """This folder's local chain already runs (`peru-compras node` refuses to start a second one)."""


@dataclass(frozen=True, slots=True)
class ChainInfo:
    """The running local chain of a state folder: its owner process, Anvil's process and its address."""

    rpc: str
    port: int
    pid: int
    anvil_pid: int
    chain_id: int
    started_by: str

    def to_json(self) -> dict[str, Any]:
        return {"rpc": self.rpc, "port": self.port, "pid": self.pid, "anvil_pid": self.anvil_pid,
                "chain_id": self.chain_id, "started_by": self.started_by}


def pid_alive(pid: int) -> bool:
    """True when a process with this id runs (an ended child not yet reaped does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def port_in_use(host: str, port: int) -> bool:
    """True when something already listens on (host, port) (connections of a server that has ended, in
    TIME_WAIT, do not count: servers bind with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except socket.gaierror:
            raise InvalidInput(f"cannot resolve host {host!r}", hint="give a host name or address of this machine, "
                               "e.g. --host 127.0.0.1") from None
        except OSError:
            return True
    return False


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Anvil gets SIGTERM when its owner dies, even by SIGKILL (Linux), so it never outlives it."""
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class FolderChain:
    """The one local chain of a state folder (``<home>``): at most one owner process runs it.

    The owner holds an exclusive lock on ``<home>/chain/owner.lock`` for its whole life (the kernel frees
    it when the process ends, however it ends), records itself in ``<home>/node.json`` (pid, Anvil's pid,
    port, URL), runs Anvil as its child without Anvil's own ``--state`` dumping, and is the only writer of
    ``<home>/chain/state.json``: it asks Anvil for its state (``anvil_dumpState``) after each new block
    and when it stops, and writes the file atomically. A second start in the same folder finds the lock
    taken and reuses the running chain (:meth:`ensure_running`) or refuses (`peru-compras node`).
    """

    def __init__(self, home: Path) -> None:
        self.home = home
        self.folder = home / "chain"
        self.state_file = self.folder / "state.json"
        self.info_file = home / "node.json"
        self.lock_file = self.folder / "owner.lock"
        self.log_file = self.folder / "anvil.log"

    # -- looking -----------------------------------------------------------------------------------

    def _owned(self) -> bool:
        """True while some process holds the owner lock."""
        if not self.lock_file.exists():
            return False
        with self.lock_file.open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
        return False

    def running(self) -> ChainInfo | None:
        """The running chain, or None (nothing started here, or its owner has ended)."""
        if not self._owned():
            return None
        try:
            data = json.loads(self.info_file.read_text())
            return ChainInfo(str(data["rpc"]), int(data["port"]), int(data["pid"]), int(data["anvil_pid"]),
                             int(data["chain_id"]), str(data.get("started_by", "?")))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # the owner is still starting

    def not_running(self) -> NodeUnavailable:
        """The error for a command that needs the chain when it is not running (read-only commands never
        start it)."""
        kept = " (stopped; its state is kept)" if self.state_file.exists() else " (nothing was started here yet)"
        return NodeUnavailable(f"the local chain of {self.home} is not running{kept}",
                               hint="start it with `peru-compras node`, or run `peru-compras demo`")

    # -- starting ----------------------------------------------------------------------------------

    def ensure_running(self, *, started_by: str, timeout: float = 30.0) -> tuple[ChainInfo, bool]:
        """The running chain, started in the background (an owner process in its own session) if none
        runs: (info, started). Starters in the same folder take turns, so only one owner is started."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / "start.lock").open("a") as turn:
            fcntl.flock(turn, fcntl.LOCK_EX)
            info = self.running()
            if info is not None:
                return info, False
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            with self.log_file.open("ab") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "peru_compras.chain.node", str(self.home), started_by],
                    stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
            # its answer, or "ended" when the owner exits first (then its log says why)
            answer = poll(lambda: self.running() or ("ended" if process.poll() is not None else None),
                          timeout=timeout, delays=every(0.05))
            if isinstance(answer, ChainInfo):
                return answer, True
            if process.poll() is None:
                process.terminate()
            tail = self.log_file.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            raise NodeUnavailable(f"the local chain did not start: {tail[0]}", hint=f"see {self.log_file}")

    def run(self, *, port: int | None = None, started_by: str = "node",
            ready: Callable[[ChainInfo], None] | None = None) -> None:
        """Be the owner: run Anvil until SIGTERM or SIGINT, keeping ``state.json`` up to date."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.lock_file.open("a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                other = self.running()
                where = f" at {other.rpc} (pid {other.pid}, started by {other.started_by})" if other else ""
                raise ChainBusy(f"the local chain of {self.home} already runs{where}",
                                hint="use it as it is, or end it with `peru-compras stop` first") from None
            self._own(lock, port, started_by, ready)

    def _own(self, lock: Any, port: int | None, started_by: str,
             ready: Callable[[ChainInfo], None] | None) -> None:
        port = port or free_port()
        if port_in_use("127.0.0.1", port):
            raise NodeUnavailable(f"port {port} on 127.0.0.1 is already in use by another program",
                                  hint="choose another with --port")
        command = _command(port, None, ["--load-state", str(self.state_file)] if self.state_file.exists() else [])
        stop = False

        def _stop(*_: object) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        with self.log_file.open("ab") as log:
            anvil = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                     preexec_fn=_die_with_parent)  # noqa: PLW1509 - prctl only
        url = f"http://127.0.0.1:{port}"
        try:
            chain_id = wait_ready(url)
            info = ChainInfo(url, port, os.getpid(), anvil.pid, chain_id, started_by)
            write_atomic(self.info_file, (json.dumps(info.to_json()) + "\n").encode(), durable=True)
            if ready is not None:
                ready(info)
            self._keep_state(Rpc(url, timeout=30.0, attempts=1), anvil, lambda: stop)
        finally:
            self.info_file.unlink(missing_ok=True)
            stop_process(anvil)

    def _keep_state(self, rpc: Rpc, anvil: subprocess.Popen[bytes], stopping: Callable[[], bool]) -> None:
        """Dump the state after new blocks (and every 10 s, for changes without a block), and last when
        stopping. A large state costs time to dump: the next dump waits at least four times as long as
        the last one took, so the owner never takes more than a fifth of a core from the chain."""
        last_block, last_digest, last_full, next_dump = "", b"", time.monotonic(), 0.0

        def dump() -> None:
            nonlocal last_digest, next_dump
            started = time.monotonic()
            data = gzip.decompress(bytes.fromhex(str(rpc.call("anvil_dumpState"))[2:]))
            digest = hashlib.sha256(data).digest()
            if digest != last_digest:
                write_atomic(self.state_file, data, durable=True)
                last_digest = digest
            next_dump = time.monotonic() + 4 * (time.monotonic() - started)

        while not stopping() and anvil.poll() is None:
            time.sleep(0.25)
            if time.monotonic() < next_dump:
                continue
            try:
                block = str(rpc.call("eth_blockNumber"))
                if block != last_block or time.monotonic() - last_full > 10:
                    dump()
                    last_block, last_full = block, time.monotonic()
            except (PeruComprasError, OSError, ValueError) as exc:  # one failed save must not end the chain
                print(f"peru-compras: could not save the chain's state ({type(exc).__name__}: {exc}); "
                      "retrying", file=sys.stderr)
                continue
        if anvil.poll() is None:
            dump()

    # -- stopping ----------------------------------------------------------------------------------

    def stop(self, *, grace: float = 15.0) -> ChainInfo | None:
        """End the running chain (its owner saves the state first); None when none was running."""
        info = self.running()
        if info is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            os.kill(info.pid, signal.SIGTERM)
        if not poll(lambda: True if not self._owned() else None, timeout=grace, delays=every(0.05)):
            for pid in (info.pid, info.anvil_pid):  # an owner that does not answer SIGTERM
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        # the processes end just after the lock is freed
        poll(lambda: True if not any(pid_alive(pid) for pid in (info.pid, info.anvil_pid)) else None, timeout=5,
             delays=every(0.05))
        return info


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return False


def _main(argv: list[str]) -> int:
    """``python -m peru_compras.chain.node HOME STARTED_BY``: the background owner of HOME's chain."""
    try:
        FolderChain(Path(argv[0])).run(started_by=argv[1] if len(argv) > 1 else "?")
    except ChainBusy:
        return 0  # another owner won the race: the starter reuses it
    except PeruComprasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
