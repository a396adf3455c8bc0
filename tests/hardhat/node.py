"""Hardhat's node (npm hardhat 2.x, installed by `npm ci`) as a second, independent EVM node for the
portability tests: a subprocess on a free loopback port, stopped at exit."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from peru_compras.chain.node import free_port, stop_process, wait_ready

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BOOTSTRAP = ROOT / "node_modules/hardhat/internal/cli/bootstrap.js"


def available() -> bool:
    return BOOTSTRAP.is_file() and shutil.which("node") is not None


class HardhatNode:
    """`hardhat node` with tests/hardhat/hardhat.config.js (chain id 31337, automining, London+ fees)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.chain_id = 0
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> HardhatNode:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HARDHAT_")}
        env["HARDHAT_DISABLE_TELEMETRY_PROMPT"] = "true"  # no question on a first run
        self._process = subprocess.Popen(
            ["node", str(BOOTSTRAP), "node", "--hostname", "127.0.0.1", "--port", str(self.port)],
            cwd=HERE, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        try:
            self.chain_id = wait_ready(self.url, timeout=60)
        except Exception:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        stop_process(self._process)
        self._process = None

    def __enter__(self) -> HardhatNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
