"""What every command shares: this run's workspace (built on first use from the global options), the
answer on stdout (JSON with ``--json``, else text; outside strings escaped either way) and one-line
messages on stderr."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..pdf import CheckedPdf, Limits
    from ..workspace import Workspace


class State:
    """One process, one command: the global options of this run."""

    json = False
    command = ""
    flags: dict[str, Any] = {}  # noqa: RUF012 — one process, one command
    workspace: Workspace | None = None


state = State()


def workspace() -> Workspace:
    """This run's workspace, from the global options > environment > peru-compras.toml > defaults."""
    if state.workspace is None:
        from ..settings import load_settings
        from ..workspace import Workspace

        state.workspace = Workspace(load_settings(state.flags))
        state.workspace.started_by = f"peru-compras {state.command}"
    return state.workspace


def err(text: str) -> None:
    """One line on stderr, outside characters escaped (see :mod:`peru_compras.terminal`)."""
    from ..terminal import safe

    print(safe(text), file=sys.stderr)


def warn(lines: tuple[str, ...] | list[str]) -> None:
    for line in lines:
        err(f"warning: {line}")


def emit(data: dict[str, Any], human: str) -> None:
    """The command's answer: JSON with --json, else `human`; either way no outside string reaches the
    terminal raw (control, bidi and zero-width characters escaped, see :mod:`peru_compras.terminal`)."""
    from ..terminal import json_line, safe

    print(json_line(data) if state.json else safe(human))


def hex_id(token_id: int | None) -> str | None:
    from ..urls import token_hex

    return None if token_id is None else token_hex(token_id)


def limits() -> Limits:
    """This run's PDF limits (``max-pdf-bytes``, ``max-pdf-pages``, ``max-pdf-decoded-bytes``)."""
    from ..pdf.open import Limits

    return Limits.from_settings(workspace().settings)


def read_document(path: Path) -> CheckedPdf:
    """The PDF at `path`, read and checked within this run's limits, still open (use it in ``with``)."""
    from ..pdf.checked import read_checked

    return read_checked(path, limits=limits())


def default_name(number: str, suffix: str) -> Path:
    """A file name for an order number (``OC-2026/1`` → ``OC-2026_1.pdf``)."""
    import re

    return Path(re.sub(r"[^A-Za-z0-9._-]+", "_", number).strip("._") + suffix)
