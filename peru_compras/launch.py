"""The ``peru-compras`` console entry (and ``python -m peru_compras``): :func:`peru_compras.cli.main`, with
``register-batch``'s worker processes forked first, so that they load what preparing a row needs (pikepdf,
the order model) while this process parses the command line, reads the settings and opens the manifest; and
with what the command has loaded frozen for the garbage collector (see :func:`main`)."""

from __future__ import annotations

import gc
import sys

#: a command line with one of these prepares no row in workers (help, or a dry run's preview in this process)
_NO_WORKERS = frozenset({"--help", "-h", "--dry-run"})


def wants_workers(args: list[str]) -> bool:
    """Whether the command line `args` runs a batch that prepares rows in worker processes (a value that
    happens to read ``register-batch`` only costs two idle workers)."""
    return "register-batch" in args and _NO_WORKERS.isdisjoint(args)


def main() -> None:
    if wants_workers(sys.argv[1:]):
        from .batch.workers import start_early

        start_early()
    from .cli import main as cli_main

    # This process runs one command and ends: what it has loaded lives as long as it, so the collector stops
    # walking it, and at the end the objects left are not walked once more by the last collection (the exit
    # frees them all). A 2,000-order register-batch spent 34-39 ms in 103-105 collections and 40 ms in the
    # last one (gc.callbacks; process exit to the end of its stderr 52-59 -> 12-14 ms).
    gc.freeze()
    try:
        cli_main()
    finally:
        gc.freeze()
