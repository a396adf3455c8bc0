"""The worker side of a batch: each row prepared by :func:`peru_compras.service.prepare`, its document
appended to a pack of the store, and what the journal and the chain need sent back (never the bytes).

Workers get what every row is prepared with (:class:`_Job`: base URL, stamp, store, PDF limits and the QR
signer) once, from the pool's initializer: never through argv or the environment.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import PeruComprasError
from ..rows import Row
from ..store import LocalStore, Packed, PackWriter
from ..urls import document_url

if TYPE_CHECKING:
    from ..pdf import Limits
    from ..workspace import QrFragment

Emit = Callable[[dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class Prepared:
    """One row after a worker prepared it: what the journal and the chain need (never the document's bytes,
    which the worker appended to a pack of the store), or why it is refused or skipped."""

    number: int
    key: str = ""
    order_number: str = ""
    entity: str = ""
    token_id: int = 0
    digest: bytes = b""
    entry: bytes = b""
    verify_url: str = ""
    document_url: str = ""
    error: str | None = None
    skipped: bool = False
    source: dict[str, Any] | None = None
    packed: Packed | None = None  # where its document was appended (committed before its batch is signed)


def prepare(row: Row, base_url: str, stamp: bool, store_root: Path, *, limits: Limits | None = None,
            qr_fragment: QrFragment | None = None) -> Prepared:
    """One row through :func:`peru_compras.service.prepare` (validate, stamp unless `stamp` is false, hash),
    its document appended to a pack of the store (not yet committed) and its entry encoded. Never raises: a
    refusal is `error`. Runs in worker processes, so the document's bytes never travel back."""
    from .. import service
    from ..order import parse_order
    from ..pdf import read_checked

    number_hint = str((row.record or {}).get("order_number", "") or "")
    if row.skipped:
        return Prepared(row.number, error=row.error, skipped=True, source=row.source)
    if row.error or row.record is None or (row.pdf is None and not row.render):
        return Prepared(row.number, order_number=number_hint, error=row.error or "unreadable row", source=row.source)
    if not stamp and row.pdf is not None:
        qr_fragment = None  # its QR is printed already: nothing to sign
    try:
        order = parse_order(row.record)  # each line names its row already
        document = read_checked(row.pdf, limits=limits) if row.pdf is not None else None  # None: drawn
        try:
            ready = service.prepare(order, document, base_url=base_url, stamp=stamp, limits=limits,
                                    name=str(row.pdf) if row.pdf is not None else "document", qr_fragment=qr_fragment)
        finally:
            if document is not None:
                document.close()  # (prepare uses it up; this is for a refusal before it got there)
        packed = _writer(store_root, base_url).add(ready.document)
        digest = packed.digest
        return Prepared(row.number, order.key, order.order_number, order.entity.key, order.token_id, digest,
                        order.encode_entry(digest), ready.verify_url,
                        order.document_url or document_url(base_url, digest), source=row.source, packed=packed)
    except PeruComprasError as exc:
        return Prepared(row.number, order_number=number_hint, error=str(exc), source=row.source)
    except (ValueError, TypeError, RecursionError, MemoryError) as exc:  # a row no rule foresaw: its line only
        return Prepared(row.number, order_number=number_hint, error=_unforeseen(exc), source=row.source)


def _unforeseen(exc: BaseException) -> str:
    """One line for a row that broke something no rule names (never an object's repr or a traceback)."""
    return f"this row could not be read ({type(exc).__name__}) — check its fields; the other rows go on"


_WRITERS: dict[tuple[Path, str, int], PackWriter] = {}


def _writer(root: Path, base_url: str) -> PackWriter:
    """One pack writer per worker process (a pack has a single writer), kept for the process's life."""
    key = (root, base_url, os.getpid())
    if key not in _WRITERS:
        _WRITERS[key] = LocalStore(root, base_url).pack_writer()
    return _WRITERS[key]


@dataclass(frozen=True)
class _Job:
    """What every row of a run is prepared with; handed to each worker once, by the pool's initializer
    (never through argv or the environment: `qr_fragment` holds the registrar's signing key)."""

    base_url: str
    stamp: bool
    store_root: Path
    limits: Limits | None = None
    qr_fragment: QrFragment | None = None


_JOB: _Job | None = None


def _start_worker(job: _Job, own_process: bool) -> None:
    """Pool initializer: keep `job`; in a worker process, die with the batch process (a crash or SIGKILL must
    not leave workers behind holding its output pipes) and load the modules rows need while the batch
    process is still setting up (reading the registry, reconciling the journal)."""
    global _JOB
    _JOB = job
    if own_process:
        try:
            import ctypes
            import signal

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
        from .. import order, pdf, service  # noqa: F401


def _prepare_chunk(rows: list[Row]) -> list[Prepared]:
    job = _JOB
    assert job is not None, "the pool's initializer sets the job"
    return [prepare(row, job.base_url, job.stamp, job.store_root, limits=job.limits, qr_fragment=job.qr_fragment)
            for row in rows]
