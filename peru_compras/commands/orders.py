"""Commands that write orders: deploy, register, register-batch, export-ocds, qr, render, annul."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ..errors import InvalidInput
from .base import default_name, emit, err, hex_id, read_document, state, warn, workspace

if TYPE_CHECKING:
    from ..batch import BatchRegistrar, Summary


def deploy() -> None:
    """Deploy the registry; the signer gets the admin, registrar and annuller roles. This folder then uses
    it (`.peru-compras/deployment.json` keeps it per chain). Without a key, the embedded signer signs, on
    this folder's own local chain only (no --rpc, or --rpc naming it).

    Example:
        peru-compras deploy --rpc http://127.0.0.1:8545
    """
    from .. import service

    ws = workspace()
    registry, receipt = service.deploy(ws)
    chain_id = ws.transactor.chain_id
    emit({"registry": registry.address, "chain_id": chain_id, "tx_hash": receipt.tx_hash,
          "block_number": receipt.block_number, "gas_used": receipt.gas_used},
         f"registry deployed at {registry.address} (chain {chain_id}, block {receipt.block_number}, "
         f"{receipt.gas_used:,} gas)")


def register(
    order: Path = typer.Argument(..., help="The order record (JSON)."),
    pdf: Path = typer.Argument(..., help="The order's PDF."),
    out: Path = typer.Option(None, "--out", help="Write the stamped PDF here."),
    supersedes: str = typer.Option(None, "--supersedes", help="Token this corrected order replaces."),
    no_stamp: bool = typer.Option(False, "--no-stamp", help="Hash the PDF as it is (it already has its QR)."),
    stamp_at: str = typer.Option("bottom-right", "--stamp-at", help="Where the QR goes: bottom-right, "
                                 "bottom-left, top-right, top-left (page 1) or last-page (an added page)."),
    allow_other_urls: bool = typer.Option(False, "--allow-other-urls", help="Register even though the PDF "
                                          "carries a link or QR for another address (each printed as a warning)."),
) -> None:
    """Validate an order, stamp its QR on the PDF, store the PDF and mint the order's token.

    Example:
        peru-compras register orden.json orden.pdf --out orden-sellada.pdf
    """
    from .. import service
    from ..order import load_order

    ws = workspace()
    record = load_order(order)
    prepared = service.prepare(record, read_document(pdf), base_url=ws.base_url, stamp=not no_stamp,
                               placement=stamp_at, allow_other_urls=allow_other_urls, name=str(pdf),
                               qr_fragment=ws.qr_signer())  # H7: the signed QR (issue 17)
    warn(prepared.warnings)
    old = service.resolve(ws.registry(write=True), supersedes) if supersedes else None
    registered = service.register(ws, prepared, supersedes=old, out=out)
    if registered.resumed:
        err(f"{record.order_number} was already registered by an earlier run with this same PDF: finishing it")
    data = registered.to_json()
    emit(data, f"registered {data['order_number']} as token {data['token_id']}\n"
               f"  tx {data['tx_hash']} (block {data['block_number']}, {data['gas_used']:,} gas)\n"
               f"  {data['hashlink']}\n  verify at {data['verify_url']}")


def register_batch(
    manifest: Path = typer.Argument(..., help="JSON Lines or CSV manifest (each row names its PDF in `pdf`), or "
                                    "OCDS: a release or record package, or JSON Lines of releases."),
    pdf_dir: Path = typer.Option(None, "--pdf-dir", help="Folder the `pdf` paths are relative to; for OCDS, the "
                                 "folder of <order number>.pdf files (absent ones are drawn by render)."),
    batch_size: int = typer.Option(100, "--batch-size", help="Orders per transaction (1-500)."),
    no_stamp: bool = typer.Option(False, "--no-stamp", help="PDFs already carry their QR: hash them as they are."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print each order's record (or why it is refused) as a "
                                 "JSON line; send, store and journal nothing."),
) -> None:
    """Register many orders, resumably: run the same command again after any crash and nothing is lost or
    doubled. One JSON line per order on stdout (with --json), a progress bar on stderr, a summary last.
    An OCDS manifest gives one order per contract (or award without one) with items; every release is
    registered or reported on its own line with the reason.

    Example:
        peru-compras register-batch ordenes.jsonl --pdf-dir pdfs/ --batch-size 100 --json
        peru-compras register-batch ocds-release-package.json --pdf-dir pdfs/ --dry-run
    """
    from ..batch import BatchRegistrar, preview
    from ..manifest import Row, count_rows, manifest_kind, read_lines, read_manifest
    from ..terminal import json_line

    if not manifest.is_file():
        raise InvalidInput(f"cannot read manifest {str(manifest)!r}", hint="check the path")
    if not 1 <= batch_size <= 500:
        raise InvalidInput(f"--batch-size {batch_size} is out of range", hint="use 1 to 500 orders per transaction")
    ws = workspace()

    def line_out(line: dict[str, Any]) -> None:
        if state.json or dry_run:
            print(json_line(line), flush=False)
        elif "error" in line:
            err(f"row {line.get('row')}: {line.get('order_number') or '?'}: {line['error']}")
        elif line.get("status") == "skipped":
            err(f"row {line.get('row')}: skipped: {line.get('reason')}")

    rows: Any = (read_manifest if dry_run else read_lines)(manifest, pdf_dir=pdf_dir)  # a batch's workers read lines
    total: int | None = None
    if manifest_kind(manifest) == "ocds":  # read whole anyway: map it now, so a broken package stops here
        listed: list[Row] = list(rows)
        rows, total = iter(listed), len(listed)
    if dry_run:
        summary = preview(rows, base_url=ws.settings.base_url, emit=line_out)
        sys.stdout.flush()
        emit(summary.to_json(), f"would register {summary.would_register}, refused {summary.failed}, "
                                f"skipped {summary.skipped} (dry run: nothing sent)")
        if summary.failed:
            raise typer.Exit(1)
        return

    registrar = BatchRegistrar(ws, batch_size=batch_size, stamp=not no_stamp, emit=line_out)
    try:
        registrar.start(rows)  # the workers take their first rows while the rows are counted and the bar drawn
        total = count_rows(manifest) if total is None else total
        summary = _run_with_progress(registrar, total)
    finally:
        registrar.close()
    sys.stdout.flush()
    skipped = f", skipped {summary.skipped}" if summary.ocds else ""
    emit(summary.to_json(), f"registered {summary.registered}, already registered {summary.already_registered}, "
                            f"failed {summary.failed}{skipped}")
    if summary.failed:
        raise typer.Exit(1)


def _run_with_progress(registrar: BatchRegistrar, total: int) -> Summary:
    """Run the batch with a progress bar on stderr when it is a terminal; otherwise (a log, a pipe) one line
    at the end with the same counts and rate, and without loading rich (38 ms of the batch process's CPU,
    measured with process_time around the bar's set-up, where the workers need both cores)."""
    started = time.monotonic()
    if not sys.stderr.isatty():
        done = 0

        def count(n: int) -> None:
            nonlocal done
            done += n

        registrar.progress = count
        try:
            return registrar.run()
        finally:
            seconds = time.monotonic() - started
            err(f"registering {done}/{total} {done / max(seconds, 1e-6):.0f} orders/s {seconds:.1f} s")
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("registering"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]:.0f} orders/s"), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        task = progress.add_task("orders", total=total, rate=0.0)

        def advance(n: int) -> None:
            progress.advance(task, n)
            done = progress.tasks[0].completed
            progress.update(task, rate=done / max(time.monotonic() - started, 1e-6))

        registrar.progress = advance
        return registrar.run()


def export_ocds(
    out: Path = typer.Option(Path("release-package.json"), "--out",
                             help="Write the package here ('-': stdout)."),
    ocid_prefix: str = typer.Option(None, "--ocid-prefix", help="Your registered OCID prefix [default: "
                                    "ocds-pecomp, not registered]."),
    publisher: str = typer.Option(None, "--publisher", help="Publisher name in the package."),
) -> None:
    """Write the registered orders as an OCDS 1.1 release package: one release per order, read from the chain,
    with its PDF as a contract document (URL, application/pdf, SHA-256) and its registration (chain id,
    registry, token id, transaction, block) in the `chainRegistration` extension.

    Example:
        peru-compras export-ocds --out compras-ocds.json
    """
    from ..errors import UnreadableRecord
    from ..ocds.write import OCID_PREFIX, dumps, export_package
    from ..store import write_atomic

    ws = workspace()
    skipped: list[str] = []

    def unreadable(exc: UnreadableRecord) -> None:  # one line each; the other orders are still exported
        skipped.append(hex_id(exc.token_id) or "")
        err(f"skipped: {exc}")

    package = export_package(ws.registry(), base_url=ws.settings.base_url, ocid_prefix=ocid_prefix or OCID_PREFIX,
                             publisher=publisher, unreadable=unreadable)
    text = dumps(package) + "\n"
    count = len(package["releases"])
    left_out = f"; {len(skipped)} unreadable on-chain record(s) left out" if skipped else ""
    if str(out) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        err(f"{count} releases written to stdout{left_out}")
    else:
        write_atomic(out, text.encode())
        emit({"releases": count, "file": str(out), "unreadable": skipped},
             f"{count} releases (one per registered order) written to {out}{left_out}")
    if skipped:
        raise typer.Exit(1)


def qr_command(
    order: Path = typer.Argument(..., help="The order record (JSON)."),
    fmt: str = typer.Option(None, "--format", help="svg | png [default: from --out's suffix, else svg]."),
    out: Path = typer.Option(None, "--out", help="Write it here [default: qr-<order number>.<format>]."),
    scale: int = typer.Option(None, "--scale", min=1, max=100, help="Pixels (PNG) or units (SVG) per module."),
) -> None:
    """Write the order's QR (it encodes its verify URL, known before minting) for PDF templates of your own;
    then `register --no-stamp` hashes the PDF as it is.

    Example:
        peru-compras qr orden.json --format png --out qr.png
    """
    from .. import qr as qrcode
    from ..order import load_order
    from ..qr_check import render_signer
    from ..signed_qr import qr_text
    from ..store import write_atomic
    from ..urls import verify_url as make_verify_url

    record = load_order(order)
    kind = (fmt or (out.suffix.lstrip(".") if out is not None and out.suffix else "svg")).lower()
    if kind not in ("svg", "png"):
        raise InvalidInput(f"--format {kind!r} is not svg or png", hint="use --format svg or --format png")
    verify_url = make_verify_url(workspace().base_url, record)
    text, unsigned = qr_text(verify_url, record, render_signer(workspace(), warn=lambda line: warn([line])))
    warn([unsigned] if unsigned else [])  # H7: the same signed QR as render and register
    data = qrcode.svg(text, scale=scale or 4) if kind == "svg" else qrcode.png(text, scale=scale or 10)
    target = out or default_name("qr-" + record.order_number, "." + kind)
    write_atomic(target, data)
    emit({"verify_url": verify_url, "file": str(target), "format": kind},
         f"QR of {record.order_number} ({verify_url}) written to {target}")


def render(
    order: Path = typer.Argument(..., help="The order record (JSON)."),
    out: Path = typer.Option(None, "--out", help="Write the PDF here [default: <order number>.pdf]."),
    stamp_at: str = typer.Option("bottom-right", "--stamp-at", help="Where the QR goes (as for register)."),
) -> None:
    """Draw a standard Spanish purchase-order PDF for a record that comes without one, its QR printed on it.

    Example:
        peru-compras render orden.json --out orden.pdf
    """
    from ..order import load_order
    from ..qr_check import render_signer
    from ..render import render_order
    from ..signed_qr import qr_text
    from ..store import write_atomic
    from ..urls import verify_url as make_verify_url

    record = load_order(order)
    verify_url = make_verify_url(workspace().base_url, record)
    text, unsigned = qr_text(verify_url, record, render_signer(workspace(), warn=lambda line: warn([line])))
    warn([unsigned] if unsigned else [])  # H7: the signed QR when a registry and key are set up
    document = render_order(record, verify_url=text, placement=stamp_at)
    target = out or default_name(record.order_number, ".pdf")
    write_atomic(target, document)
    emit({"file": str(target), "verify_url": verify_url, "bytes": len(document)},
         f"order {record.order_number} drawn to {target} (QR: {verify_url})")


def annul(
    ref: str = typer.Argument(..., metavar="TOKEN_ID|ENTITY_RUC/ORDER_NUMBER"),
    reason: str = typer.Option(..., "--reason", help="Why (1 to 1,000 bytes; kept on chain)."),
) -> None:
    """Mark an order void with a reason; its token stays, its status becomes annulled.

    Example:
        peru-compras annul 20131370998/OC-2026-004512 --reason "Error en el monto"
    """
    from .. import service

    token_id, receipt = service.annul(workspace(), ref, reason)
    emit({"tx_hash": receipt.tx_hash, "status": "annulled", "token_id": hex_id(token_id),
          "block_number": receipt.block_number}, f"token {hex_id(token_id)} annulled (tx {receipt.tx_hash})")
