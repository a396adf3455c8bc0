"""A command loads only what its path needs: ``import peru_compras`` and ``peru-compras --help`` load none of
web3, eth-account or py_ecc, and the commands that read or sign with a plain key do not load eth-account
(whose eth-keyfile computes py_ecc's BLS constants at import: ~0.6 s of every start, see chain/keys.py), nor
eth_abi, eth_utils, rlp, eth_hash or pydantic (~0.4 s together: chain/abi.py and chain/keys.py do their part).
Timings are in benchmarks/startup.py; this checks which modules a fresh process ends up with."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "peru_compras" / "samples" / "01-hospital-piura.json"
HEAVY = ("web3", "eth_account", "eth_keyfile", "py_ecc")
#: eth_abi 249 ms, rlp 200 ms, eth_utils 185 ms (pydantic 52 ms of it) at import: chain/abi.py and
#: chain/keys.rlp_encode do what the commands need of them (see their docstrings)
ETH_LIBS = ("eth_abi", "eth_utils", "rlp", "eth_hash", "pydantic")
WATCH = (*HEAVY, *ETH_LIBS)
#: prints, at exit, which of the modules asked for were loaded (JSON on the last line of stderr)
REPORT = ("import atexit, json, sys\nwatch = sys.argv.pop(1).split(',')\n"
          "atexit.register(lambda: print(json.dumps(sorted(m for m in watch if m in sys.modules)), file=sys.stderr))\n")
CLI = REPORT + "from peru_compras.launch import main\nsys.argv[0] = 'peru-compras'\nmain()\n"  # the console entry
# a node that is not there: a command gets as far as asking it, then exits 3
DEAD_NODE = {"PERU_COMPRAS_RPC": "http://127.0.0.1:9", "PERU_COMPRAS_REGISTRY": "0x" + "11" * 20,
             "PERU_COMPRAS_PRIVATE_KEY": "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"}


def loaded(code: str, *args: str, cwd: Path, watch: tuple[str, ...] = WATCH, env: dict[str, str] | None = None,
           expect: int = 0) -> list[str]:
    """Which of `watch` a fresh interpreter running `code` with `args` had loaded when it exited (pydantic
    included: typer 0.29 coerced every option through it, 0.1 s of each command's start, and is why typer is
    pinned at 0.28)."""
    done = subprocess.run([sys.executable, "-c", code, ",".join(watch), *args],
                          capture_output=True, text=True, cwd=cwd, env={**os.environ, **(env or {})}, timeout=60)
    assert done.returncode == expect, done.stderr
    found: list[str] = json.loads(done.stderr.strip().splitlines()[-1])
    return found


def test_importing_the_package_loads_nothing_heavy(tmp_path: Path) -> None:
    assert loaded(REPORT + "import peru_compras, peru_compras.settings, peru_compras.errors", cwd=tmp_path,
                  watch=(*WATCH, "pikepdf", "requests", "typer")) == []


def test_help_loads_nothing_heavy(tmp_path: Path) -> None:
    assert loaded(CLI, "--help", cwd=tmp_path) == []
    assert loaded(CLI, "verify", "--help", cwd=tmp_path) == []


@pytest.mark.parametrize("command", ["verify", "show", "register", "register-batch"])
def test_reading_and_signing_with_a_plain_key_load_no_eth_library(tmp_path: Path, command: str) -> None:
    """No eth-account, and none of eth_abi, eth_utils, rlp, eth_hash or pydantic."""
    pdf = tmp_path / "orden.pdf"
    assert loaded(CLI, "render", str(SAMPLE), "--out", str(pdf), cwd=tmp_path) == []
    record = json.loads(SAMPLE.read_text(encoding="utf-8"))
    (tmp_path / "ordenes.jsonl").write_text(json.dumps({**record, "pdf": str(pdf)}) + "\n", encoding="utf-8")
    args = {"verify": ["verify", str(pdf)], "show": ["show", "20131370998/OC-2026-004512"],
            "register": ["register", str(SAMPLE), str(pdf), "--no-stamp"],
            "register-batch": ["register-batch", str(tmp_path / "ordenes.jsonl"), "--no-stamp"]}[command]
    # exit 3: it got as far as the node (the modules the command's path needs are loaded by then)
    assert loaded(CLI, *args, cwd=tmp_path, env=DEAD_NODE, expect=3) == []


def test_a_json_lines_batch_process_loads_no_ocds_module_and_no_pikepdf(tmp_path: Path) -> None:
    """Sniffing a JSON Lines manifest is manifest.py's (the OCDS modules are for OCDS manifests), and the
    PDFs are opened by the workers only (the batch process forks them before it would have loaded either)."""
    pdf = tmp_path / "orden.pdf"
    assert loaded(CLI, "render", str(SAMPLE), "--out", str(pdf), cwd=tmp_path) == []
    record = json.loads(SAMPLE.read_text(encoding="utf-8"))
    (tmp_path / "ordenes.jsonl").write_text(json.dumps({**record, "pdf": pdf.name}) + "\n", encoding="utf-8")
    watch = ("peru_compras.ocds", "peru_compras.ocds.read", "pikepdf")
    batch = ["register-batch", str(tmp_path / "ordenes.jsonl"), "--no-stamp"]
    assert loaded(CLI, *batch, cwd=tmp_path, env=DEAD_NODE, expect=3, watch=watch) == []
    # the watch sees them where they are loaded: an OCDS manifest, and a dry run (no workers: PDFs opened here)
    package = {"uri": "x", "publishedDate": "2026-01-01T00:00:00Z", "releases": []}
    (tmp_path / "paquete.json").write_text(json.dumps(package), encoding="utf-8")
    assert "peru_compras.ocds.read" in loaded(CLI, "register-batch", str(tmp_path / "paquete.json"), "--no-stamp",
                                              cwd=tmp_path, env=DEAD_NODE, expect=3, watch=watch)
    assert "pikepdf" in loaded(CLI, *batch, "--dry-run", cwd=tmp_path, watch=watch)


def test_the_watch_would_see_eth_account(tmp_path: Path) -> None:
    """The check itself: a process that does load eth-account (or eth_abi) is seen to."""
    assert loaded(REPORT + "import eth_account", cwd=tmp_path, watch=HEAVY) == ["eth_account", "eth_keyfile", "py_ecc"]
    assert loaded(REPORT + "import eth_abi.abi", cwd=tmp_path) == ["eth_abi", "eth_hash", "eth_utils", "pydantic"]
    assert loaded(REPORT + "import rlp", cwd=tmp_path) == ["eth_hash", "eth_utils", "pydantic", "rlp"]
    assert loaded(REPORT + "import pydantic", cwd=tmp_path) == ["pydantic"]


def test_the_console_entry_leaves_what_it_loaded_to_the_collector_frozen(tmp_path: Path) -> None:
    """launch.py freezes what a command has loaded (and again at its end): the collector neither walks it while
    the command runs nor once more at exit. A plain import of the CLI freezes nothing."""
    report = "import atexit, gc, sys\natexit.register(lambda: print(gc.get_freeze_count(), file=sys.stderr))\n"
    for entry, frozen in (("from peru_compras.launch import main", True), ("from peru_compras.cli import main", False)):
        code = report + entry + "\nsys.argv = ['peru-compras', '--help']\nmain()\n"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
        assert done.returncode == 0, done.stderr
        count = int(done.stderr.strip().splitlines()[-1])
        assert (count > 10_000) is frozen, count  # the CLI's modules hold tens of thousands of objects
