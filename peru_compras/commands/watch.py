"""Watching the whole registry: ``mirror`` (the registry in SQLite, :mod:`peru_compras.mirror`) and ``audit``
(every published document against its registered hash, :mod:`peru_compras.audit`). Parse, call, print."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from .base import emit, err, state, workspace


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[int, int, str], None]]:
    """A Rich progress bar on stderr (stdout keeps only the answer); yields `update(done, total, note)`."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[note]}"),
               TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        task = progress.add_task(label, total=None, note="")

        def update(done: int, total: int, note: str) -> None:
            progress.update(task, completed=done, total=total, note=note)

        yield update


def mirror_command(
    out: Path = typer.Option(Path("registro.sqlite"), "--out", help="The SQLite file: made on the first run, "
                             "brought up to date on the next."),
    max_blocks: int = typer.Option(100_000, "--max-blocks", help="The most blocks one eth_getLogs asks for "
                                   "(a node's own limit; a refused range is halved anyway)."),
) -> None:
    """Copy the whole registry into SQLite from chain data alone; the next run adds only what is new.

    Tables orders, items, parties, status_changes and registrars, with full-text search on names and
    descriptions. A run killed at any moment loses nothing: the next one goes on from the last block range
    written. Explore it with Datasette and the shipped metadata (Spanish labels, canned queries):
    datasette registro.sqlite -m peru_compras/data/datasette-metadata.json

    Example:
        peru-compras mirror --out registro.sqlite --json
    """
    from ..mirror import mirror

    registry = workspace().registry()
    with progress_bar("mirroring blocks") as update:
        summary = mirror(registry, out, max_blocks=max_blocks,
                         progress=lambda done, total, added: update(done, total, f"+{added} orders"))
    unreadable = f", {summary.unreadable} unreadable (see record_error)" if summary.unreadable else ""
    emit(summary.to_json(), f"{summary.orders} orders in {out} up to block {summary.block} "
                            f"({summary.added} new, {summary.status_changes} status changes{unreadable})")


def audit_command(
    mirror_file: Path = typer.Option(Path("registro.sqlite"), "--mirror", help="The mirror (from `mirror`)."),
    out: Path = typer.Option(Path("informe.html"), "--out", help="The HTML report; the CSV and JSON are written "
                             "beside it (same name, .csv and .json)."),
    fetch_host: list[str] = typer.Option(None, "--fetch-host", help="Also download from this host (repeatable) "
                                         "[env PERU_COMPRAS_FETCH_HOSTS]."),
    any_host: bool = typer.Option(False, "--any-host", help="Download from any host name (public addresses only), "
                                  "as the verification page does."),
    workers: int = typer.Option(16, "--workers", help="Downloads at a time in all."),
    per_host: int = typer.Option(4, "--per-host", help="Downloads at a time from one host."),
    rate: float = typer.Option(20.0, "--rate", help="Downloads started per second per host (0: no limit)."),
    recheck_after: float = typer.Option(7.0, "--recheck-after", help="Check again verdicts older than this many "
                                        "days (0: check everything again)."),
) -> None:
    """Download every mirrored order's published document and check it is the registered original.

    Verdicts (original, altered, missing, unreachable, refused) and the time checked are kept in the mirror's
    audit table, so the next run checks only what is new or older than --recheck-after. The downloads follow
    verify --fetch's rules (allowed hosts, no private addresses, size and time limits). Exit 0 only when every
    document is the original, 1 otherwise.

    Example:
        peru-compras audit --mirror registro.sqlite --out informe.html --json
    """
    from dataclasses import replace

    from ..audit import AuditSettings, audit, open_mirror
    from ..audit_report import write_reports
    from ..fetch import FetchPolicy

    settings = AuditSettings(workers=workers, per_host=per_host, rate=rate, recheck_after=recheck_after * 86_400)
    ws = workspace()
    policy = FetchPolicy.from_settings(ws.settings, fetch_host or [])
    if any_host:
        policy = replace(policy, any_host=True, local_base=False)
    open_mirror(mirror_file).close()  # a missing or foreign file: one line, before the progress bar
    with progress_bar("checking documents") as update:
        summary = audit(mirror_file, policy, settings=settings,
                        progress=lambda done, total, bad: update(done, total, f"{bad} not original"))
    db = open_mirror(mirror_file)
    try:
        html, csv, data = write_reports(db, out, base_url=ws.settings.base_url, summary=summary)
    finally:
        db.close()
    totals = ", ".join(f"{summary.totals.get(status, 0)} {status}" for status in
                       ("original", "altered", "missing", "unreachable", "refused"))
    unchecked = f", {summary.unchecked} unchecked" if summary.unchecked else ""
    emit({**summary.to_json(), "report": str(html), "csv": str(csv), "json": str(data)},
         f"checked {summary.checked} documents now; in all {totals}{unchecked}\nreport: {html} ({csv}, {data})")
    if not summary.all_original:
        raise typer.Exit(1)


__all__ = ["audit_command", "err", "mirror_command", "progress_bar", "state"]
