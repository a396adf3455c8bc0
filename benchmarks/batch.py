"""Batch throughput on a local Anvil, from manifest to confirmed receipts, beside a naive baseline (one order
per transaction, sent and confirmed one after another).

    .venv/bin/python benchmarks/batch.py [--orders 4000] [--stamped 1000] [--batch-size 200]

In-process runs write each order's JSON line to a file, as the CLI does; `no_stamp_cli_end_to_end` times the
command itself, start-up included, and `no_stamp_cli_2000_default_batch` the issue-16 goal: 2,000 orders at the
default batch size, start to exit, median of --cli-runs (goal 1,500 orders/s). `stamped` signs each QR (the
default), `stamped_plain_qr` stamps the plain verify URL: their worker CPU difference is the signed QR's cost. Writes
benchmarks/results/batch.json (batch-<label>.json with --label). Numbers depend on what else the 2-core
machine is doing: the load average before and after the run is recorded beside them.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import pikepdf
from eth_abi.abi import encode as abi_encode
from eth_account import Account

from peru_compras.batch import BatchRegistrar, read_manifest
from peru_compras.chain.client import REGISTER, Registry
from peru_compras.chain.node import LocalNode
from peru_compras.hashing import sha256
from peru_compras.order import parse_order
from peru_compras.render import render_order
from peru_compras.settings import load_settings
from peru_compras.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_FILE = ROOT.parent / "shared" / "reference-order.json"
if not REFERENCE_FILE.exists():
    REFERENCE_FILE = ROOT / "peru_compras" / "samples" / "01-hospital-piura.json"
REFERENCE = json.loads(REFERENCE_FILE.read_text())


PDF_PADDING = 0  # --pdf-kb: incompressible bytes added to each PDF, to stand in for scanned pages


def make_manifest(folder: Path, count: int, prefix: str) -> Path:
    """`count` copies of the reference record (only order_number differs), each with its own one-page PDF."""
    folder.mkdir(parents=True)
    base = render_order(parse_order(REFERENCE))
    with (folder / "manifest.jsonl").open("w", encoding="utf-8") as manifest:
        for index in range(count):
            record = copy.deepcopy(REFERENCE)
            record["order_number"] = f"{prefix}-{index:06d}"
            with pikepdf.open(io.BytesIO(base)) as pdf:
                pdf.docinfo["/Title"] = record["order_number"]
                if PDF_PADDING:
                    pdf.Root["/BenchmarkPadding"] = pdf.make_stream(os.urandom(PDF_PADDING))
                buffer = io.BytesIO()
                pdf.save(buffer, deterministic_id=True)
            (folder / f"{index}.pdf").write_bytes(buffer.getvalue())
            record["pdf"] = f"{index}.pdf"
            manifest.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.sync()  # the back-office's PDFs are on disk before a run starts: flush them outside the timing
    return folder / "manifest.jsonl"


def workspace(node: LocalNode, home: Path) -> Workspace:
    account = Account.create()
    os.environ["PERU_COMPRAS_PRIVATE_KEY"] = account.key.hex()
    ws = Workspace(load_settings({"rpc": node.url, "home": home, "base_url": "https://oc.example.pe"}))
    ws.rpc.call("anvil_setBalance", [account.address, hex(10**24)])
    registry, _ = Registry.deploy(ws.transactor, document_base_uri="https://oc.example.pe/d/")
    ws.remember_deployment(registry, ws.transactor.chain_id)
    return ws


def _plain_qr(order: Any) -> None:
    """A QR signer that never signs: the stamped run's QR is the plain verify URL (to price the signature)."""
    return None


def run_batch(node: LocalNode, tmp: Path, count: int, *, stamp: bool, batch_size: int, name: str,
              rerun: bool = False, qr_fragment: Any = None) -> dict[str, Any]:
    """One manifest through `BatchRegistrar`; with `rerun`, the same manifest again once it is done (what a
    back-office re-sending yesterday's file sees: every order reported already registered, nothing sent)."""
    manifest = make_manifest(tmp / f"{name}-pdfs", count, name.upper())
    ws = workspace(node, tmp / f"{name}-home")
    with (tmp / f"{name}.jsonl").open("w", encoding="utf-8") as out:  # each order's line, as the CLI writes it
        registrar = BatchRegistrar(ws, batch_size=batch_size, stamp=stamp, emit=partial(_write_line, out),
                                   qr_fragment=qr_fragment)  # None: the session's signer (signed QRs)
        cpu_before, node_before = os.times(), _cpu_seconds(node.pid)
        started = time.perf_counter()
        summary = registrar.run(read_manifest(manifest))
        elapsed = time.perf_counter() - started
        cpu_after, node_after = os.times(), _cpu_seconds(node.pid)  # the workers are reaped by now
    assert summary.registered == count, summary
    per_order = {  # where the CPU went, in ms per order
        "main_process": (cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system),
        "workers": (cpu_after.children_user + cpu_after.children_system
                    - cpu_before.children_user - cpu_before.children_system),
        "anvil": node_after - node_before,
    }
    result: dict[str, Any] = {"orders": count, "seconds": round(elapsed, 3),
                              "orders_per_s": round(count / elapsed, 1), "batch_size": batch_size,
                              "cpu_ms_per_order": {k: round(1000 * v / count, 3) for k, v in per_order.items()}}
    if rerun:
        started = time.perf_counter()
        again = BatchRegistrar(ws, batch_size=batch_size, stamp=stamp, emit=lambda line: None)
        summary = again.run(read_manifest(manifest))
        elapsed = time.perf_counter() - started
        assert summary.already_registered == count and summary.registered == 0, summary
        result["rerun_orders_per_s"] = round(count / elapsed, 1)
    return result


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _write_line(out: TextIO, line: dict[str, Any]) -> None:
    out.write(json.dumps(line, ensure_ascii=False) + "\n")


def run_cli(node: LocalNode, tmp: Path, count: int, *, batch_size: int | None, runs: int = 1,
            name: str = "cli") -> dict[str, Any]:
    """The command a back-office runs, timed from its start to its exit (Python start-up and imports
    included): ``peru-compras register-batch MANIFEST --no-stamp --json > lines`` (``--batch-size`` only when
    given: None is the command's default). With `runs`, a new manifest each time; the median is reported."""
    home = tmp / f"{name}-home"
    workspace(node, home)
    env = {**os.environ, "PERU_COMPRAS_RPC": node.url, "PERU_COMPRAS_BASE_URL": "https://oc.example.pe"}
    times = []
    for run in range(runs):
        manifest = make_manifest(tmp / f"{name}-pdfs-{run}", count, f"{name.upper()}{run}")
        command = [str(ROOT / ".venv" / "bin" / "peru-compras"), "--home", str(home), "register-batch",
                   str(manifest), "--no-stamp", "--json",
                   *(["--batch-size", str(batch_size)] if batch_size is not None else [])]
        with (tmp / f"{name}.jsonl").open("w") as out:
            started = time.perf_counter()
            done = subprocess.run(command, env=env, stdout=out, stderr=subprocess.DEVNULL, check=False)
            times.append(time.perf_counter() - started)
        last = json.loads((tmp / f"{name}.jsonl").read_text().splitlines()[-1])
        assert done.returncode == 0 and last["summary"]["registered"] == count, last
    elapsed = statistics.median(times)
    return {"orders": count, "seconds": round(elapsed, 3), "orders_per_s": round(count / elapsed, 1),
            "batch_size": batch_size if batch_size is not None else "default (100)", "runs": runs,
            "orders_per_s_each": [round(count / t, 1) for t in times]}


def run_baseline(node: LocalNode, tmp: Path, count: int) -> dict[str, Any]:
    """The naive way the anchors were driven: one order per transaction (`register`), signed, sent and its
    receipt awaited before the next; no pre-checks, no estimate (a fixed gas limit)."""
    ws = workspace(node, tmp / "baseline-home")
    registry = ws.registry(write=True)
    transactor = ws.transactor
    orders = []
    for index in range(count):
        record = copy.deepcopy(REFERENCE)
        record["order_number"] = f"BASE-{index:06d}"
        orders.append(parse_order(record))
    started = time.perf_counter()
    for index, order in enumerate(orders):
        data = REGISTER + abi_encode(["bytes"], [order.encode_entry(sha256(b"baseline %d" % index))])
        transactor.transact(registry.address, data, action="register", gas=100_000)
    elapsed = time.perf_counter() - started
    return {"orders": count, "seconds": round(elapsed, 3), "orders_per_s": round(count / elapsed, 1)}


def _commit() -> str:
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          check=False)
    return done.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=4000)
    parser.add_argument("--stamped", type=int, default=1000)
    parser.add_argument("--baseline", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--cli-runs", type=int, default=3, help="runs of the 2,000-order command (median)")
    parser.add_argument("--label", default=None, help="write benchmarks/results/batch-<label>.json")
    parser.add_argument("--pdf-kb", type=int, default=0,
                        help="add this many KB of incompressible data to each PDF (results: batch-pdf<N>kb.json)")
    args = parser.parse_args()
    global PDF_PADDING
    PDF_PADDING = 1024 * args.pdf_kb
    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory() as folder, LocalNode() as node:
        tmp = Path(folder)
        unstamped = run_batch(node, tmp, args.orders, stamp=False, batch_size=args.batch_size, name="nostamp",
                              rerun=True)
        cli = run_cli(node, tmp, args.orders, batch_size=args.batch_size)
        cli_2000 = run_cli(node, tmp, 2000, batch_size=None, runs=args.cli_runs, name="cli2000")
        stamped = run_batch(node, tmp, args.stamped, stamp=True, batch_size=args.batch_size, name="stamped")
        stamped["signed_qr"] = True
        plain = run_batch(node, tmp, args.stamped, stamp=True, batch_size=args.batch_size, name="plainqr",
                          qr_fragment=_plain_qr)
        plain["signed_qr"] = False
        baseline = run_baseline(node, tmp, args.baseline)
    results = {
        "no_stamp": unstamped, "no_stamp_cli_end_to_end": cli, "no_stamp_cli_2000_default_batch": cli_2000,
        "stamped": stamped, "stamped_plain_qr": plain, "baseline_one_per_tx": baseline,
        "signed_qr_worker_cpu_ms_per_order": round(stamped["cpu_ms_per_order"]["workers"]
                                                    - plain["cpu_ms_per_order"]["workers"], 3),
        "ratio_no_stamp_to_baseline": round(unstamped["orders_per_s"] / baseline["orders_per_s"], 1),
        "goals": {"no_stamp_orders_per_s": 2000, "stamped_orders_per_s": 400,
                  "no_stamp_cli_2000_default_batch_orders_per_s": 1500},
        "anchors_documents_per_s": "95 to 118 (TradeTrust / OpenZeppelin-style registries driven by web3.py)",
        "cpus": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2),
        "load_average_before": load_before, "command": " ".join(["benchmarks/batch.py", *sys.argv[1:]]),
        "commit": _commit(), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if args.pdf_kb:
        results["pdf_padding_kb"] = args.pdf_kb
    name = f"batch-{args.label}.json" if args.label else "batch.json"
    out = ROOT / "benchmarks" / "results" / (name if not args.pdf_kb else f"batch-pdf{args.pdf_kb}kb.json")
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
