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


__all__ = ["err", "mirror_command", "progress_bar", "state"]
