"""The ``peru-compras`` console entry (and ``python -m peru_compras``): :func:`peru_compras.cli.main`, with
``register-batch``'s worker processes forked first, so that they load what preparing a row needs (pikepdf,
the order model) while this process parses the command line, reads the settings and opens the manifest."""

from __future__ import annotations

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

    cli_main()
