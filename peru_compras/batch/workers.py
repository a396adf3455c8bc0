"""The worker side of a batch: rows prepared by :func:`peru_compras.service.prepare_many`, each document
appended to a pack of the store, and what the journal and the chain need sent back (never the bytes).

Workers get what every row is prepared with (:class:`_Job`: base URL, stamp, store, PDF limits and the QR
signer) once, from the pool's initializer: never through argv or the environment.
"""

from __future__ import annotations

import gc
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, fields, replace
from itertools import chain, islice
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import PeruComprasError
from ..rows import Line, Row
from ..steps import ITEM_ERRORS
from ..store import LocalStore, Packed, PackWriter
from ..urls import document_url

if TYPE_CHECKING:
    from ..order import Order
    from ..pdf import CheckedPdf, Limits
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

    def __reduce__(self) -> tuple[type[Prepared], tuple[Any, ...]]:
        # its fields as a tuple: pickled 5.8 -> 2.8 µs and rebuilt in the batch process 7.7 -> 3.8 µs (dataclasses'
        # own state functions look up the fields each time; timeit of a chunk of 50)
        return Prepared, _PREPARED_FIELDS(self)


_PREPARED_FIELDS = attrgetter(*(field.name for field in fields(Prepared)))


def prepare(row: Row, base_url: str, stamp: bool, store_root: Path, *, limits: Limits | None = None,
            qr_fragment: QrFragment | None = None) -> Prepared:
    """One row through :func:`prepare_rows`."""
    return prepare_rows([row], base_url, stamp, store_root, limits=limits, qr_fragment=qr_fragment)[0]


#: the PDF bytes (by their files' sizes) a worker reads and holds at once, at most, plus the file that passes
#: it: a chunk's rows are read, then prepared step by step across them (service.prepare_many), so their
#: documents are in memory together (the batch benchmark's chunk of 50 is 130 KB); what their checks keep
#: decoded for the next step is bounded to a quarter of it
GROUP_BYTES = 16 << 20


def prepare_rows(items: list[Row | Line], base_url: str, stamp: bool, store_root: Path, *,
                 limits: Limits | None = None, qr_fragment: QrFragment | None = None) -> list[Prepared]:
    """`items` (rows, or JSON Lines not read yet), in their order, through :func:`peru_compras.service.
    prepare_many` (validate, stamp unless `stamp` is false, hash): each document appended to a pack of the
    store (not yet committed) and its entry encoded. Each step runs over every row before the next (see
    prepare_many): the lines read (:func:`~peru_compras.manifest.read_line`), the records parsed, then, a
    group of at most GROUP_BYTES at a time, the PDFs read and checked (:func:`~peru_compras.pdf.
    read_checked_many`), prepared, packed and encoded. Never raises for a row: a refusal is its `error`. Runs
    in worker processes, so the documents' bytes never travel back."""
    from ..manifest import read_line
    from ..order import parse_order
    from ..pdf import read_checked_many

    rows = [read_line(item) if isinstance(item, Line) else item for item in items]
    out: dict[int, Prepared] = {}
    orders: list[tuple[int, Order]] = []
    for index, row in enumerate(rows):
        if row.skipped:
            out[index] = Prepared(row.number, error=row.error, skipped=True, source=row.source)
        elif (problem := row.problem()) is not None:
            out[index] = Prepared(row.number, order_number=row.order_number_hint, error=problem, source=row.source)
        else:
            try:
                orders.append((index, parse_order(row.record)))  # each line names its row already
            except ITEM_ERRORS as exc:
                out[index] = _refusal(row, exc)
    for group in _groups(rows, orders):
        paths = [path for path in (rows[index].pdf for index, _ in group) if path is not None]
        read = iter(read_checked_many(paths, limits=limits, keep_total=GROUP_BYTES // 4))
        ready: list[tuple[int, Order, CheckedPdf | None]] = []
        try:
            for index, order in group:
                document = next(read) if rows[index].pdf is not None else None  # None: drawn
                if isinstance(document, Exception):
                    out[index] = _refusal(rows[index], document)
                else:
                    ready.append((index, order, document))
            if ready:
                out.update(_prepare_group(rows, ready, base_url, stamp, store_root, limits, qr_fragment))
        finally:
            for _, _, document in ready:  # (prepare_many used them up, unless it never got them)
                if document is not None:
                    document.close()
    return [out[index] for index in range(len(rows))]


def _groups(rows: list[Row], orders: list[tuple[int, Order]]) -> Iterator[list[tuple[int, Order]]]:
    """`orders` in runs whose PDFs are GROUP_BYTES at most (by their sizes now; the run ends after the file
    that passes it). A file that cannot be looked at counts nothing: reading it says why."""
    group: list[tuple[int, Order]] = []
    size = 0
    for index, order in orders:
        group.append((index, order))
        path = rows[index].pdf
        if path is not None:
            try:
                size += os.stat(path).st_size
            except (OSError, ValueError):
                pass
        if size >= GROUP_BYTES:
            yield group
            group, size = [], 0
    if group:
        yield group


def _prepare_group(rows: list[Row], group: list[tuple[int, Order, CheckedPdf | None]], base_url: str, stamp: bool,
                   store_root: Path, limits: Limits | None, qr_fragment: QrFragment | None) -> dict[int, Prepared]:
    """`group`'s rows prepared (by index): service.prepare_many, then the packs, then the entries."""
    from .. import service

    ready = service.prepare_many(
        [(order, document, str(rows[index].pdf) if rows[index].pdf is not None else "document")
         for index, order, document in group], base_url=base_url, stamp=stamp, limits=limits, qr_fragment=qr_fragment)
    out: dict[int, Prepared] = {}
    stored: list[tuple[int, Order, service.Prepared, Packed]] = []
    writer = _writer(store_root, base_url)
    for (index, order, _), outcome in zip(group, ready, strict=True):
        if isinstance(outcome, Exception):
            out[index] = _refusal(rows[index], outcome)
            continue
        try:
            stored.append((index, order, outcome, writer.add(outcome.document)))
        except ITEM_ERRORS as exc:
            out[index] = _refusal(rows[index], exc)
    for index, order, outcome, packed in stored:
        row = rows[index]
        try:
            out[index] = Prepared(row.number, order.key, order.order_number, order.entity.key, order.token_id,
                                  packed.digest, order.encode_entry(packed.digest), outcome.verify_url,
                                  order.document_url or document_url(base_url, packed.digest), source=row.source,
                                  packed=packed)
        except ITEM_ERRORS as exc:
            out[index] = _refusal(row, exc)
    return out


def _refusal(row: Row, exc: BaseException) -> Prepared:
    return Prepared(row.number, order_number=row.order_number_hint, error=error_text(exc), source=row.source)


def error_text(exc: BaseException) -> str:
    """A refused row's line: a rule's message, or one for what no rule foresaw (never an object's repr or a
    traceback)."""
    if isinstance(exc, PeruComprasError):
        return str(exc)
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
    (never through argv or the environment: `qr_fragment` holds the registrar's signing key). `pdf_limits`:
    :class:`~peru_compras.pdf.Limits`'s three numbers, built in the worker (``peru_compras.pdf`` loads pikepdf,
    which the batch process itself never needs). `signed`: `qr_fragment` is the signer to use (None there
    then means plain QRs); unsigned, the signer is not known yet and no row that needs one is given."""

    base_url: str
    stamp: bool
    store_root: Path
    pdf_limits: tuple[int, int, int] | None = None
    qr_fragment: QrFragment | None = None
    signed: bool = True

    def needs_signer(self, rows: list[Row | Line]) -> bool:
        """Whether preparing `rows` may print a QR (stamping, or a drawn order) while the signer is unknown."""
        return not self.signed and (self.stamp or any(isinstance(row, Row) and row.render and row.pdf is None
                                                      for row in rows))


_JOB: _Job | None = None
_LIMITS: Limits | None = None


def _start_worker(job: _Job | None, own_process: bool) -> None:
    """Pool initializer: keep `job` (None: each chunk brings it, see :func:`start_early`); in a worker process,
    die with the batch process (a crash or SIGKILL must not leave workers behind holding its output pipes)
    and load the modules rows need while the batch process is still setting up (reaching the node, reading
    the registry, reconciling the journal)."""
    if own_process:
        try:
            import ctypes
            import signal

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
            # glibc gives the top of its heap back to the kernel once more than M_TRIM_THRESHOLD is free there
            # (128 KiB, or twice the largest block freed so far). Each row's compressor (canonical.deflate,
            # ~330 KiB at memLevel 9) is freed at that top, so a worker forked before the batch process had
            # freed a large block gave the heap back and faulted it in again on every row: 35 page faults a
            # row, 0.08 ms of its 0.6 ms (benchmarks/startup.py; /proc minflt per chunk 1,780 -> 3). Kept:
            # 64 MiB at most, blocks under 4 MiB from the heap (a PDF's limits bound what a row holds).
            libc.mallopt(-1, 64 << 20)  # M_TRIM_THRESHOLD
            libc.mallopt(-3, 4 << 20)  # M_MMAP_THRESHOLD
        except (OSError, AttributeError):
            pass
        from .. import order, pdf, service  # noqa: F401
    if own_process:
        # What a worker has loaded by now is never garbage: the collector stops walking it (collection time
        # of a 2,000-order run, gc.callbacks: 15-21 -> 10-14 ms a worker). Not in the batch process, which
        # may be a library caller's: its objects would never be collected again
        gc.freeze()
    if job is not None:
        _keep(job)


def _keep(job: _Job) -> None:
    global _JOB, _LIMITS
    from ..pdf import Limits

    _JOB, _LIMITS = job, Limits(*job.pdf_limits) if job.pdf_limits is not None else None


def _prepare_chunk(rows: list[Row | Line], job: _Job | None = None) -> list[Prepared]:
    """`rows` prepared, their documents flushed to disk (the batch process's commit then writes the index).
    `job`: the job, when it has no QR signer (the workers :func:`start_early` forked before it was known have
    none from their initializer)."""
    if job is not None and job != _JOB:
        _keep(job)
    job = _JOB
    assert job is not None, "the pool's initializer (or the chunk) gives the job"
    prepared = prepare_rows(rows, job.base_url, job.stamp, job.store_root, limits=_LIMITS, qr_fragment=job.qr_fragment)
    _writer(job.store_root, job.base_url).sync()
    return prepared


#: workers :func:`start_early` forked, not yet taken by a :class:`Preparer` (one process, one command)
_EARLY: list[tuple[int, ProcessPoolExecutor]] = []


def default_workers() -> int:
    """Worker processes of a batch: one a core, at most two (the batch process and the node share them)."""
    return min(2, os.cpu_count() or 1)


def start_early(workers: int | None = None) -> None:
    """Fork a batch's worker processes now, before the job is known (``peru-compras register-batch`` calls it
    before parsing its command line): they load what rows need while the command line, the settings and
    the manifest are read. A :class:`Preparer` whose job has no QR signer then takes them, and sends the job
    with each chunk (a signer never travels through a pipe: a job that has one gets a pool of its own).
    Forked here rather than by the Preparer, 0.1-0.15 s later: a 2,000-order ``--no-stamp`` batch on a new
    chain, start to exit, 1,396 -> 1,497 orders/s (medians of 10 runs alternated with the old code; the
    median of the paired ratios 1.065)."""
    count = workers if workers is not None else default_workers()
    if count < 2 or _EARLY:
        return
    import multiprocessing

    pool = ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("fork"), initializer=_start_worker,
                               initargs=(None, True))
    pool.submit(int)  # (a pool that forks starts all its processes at the first task)
    _EARLY.append((count, pool))


def _take_early(workers: int, job: _Job) -> ProcessPoolExecutor | None:
    """The workers :func:`start_early` forked, if there are `workers` of them and `job` may travel to them;
    else None (and they are stopped)."""
    if not _EARLY:
        return None
    count, pool = _EARLY.pop()
    if count == workers and job.qr_fragment is None:
        return pool
    pool.shutdown(cancel_futures=True)  # waited for: no thread of it is left when the next pool forks
    return None


#: chunks a worker may be ahead of the batch process. Two left each worker idle 20-40 ms while the batch process
#: reached the node and sent its first batch (the gap between chunks, measured in the workers); with four the
#: gaps are those of handing a chunk back (1-8 ms). At most 4 x 2 x 50 prepared rows wait (a few hundred KB).
AHEAD = 4


class Preparer:
    """A batch's worker pool and its look-ahead: `rows` go in chunks of `chunk` to `workers` processes (one
    thread when `workers` is 1); the prepared chunks come back in the rows' order, at most AHEAD chunks a
    worker ahead of the one the batch process reads.

    The workers start as soon as :meth:`top_up` is first called, before the chain is reached, when the job
    needs nothing from it: a job without its signer (``signed`` false) takes rows that print no QR. The
    first chunk that would print one waits; `signer` (which may reach the chain) is then asked for it, and
    the pool starts again with it once the chunks ahead of that one are read (stamping: before any worker
    starts). Rows are read from `rows` only as chunks are submitted (memory stays bounded)."""

    def __init__(self, job: _Job, rows: Iterable[Row | Line], *, workers: int, chunk: int,
                 signer: Callable[[], QrFragment | None]) -> None:
        self._job, self._rows, self._workers, self._chunk, self._signer = job, iter(rows), workers, chunk, signer
        self._pool: Executor | None = None
        self._ahead: deque[Future[list[Prepared]]] = deque()
        self._held: list[Row | Line] | None = None  # the next chunk, waiting for the signer

    def _sign(self) -> None:
        if not self._job.signed:
            self._job = replace(self._job, qr_fragment=self._signer(), signed=True)

    def top_up(self) -> None:
        """Submit chunks until AHEAD per worker are ahead, the rows end, or a chunk waits for the signer."""
        while self._held is None and len(self._ahead) < AHEAD * self._workers:
            chunk = list(islice(self._rows, self._chunk))
            if not chunk:
                return
            if self._job.needs_signer(chunk):
                if self._pool is not None:
                    self._held = chunk  # submitted once the pool without the signer is drained
                    return
                self._sign()  # nothing started yet: start with the signer
            if self._pool is None:
                self._pool = _take_early(self._workers, self._job) or (
                    ProcessPoolExecutor(self._workers, initializer=_start_worker, initargs=(self._job, True))
                    if self._workers > 1 else
                    ThreadPoolExecutor(1, initializer=_start_worker, initargs=(self._job, False)))
            # a job without a signer goes with each chunk (start_early's workers have none); a signer never does
            travels = self._job if self._job.qr_fragment is None else None
            self._ahead.append(self._pool.submit(_prepare_chunk, chunk, travels))

    def next(self, idle: Callable[[], bool] | None = None) -> list[Prepared] | None:
        """The next chunk's prepared rows (waiting for them), or None when every row is done. `idle` is
        called while that chunk is not ready yet, again as long as it returns True (it did some work)."""
        self.top_up()
        if not self._ahead and self._held is not None:
            self.close()  # every chunk prepared without the signer is read: again, with it
            self._sign()
            held, self._held = self._held, None
            self._pool = None
            self._rows = chain([*held], self._rows)
            self.top_up()
        if not self._ahead:
            return None
        while idle is not None and not self._ahead[0].done() and idle():
            pass
        return self._ahead.popleft().result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
