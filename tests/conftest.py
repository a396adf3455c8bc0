"""Shared fixtures: a real Anvil node per session, a funded signer, a fresh registry per test module,
and a runner for the CLI in a temporary working folder."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
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
REFERENCE = json.loads((ROOT.parent / "shared" / "reference-order.json").read_text()) if (
    ROOT.parent / "shared" / "reference-order.json").exists() else json.loads(
    (ROOT / "peru_compras" / "samples" / "01-hospital-piura.json").read_text())
CLI = str(ROOT / ".venv" / "bin" / "peru-compras")


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


class Runner:
    """Runs `peru-compras` as a user would: a subprocess in its own working folder."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.env = env

    def __call__(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Result:
        proc = subprocess.run([CLI, *args], cwd=self.cwd, env={**self.env, **(env or {})}, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli(tmp_path: Path, anvil: LocalNode, rpc: Rpc) -> Runner:
    """The CLI against the session's Anvil, with a funded key in PERU_COMPRAS_PRIVATE_KEY."""
    account = funded_account(rpc)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERU_COMPRAS_")}
    env.update(PERU_COMPRAS_RPC=anvil.url, PERU_COMPRAS_PRIVATE_KEY=account.key.hex(),
               PERU_COMPRAS_BASE_URL="https://oc.example.pe")
    runner = Runner(tmp_path, env)
    runner.account = account  # type: ignore[attr-defined]
    return runner


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


__all__ = ["REFERENCE", "Result", "Runner", "funded_account", "reference_order", "write_json", "sys"]
