"""Shared fixtures: a real Anvil node per session (per xdist worker), a funded signer, a fresh registry per
test module, and a runner for the CLI in a temporary working folder.

The runner calls ``peru_compras.cli.main(argv)`` in-process (about 1 s of interpreter and import start-up
saved on every call) with the test's environment, working folder, an empty stdin and captured output,
restoring the process afterwards; :meth:`Runner.run` and :meth:`Runner.popen` start a real process
(``python -m peru_compras``) for what only a process shows: kill -9, signals, ``serve``/``node``/``demo``,
the environment a child sees, umask, start-up imports."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from peru_compras.chain.client import Registry
from peru_compras.chain.networks import network
from peru_compras.chain.node import LocalNode, set_balance
from peru_compras.chain.rpc import Rpc
from peru_compras.chain.transactions import Transactor

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
#: the project's reference record (a copy of the product docs' reference-order.json, kept in the repo)
REFERENCE = json.loads((DATA / "reference-order.json").read_text(encoding="utf-8"))
#: the CLI as a real process: this interpreter, ``-m peru_compras`` (no path to a virtual environment)
CLI: tuple[str, ...] = (sys.executable, "-m", "peru_compras")


def reference_order(**changes: Any) -> dict[str, Any]:
    """A deep copy of the reference record with top-level fields changed."""
    record = copy.deepcopy(REFERENCE)
    record.update(changes)
    return record


@pytest.fixture(scope="session")
def anvil() -> Iterator[LocalNode]:
    with LocalNode() as node:
        yield node


@pytest.fixture(scope="session")
def rpc(anvil: LocalNode) -> Rpc:
    return Rpc(anvil.url)


def funded_account(rpc: Rpc) -> LocalAccount:
    account = Account.create()
    set_balance(rpc, account.address, 10**24)  # Anvil or Hardhat
    return account


@pytest.fixture(scope="session")
def admin(rpc: Rpc) -> LocalAccount:
    return funded_account(rpc)


@pytest.fixture(scope="module")
def registry(rpc: Rpc, admin: LocalAccount) -> Registry:
    deployed, _ = Registry.deploy(Transactor(rpc, admin, network("local")),
                                  document_base_uri="https://oc.example.pe/d/")
    return deployed


@pytest.fixture(scope="session")
def lacnet_emulator() -> Iterator[Any]:
    """The LACNet emulator (tests/lacnet/emulator.py) with account permissioning on: permit() each signer."""
    from .lacnet.emulator import LacnetEmulator

    with LacnetEmulator() as emulator:
        emulator.permit()
        yield emulator


@pytest.fixture(scope="session")
def hardhat_node() -> Iterator[Any]:
    """Hardhat's node from npm (hardhat 2.x), the second independent EVM node."""
    from .hardhat.node import HardhatNode, available

    if not available():
        pytest.fail("hardhat is not installed: run scripts/bootstrap (npm ci installs it)")
    with HardhatNode() as node:
        yield node


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class RunTimeout(BaseException):
    """An in-process run went over its time (a BaseException: the CLI's own ``except Exception`` lets it out)."""


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`RunTimeout` in the test's thread after `seconds` (SIGALRM; only in the main thread)."""
    if threading.current_thread() is not threading.main_thread() or seconds <= 0:
        yield
        return

    def _expired(_signum: int, _frame: FrameType | None) -> None:
        raise RunTimeout(f"the command ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _reset_cli_state() -> None:
    """Forget what one in-process run leaves in the process: this run's options and workspace, and the
    batch's pack writers kept for the life of a worker (the in-process pool's worker is this process)."""
    from peru_compras.commands.base import state

    state.workspace = None
    state.json = False
    state.command = ""
    state.flags = {}
    workers = sys.modules.get("peru_compras.batch.workers")
    if workers is not None:
        for writer in workers._WRITERS.values():
            writer.close()
        workers._WRITERS.clear()
        workers._JOB = None


class _Captured(io.BytesIO):
    """A stream's bytes, still readable after whoever held the stream closed it."""

    def close(self) -> None:
        pass


#: commands that must not run inside the test process, and why
REAL_PROCESS_ONLY = {"serve": "re-executes itself without the signing key in its environment",
                     "node": "runs in the foreground until a signal, with its own signal handlers",
                     "demo": "leaves a chain and a page server running in the background"}


def _command_word(argv: list[str]) -> str | None:
    """The command in a `peru-compras` argument list (global options may come first)."""
    from peru_compras.cli import GLOBAL_VALUE_OPTIONS

    words = iter(argv)
    for word in words:
        if word in GLOBAL_VALUE_OPTIONS:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def run_in_process(argv: list[str], *, cwd: Path, env: dict[str, str], stdin: bytes = b"",
                   timeout: float = 120) -> Result:
    """``peru-compras ARGV`` as :func:`peru_compras.cli.main` runs it, in this process: os.environ is `env`
    exactly, the working folder is `cwd`, stdin holds `stdin`, stdout/stderr are captured (text and
    ``.buffer``), and the exit code is SystemExit's. Everything is put back afterwards.

    With PERU_COMPRAS_TEST_CLI=process in the test process's environment every run is a real process instead
    (``python -m peru_compras``): to tell a leak between in-process runs from a real failure, or to time both."""
    command = _command_word(argv)
    if command in REAL_PROCESS_ONLY and "--help" not in argv:
        raise AssertionError(f"`{command}` needs a real process (it {REAL_PROCESS_ONLY[command]}): "
                             "use runner.run/runner.popen")
    if os.environ.get("PERU_COMPRAS_TEST_CLI") == "process":
        done = subprocess.run([*CLI, *argv], cwd=cwd, env=env, input=stdin, capture_output=True, timeout=timeout)
        return Result(done.returncode, _text(done.stdout), _text(done.stderr))
    from peru_compras.cli import main

    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    saved_streams = sys.stdin, sys.stdout, sys.stderr
    out, err = _Captured(), _Captured()
    streams = (io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"),
               io.TextIOWrapper(out, encoding="utf-8", write_through=True),
               io.TextIOWrapper(err, encoding="utf-8", write_through=True))
    sys.stdin, sys.stdout, sys.stderr = streams
    code: int = 0
    try:
        os.environ.clear()
        os.environ.update(env)
        os.chdir(cwd)
        _reset_cli_state()
        with _deadline(timeout):
            try:
                main(list(argv))
            except SystemExit as exc:
                if isinstance(exc.code, str):  # as the interpreter does: the text on stderr, exit 1
                    print(exc.code, file=sys.stderr)
                    code = 1
                else:
                    code = int(exc.code or 0)
    finally:
        for stream in streams:  # keep the buffers open whatever the command did to its streams
            with contextlib.suppress(ValueError):
                stream.flush()
                stream.detach()
        sys.stdin, sys.stdout, sys.stderr = saved_streams
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        _reset_cli_state()
    return Result(code, _text(out.getvalue()), _text(err.getvalue()))


def run_cli(args: list[str], *, env: dict[str, str], cwd: Path | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """:func:`run_in_process` with subprocess.run's answer (for helpers written against a real process);
    `cwd` defaults to the current folder, as a child's would."""
    result = run_in_process(args, cwd=cwd or Path.cwd(), env=env, timeout=timeout)
    return subprocess.CompletedProcess([*CLI, *args], result.code, result.stdout, result.stderr)


def _text(data: bytes) -> str:
    """What ``subprocess.run(text=True)`` gives: UTF-8, universal newlines."""
    return data.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")


class Runner:
    """Runs `peru-compras` as a user would, in its own working folder and environment: in-process by default
    (``runner(*args)``), or as a real process (``runner.run``/``runner.popen``)."""

    account: LocalAccount  #: the funded key in PERU_COMPRAS_PRIVATE_KEY (the `cli` fixture's)

    def __init__(self, cwd: Path, env: dict[str, str], account: LocalAccount | None = None) -> None:
        self.cwd = cwd
        self.env = env
        if account is not None:
            self.account = account

    def __call__(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120,
                 stdin: bytes = b"") -> Result:
        """In-process: ``peru_compras.cli.main(args)`` (see :func:`run_in_process`)."""
        return run_in_process(list(args), cwd=self.cwd, env={**self.env, **(env or {})}, stdin=stdin,
                              timeout=timeout)

    def command(self, *args: str) -> list[str]:
        return [*CLI, *args]

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120,
            **kwargs: Any) -> Result:
        """A real process (``python -m peru_compras``); extra keywords go to subprocess.run."""
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        proc = subprocess.run(self.command(*args), cwd=self.cwd, env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=timeout, **kwargs)
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def popen(self, *args: str, env: dict[str, str] | None = None, **kwargs: Any) -> subprocess.Popen[Any]:
        """A real process left running (the caller waits for it or kills it); keywords go to Popen."""
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        kwargs.setdefault("cwd", self.cwd)
        return subprocess.Popen(self.command(*args), env={**self.env, **(env or {})}, **kwargs)


def clean_env(**changes: str) -> dict[str, str]:
    """This process's environment without any PERU_COMPRAS_* variable, with `changes`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERU_COMPRAS_")}
    env.update(changes)
    return env


@pytest.fixture
def cli(tmp_path: Path, anvil: LocalNode, rpc: Rpc) -> Runner:
    """The CLI against the session's Anvil, with a funded key in PERU_COMPRAS_PRIVATE_KEY."""
    account = funded_account(rpc)
    env = clean_env(PERU_COMPRAS_RPC=anvil.url, PERU_COMPRAS_PRIVATE_KEY=account.key.hex(),
                    PERU_COMPRAS_BASE_URL="https://oc.example.pe")
    return Runner(tmp_path, env, account)


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


__all__ = ["CLI", "DATA", "REFERENCE", "ROOT", "Result", "RunTimeout", "Runner", "clean_env", "funded_account",
           "reference_order", "run_cli", "run_in_process", "write_json"]
