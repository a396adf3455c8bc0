"""Batch registration: manifests in, one JSON line per order out, never losing or doubling an order.

Rows come from :mod:`.manifest` (JSON Lines, CSV, OCDS); worker processes prepare each order with
:func:`peru_compras.service.prepare` (validate, stamp, hash) and append its document to a pack of the store;
the main process sends batches of them through :class:`~peru_compras.chain.transactions.Transactor`, keeping
every step in the write-ahead :mod:`.journal`:

``ready``      validated, stamped and stored; its on-chain entry kept
``signed``     in a transaction whose raw bytes and nonce are committed *before* it is sent
``confirmed``  the receipt says so (block, gas)

A restart first reconciles every ``signed`` transaction with the chain: a receipt confirms its orders; a
transaction the node does not know is re-sent byte for byte (the same hash and nonce, so it cannot be
mined twice); one that can no longer be mined (its nonce taken) sends its orders back to ``ready`` after
checking each on chain. So a crash at any instant neither skips nor doubles an order; the contract's
uniqueness rule is only the last line of defence. Each batch is first simulated (``eth_estimateGas``): an
order the chain would refuse is reported on its own line and the rest go on.

On LACNet the hash the writer node returns is its relay transaction's, not the hash of the signed bytes: the
journal renames the transaction once the node has answered. The gas limit is the node's estimate with a
margin. When the hub did not run a transaction because the node's gas allowance for the block was used up
(NotEnoughGas), or a later one of ours then failed its nonce (BadNonce), its orders go back to ``ready`` and
are sent again in a new transaction a few blocks later (at most :data:`RELAY_RETRIES` rounds in a row); a
``BAD NONCE`` from the relay at sending settles what is in flight, re-reads the nonce and signs again (at most
``NONCE_RESYNCS`` times). Any other refusal, or one retried too often, sends every order of the transactions
in flight back to ``ready`` (unless the chain has it) and stops the run with one line: running it again
retries them.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .chain import lacnet
from .chain.client import ORDER_REGISTERED, Registry
from .chain.rpc import RpcError
from .chain.transactions import NONCE_RESYNCS, Receipt, Transactor
from .errors import (
    ChainRefused,
    ConfigurationError,
    InvalidInput,
    NodeUnavailable,
    OrderAlreadyRegistered,
    PeruComprasError,
    RelayRefused,
)
from .hashing import hashlink
from .journal import Journal
from .manifest import Row, count_rows, manifest_kind, pdf_inside, read_manifest
from .retry import backoff, retry
from .store import LocalStore, Packed, PackWriter
from .urls import document_url, token_hex

if TYPE_CHECKING:
    from .pdf import Limits
    from .workspace import QrFragment, Session

__all__ = ["RELAY_RETRIES", "BatchRegistrar", "Journal", "Prepared", "Row", "Summary", "count_rows",
           "manifest_kind", "pdf_inside", "prepare", "preview", "read_manifest"]

#: how many rounds in a row the orders of transactions the LACNet hub did not run are sent again
RELAY_RETRIES = 6
_RETRYABLE = (lacnet.NOT_ENOUGH_GAS, lacnet.BAD_NONCE)

Emit = Callable[[dict[str, Any]], None]
T = TypeVar("T")


# -- preparing one order (may run in a worker process) ----------------------------------------------------


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
    from . import service
    from .order import parse_order
    from .pdf import read_checked

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
        from . import order, pdf, service  # noqa: F401


def _prepare_chunk(rows: list[Row]) -> list[Prepared]:
    job = _JOB
    assert job is not None, "the pool's initializer sets the job"
    return [prepare(row, job.base_url, job.stamp, job.store_root, limits=job.limits, qr_fragment=job.qr_fragment)
            for row in rows]


# -- the run -------------------------------------------------------------------------------------------


@dataclass
class Flight:
    """A sent transaction awaiting its receipt (`tx_hash` changes if a relay re-sends it under another)."""

    tx_hash: str
    raw: bytes
    batch: list[Prepared]


@dataclass
class Summary:
    """The last line. `skipped` (OCDS releases with nothing to register) appears for OCDS manifests;
    `would_register` and `dry_run` for ``--dry-run``."""

    registered: int = 0
    already_registered: int = 0
    failed: int = 0
    skipped: int = 0
    would_register: int = 0
    ocds: bool = False
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"registered": self.registered, "already_registered": self.already_registered,
                               "failed": self.failed}
        if self.ocds or self.skipped:
            out["skipped"] = self.skipped
        if self.dry_run:
            out.update(would_register=self.would_register, dry_run=True)
        return {"summary": out}


def preview(rows: Iterator[Row], *, base_url: str, emit: Emit, progress: Callable[[int], None] | None = None,
            limits: Limits | None = None) -> Summary:
    """``--dry-run``: each row's mapped record (or its refusal, or why it is skipped) as one line, checked
    as ``register-batch`` would check it (record rules, verify URL length, the PDF within `limits` and
    registrable: :func:`peru_compras.service.prepare` without the stamp) but nothing drawn, stamped, stored,
    journaled or sent."""
    from . import service
    from .order import parse_order
    from .pdf import read_checked
    from .urls import verify_url as make_verify_url

    summary = Summary(dry_run=True)
    seen: dict[str, int] = {}
    for row in rows:
        source = row.source or {}
        summary.ocds = summary.ocds or row.source is not None
        if progress is not None:
            progress(1)
        if row.skipped:
            summary.skipped += 1
            emit({"row": row.number, "status": "skipped", "reason": row.error, **source})
            continue
        number_hint = str((row.record or {}).get("order_number", "") or "")
        try:
            if row.error or row.record is None or (row.pdf is None and not row.render):
                raise InvalidInput(row.error or "unreadable row")
            order = parse_order(row.record)  # each line names its row already
            verify_url = make_verify_url(base_url, order)
            if row.pdf is not None:
                with read_checked(row.pdf, limits=limits) as checked:
                    service.prepare(order, checked, base_url=base_url, stamp=False, limits=limits, name=str(row.pdf))
            if order.key in seen:
                raise InvalidInput(f"order {order.order_number!r} appears again (row {seen[order.key]})")
            seen[order.key] = row.number
        except (PeruComprasError, ValueError, TypeError, RecursionError, MemoryError) as exc:
            summary.failed += 1
            error = str(exc) if isinstance(exc, PeruComprasError) else _unforeseen(exc)
            emit({"row": row.number, "order_number": number_hint, "error": error, **source})
            continue
        summary.would_register += 1
        emit({"row": row.number, "status": "would_register", "order_number": order.order_number,
              "entity_ruc": order.entity.key, "token_id": token_hex(order.token_id), "verify_url": verify_url,
              "pdf": str(row.pdf) if row.pdf is not None else None, "render": row.pdf is None,
              "record": order.to_json(), **source})
    return summary


def _retrying(action: Callable[[], T], *, what: str, patience: float = 60.0) -> T:
    """Run `action` (to `what`), waiting out a node that went away: 0.25 s, doubling to 4 s, for at most
    `patience` seconds; then its NodeUnavailable goes to the caller."""
    return retry(action, retry_on=NodeUnavailable, deadline=patience, delays=backoff(0.25, cap=4.0))


class BatchRegistrar:
    """Runs one manifest through the journal to the chain, for a :class:`~peru_compras.workspace.Session`
    whose store is a :class:`~peru_compras.store.LocalStore` (workers append to its packs). `qr_fragment`
    (default: the session's ``qr_signer``) signs each order's QR; it reaches the workers through the pool's
    initializer only."""

    def __init__(self, session: Session, *, batch_size: int = 100, stamp: bool = True, in_flight: int = 4,
                 workers: int | None = None, emit: Emit, progress: Callable[[int], None] | None = None,
                 qr_fragment: QrFragment | None = None) -> None:
        from .pdf import Limits

        if not 1 <= batch_size <= 500:
            raise InvalidInput(f"--batch-size {batch_size} is out of range", hint="use 1 to 500 orders per transaction")
        store = session.store
        if not isinstance(store, LocalStore):
            raise ConfigurationError("register-batch keeps its documents in a local store (packs)",
                                     hint="give the Session a LocalStore (the default)")
        self.ws = session
        self.store = store
        self.registry: Registry = _retrying(partial(session.registry, write=True), what="reach the registry")
        self.job = _Job(session.base_url, stamp, store.root, Limits.from_settings(session.settings),
                        qr_fragment if qr_fragment is not None else session.qr_signer())
        self.transactor: Transactor = session.transactor
        self.journal = Journal(session.settings.home / "journal.sqlite", self.registry.address)
        self.batch_size = batch_size
        self.stamp = stamp
        self.in_flight_limit = in_flight
        self.workers = workers if workers is not None else min(2, os.cpu_count() or 1)
        self.emit = emit
        self.progress = progress or (lambda n: None)
        self.summary = Summary()
        self._in_flight: deque[Flight] = deque()
        self._seen_hashes: dict[bytes, str] = {}
        self._pending: dict[str, tuple[bytes, int]] = {}
        self._sources: dict[str, dict[str, Any]] = {}  # OCDS rows: where each order came from
        self._done: list[tuple[str, int | None]] = []  # confirmed by an earlier run: reported in groups
        self._retry: list[Prepared] = []  # orders of transactions the LACNet hub did not run: sent again
        self._retries = 0
        self._retry_block: int | None = None

    # -- output ---------------------------------------------------------------------------------------

    def _refuse(self, number: int, order_number: str, error: str, source: dict[str, Any] | None = None) -> None:
        self.summary.failed += 1
        self.emit({"row": number, "order_number": order_number, "error": error, **(source or {})})
        self.progress(1)

    def _remember_source(self, item: Prepared) -> None:
        if item.source is not None:
            self._sources[item.key] = item.source

    def _skip(self, item: Prepared) -> None:
        self.summary.skipped += 1
        self.emit({"row": item.number, "status": "skipped", "reason": item.error, **(item.source or {})})
        self.progress(1)

    def _flush_done(self) -> None:
        if self._done:
            self._report_many(self._done, already=False)
            self._done = []

    def _report(self, key: str, number: int | None, *, already: bool) -> None:
        self._report_many([(key, number)], already=already)

    def _report_many(self, items: list[tuple[str, int | None]], *, already: bool,
                     settle: tuple[str, Receipt] | None = None) -> None:
        """One JSON line per order, read back from the journal; marked reported in one transaction, which
        first records `settle`'s receipt (a transaction and its orders confirmed) if given."""
        with self.journal.db:
            self.journal.db.execute("BEGIN")
            if settle is not None:
                self.journal.confirm_in_transaction(*settle)
            rows = self.journal.get_many([key for key, _ in items])
            self.journal.mark_reported([key for key, _ in items])
            told: set[str] = set()  # a key twice in `items` (a duplicate row) is reported once as registered
            for key, number in items:
                row = rows[key]
                first_time = not already and not row["reported"] and key not in told
                told.add(key)
                if first_time:
                    self.summary.registered += 1
                else:
                    self.summary.already_registered += 1
                self.emit({
                    "row": number, "status": "registered" if first_time else "already_registered",
                    "token_id": row["token_id"], "order_number": row["order_number"], "entity_ruc": row["entity"],
                    "tx_hash": row["tx_hash"], "block_number": row["block_number"], "gas_used": row["gas_used"],
                    "tx_orders": row["tx_orders"], "sha256": row["sha256"],
                    "hashlink": hashlink(bytes.fromhex(row["sha256"])), "document_url": row["document_url"],
                    "verify_url": row["verify_url"], "stamped_pdf": None, **self._sources.pop(key, {}),
                })
        self.progress(len(items))

    # -- reconciliation -------------------------------------------------------------------------------

    def reconcile(self) -> None:
        """Settle every transaction a previous run signed but did not see confirmed."""
        for tx_hash, _nonce, raw in self.journal.pending_txs():
            receipt = _retrying(partial(self.transactor.rpc.call, "eth_getTransactionReceipt", [tx_hash]),
                                what="read a receipt")
            if receipt is None:
                flight = Flight(tx_hash, raw, [])
                try:
                    sent = self.transactor.send_signed(raw)
                except RpcError:
                    sent = None
                if sent is None and self.transactor.network.is_lacnet:
                    # Already held, or refused (its nonce taken, ...): elsewhere the receipt check below
                    # decides. A LACNet relay never knows the hash of the signed bytes, and refused them again
                    # (expired, ...): the chain alone can tell which orders made it
                    self._recheck_orders(tx_hash)
                    continue
                self._follow(flight, sent)
                try:
                    self._settle(flight.tx_hash, self._await_receipt(flight, patience=30))
                    continue
                except (ChainRefused, NodeUnavailable):
                    self._recheck_orders(flight.tx_hash)
                    continue
            try:  # on LACNet a status-1 receipt may still carry the relay's refusal
                self._settle(tx_hash, self.transactor.read_receipt(tx_hash, receipt, action="register a batch"))
            except ChainRefused:
                self._recheck_orders(tx_hash)
        self.transactor.resync_nonce()

    def _settle(self, tx_hash: str, receipt: Receipt) -> None:
        self.journal.confirmed(tx_hash, receipt)

    def _recheck_orders(self, tx_hash: str) -> None:
        """A transaction that will never be mined: each of its orders is confirmed if the chain has it,
        otherwise ready again."""
        keys = self.journal.keys_of(tx_hash)
        self.journal.dropped(tx_hash)
        for key in keys:
            row = self.journal.get(key)
            if row is None:
                continue
            state = _retrying(partial(self.registry.state, int(row["token_id"], 16)), what="read an order")
            if state.registered and state.document_hash.hex() == row["sha256"]:
                self.journal.confirm_elsewhere(key, None, None)

    # -- the pipeline ---------------------------------------------------------------------------------

    def run(self, rows: Iterator[Row]) -> Summary:
        self.reconcile()
        pool: Executor = (ProcessPoolExecutor(self.workers, initializer=_start_worker, initargs=(self.job, True))
                          if self.workers > 1 else
                          ThreadPoolExecutor(1, initializer=_start_worker, initargs=(self.job, False)))
        ahead: deque[Future[list[Prepared]]] = deque()
        chunks = _chunks(rows, max(self.batch_size // max(self.workers, 1), 1))
        try:
            batch: list[Prepared] = []
            exhausted = False
            while True:
                while not exhausted and len(ahead) < 2 * max(self.workers, 1):  # keep the workers busy
                    chunk = next(chunks, None)
                    if chunk is None:
                        exhausted = True
                    else:
                        ahead.append(pool.submit(_prepare_chunk, chunk))
                if not ahead:
                    break
                for item in ahead.popleft().result():
                    ready = self._admit(item)
                    if ready is not None:
                        batch.append(ready)
                    if len(batch) >= self.batch_size:
                        self._send(batch)
                        batch = []
            if batch:
                self._send(batch)
            self._flush_done()
            while self._in_flight or self._retry:
                if self._in_flight:
                    self._confirm_oldest()
                else:
                    self._send_retries()
        finally:
            pool.shutdown(cancel_futures=True)
        return self.summary

    def _admit(self, item: Prepared) -> Prepared | None:
        """Decide what to do with a prepared row: refuse it, report it as done, or queue it."""
        if item.source is not None:
            self.summary.ocds = True
        if item.skipped:
            self._skip(item)
            return None
        if item.error:
            self._refuse(item.number, item.order_number, item.error, item.source)
            return None
        known = self.journal.get(item.key)
        if known is not None:
            if known["sha256"] != item.digest.hex():
                if known["state"] == "ready":
                    self.journal.forget(item.key)
                else:
                    self._refuse(item.number, item.order_number,
                                 f"order {item.order_number!r} of entity {item.entity} was already registered "
                                 f"with another document ({hashlink(bytes.fromhex(known['sha256']))}); "
                                 "to correct it use register --supersedes", item.source)
                    return None
            elif known["state"] == "confirmed":  # a resumed run: one journal transaction per group, not per row
                self._remember_source(item)
                self._done.append((item.key, item.number))
                if len(self._done) >= self.batch_size:
                    self._flush_done()
                return None
            elif known["state"] == "signed":
                self._refuse(item.number, item.order_number,
                             f"order {item.order_number!r} is in transaction {known['tx_hash']}, whose fate the node "
                             "cannot tell yet; run the same command again later", item.source)
                return None
        pending = self._pending.get(item.key)
        if pending is not None:
            if pending[0] == item.digest:
                self.summary.already_registered += 1
                self.emit({"row": item.number, "status": "already_registered", "order_number": item.order_number,
                           "entity_ruc": item.entity, "token_id": token_hex(item.token_id),
                           "duplicate_of_row": pending[1], **(item.source or {})})
                self.progress(1)
            else:
                self._refuse(item.number, item.order_number,
                             f"order {item.order_number!r} appears again (row {pending[1]}) with another document",
                             item.source)
            return None
        previous = self._seen_hashes.get(item.digest)
        if previous is not None and previous != item.key:
            self._refuse(item.number, item.order_number,
                         f"row {item.number} has the same PDF as order {previous} in this manifest", item.source)
            return None
        self._seen_hashes[item.digest] = item.key
        _evict_oldest(self._seen_hashes, 4 * self.batch_size * (self.in_flight_limit + 1))
        self._pending[item.key] = (item.digest, item.number)
        self._remember_source(item)
        # Only the oldest go: they are in the journal by now, which answers for them; the rows of the batch
        # being filled are always among the newest and stay.
        _evict_oldest(self._pending, 4 * self.batch_size * (self.in_flight_limit + 1))
        return item

    def _preflight(self, batch: list[Prepared]) -> tuple[list[Prepared], int]:
        """Drop what the chain would refuse: documents already registered, orders already registered; the
        gas limit for the rest (on LACNet the node's estimate with a margin, elsewhere a bound measured in
        benchmarks/, which spares an estimate's many executions)."""
        topics = ["0x" + p.digest.hex() for p in batch]
        logs = _retrying(lambda: self.registry.rpc.call("eth_getLogs", [{
            "address": self.registry.address, "fromBlock": hex(self.registry.from_block), "toBlock": "latest",
            "topics": [ORDER_REGISTERED, topics]}]), what="look up document hashes")
        taken = {log["topics"][1] for log in logs}
        keep: list[Prepared] = []
        for item in batch:
            if "0x" + item.digest.hex() in taken:
                state = self.registry.state(item.token_id)
                if state.registered and state.document_hash == item.digest:
                    self.journal.add_ready([item])
                    self.journal.confirm_elsewhere(item.key, None, None)
                    self._report(item.key, item.number, already=True)
                else:
                    self._refuse(item.number, item.order_number,
                                 f"document {hashlink(item.digest)} is already registered for another order",
                                 self._sources.pop(item.key, None))
            else:
                keep.append(item)
        while keep:
            data = self.registry.batch_calldata([p.entry for p in keep])
            try:
                if self.transactor.network.is_lacnet:
                    estimate = _retrying(partial(self.transactor.estimate_gas, self.registry.address, data,
                                                 action="register a batch"), what="estimate the batch")
                    return keep, lacnet.user_gas(estimate)
                _retrying(partial(self.transactor.simulate, self.registry.address, data, action="register a batch"),
                          what="simulate the batch")
                return keep, 80_000 + 45_000 * len(keep) + 16 * len(data)
            except OrderAlreadyRegistered as exc:
                culprit = next((p for p in keep if p.token_id == exc.token_id), None)
                if culprit is None:
                    raise
                keep.remove(culprit)
                state = self.registry.state(culprit.token_id)
                if state.document_hash == culprit.digest:
                    self.journal.add_ready([culprit])
                    self.journal.confirm_elsewhere(culprit.key, None, None)
                    self._report(culprit.key, culprit.number, already=True)
                else:
                    self._refuse(culprit.number, culprit.order_number, str(exc), self._sources.pop(culprit.key, None))
        return keep, 0

    def _send(self, batch: list[Prepared]) -> None:
        # The documents the workers appended are on disk and indexed before the chain can point at them.
        self.store.commit(p.packed for p in batch if p.packed is not None)
        self._send_retries()
        self._send_checked(batch)

    def _send_retries(self) -> None:
        """Send again, a few blocks after the refusal, the orders the hub did not run."""
        if self._retry and not self._in_flight:
            items, self._retry = self._retry, []
            self.transactor.wait_for_blocks(self._retry_block, 2 ** min(self._retries - 1, 3))
            for start in range(0, len(items), self.batch_size):
                self._send_checked(items[start : start + self.batch_size])

    def _send_checked(self, batch: list[Prepared]) -> None:
        batch, gas = self._preflight(batch)
        if not batch:
            return
        data = self.registry.batch_calldata([p.entry for p in batch])
        for attempt in range(NONCE_RESYNCS + 1):
            nonce = self._next_nonce()
            raw, tx_hash = _retrying(partial(self.transactor.sign, self.registry.address, data, gas, nonce),
                                     what="sign a batch")
            self.journal.signed(tx_hash, self.transactor.address, nonce, raw, batch)
            flight = Flight(tx_hash, raw, batch)
            try:
                self._follow(flight, _retrying(partial(self.transactor.send_signed, raw), what="send a batch"))
                break  # (None: the node already holds these very bytes)
            except RpcError as exc:
                self.journal.dropped(tx_hash)
                refusal = self.transactor.send_refusal(exc, f"register a batch of {len(batch)} orders")
                allowance = isinstance(refusal, lacnet.HubRefused) and refusal.code == lacnet.NOT_ENOUGH_GAS
                if attempt == NONCE_RESYNCS or not (lacnet.is_bad_nonce(exc.message) or allowance):
                    self.transactor.resync_nonce()
                    self._stop_after_refusal(refusal)
                while self._in_flight:  # their nonces come first: settle them, then ask the node again
                    self._confirm_oldest()
                if allowance:
                    self.transactor.wait_for_blocks(None, 2**attempt)
                self.transactor.resync_nonce()
        self._in_flight.append(flight)
        while len(self._in_flight) >= self.in_flight_limit:
            self._confirm_oldest()

    def _next_nonce(self) -> int:
        return _retrying(self.transactor.take_nonce, what="read the nonce")

    def _follow(self, flight: Flight, sent: Any) -> None:
        """The node answered `sent` for `flight`'s bytes: a LACNet relay answers its own transaction's hash."""
        if isinstance(sent, str) and sent.startswith("0x") and sent.lower() != flight.tx_hash.lower():
            self.journal.renamed(flight.tx_hash, sent)
            flight.tx_hash = sent

    def _await_receipt(self, flight: Flight, *, patience: float = 180.0) -> Receipt:
        """The receipt of a journaled transaction, waited for in rounds of 5 s for at most `patience`."""
        return retry(partial(self.transactor.wait, flight.tx_hash, action="register a batch", timeout=5),
                     retry_on=NodeUnavailable, deadline=patience, between=lambda _n, _exc: self._resend_if_lost(flight))

    def _resend_if_lost(self, flight: Flight) -> None:
        """A node that restarted may have lost the transaction from its pool: then the very same signed bytes
        are sent again (same hash, same nonce: it cannot be mined twice)."""
        try:
            if self.transactor.rpc.call("eth_getTransactionByHash", [flight.tx_hash]) is None:
                self._follow(flight, self.transactor.send_signed(flight.raw))
        except NodeUnavailable:
            time.sleep(0.5)
        except RpcError as exc:
            if "nonce" in exc.message.lower() and "low" in exc.message.lower():
                raise ChainRefused(f"transaction {flight.tx_hash} can no longer be mined (its nonce is used)"
                                   ) from None

    def _stop_after_refusal(self, refusal: ChainRefused) -> None:
        """The relay (or the node) refused a transaction: settle what is in flight, put every unconfirmed order
        back to ready, and stop the run with one line."""
        while self._in_flight:
            flight = self._in_flight.popleft()
            try:
                receipt = self._await_receipt(flight, patience=30)
            except (ChainRefused, NodeUnavailable):
                self._recheck_orders(flight.tx_hash)
                continue
            self._settle(flight.tx_hash, receipt)
            self._report_many([(item.key, item.number) for item in flight.batch], already=False)
        self.transactor.resync_nonce()
        refusal.hint = ((refusal.hint + "; ") if refusal.hint else "") + (
            "the unregistered orders stay in the journal, ready: run the same command again")
        raise refusal

    def _confirm_oldest(self) -> None:
        flight = self._in_flight.popleft()
        batch = flight.batch
        try:
            receipt = self._await_receipt(flight)
        except lacnet.HubRefused as refusal:
            self._recheck_orders(flight.tx_hash)
            if refusal.code not in _RETRYABLE or self._retries >= RELAY_RETRIES:
                self._stop_after_refusal(refusal)
            if not self._retry:  # a new round (the later transactions in flight fail with it: BadNonce)
                self._retries += 1
            self._retry_block = refusal.block
            for item in batch:
                row = self.journal.get(item.key)
                if row is not None and row["state"] == "confirmed":
                    self._report(item.key, item.number, already=False)
                else:
                    self._retry.append(item)
            return
        except RelayRefused as refusal:
            self._recheck_orders(flight.tx_hash)
            self._stop_after_refusal(refusal)
            return
        except ChainRefused:
            tx_hash = flight.tx_hash
            self._recheck_orders(tx_hash)
            for item in batch:  # try the others again, one transaction each
                row = self.journal.get(item.key)
                if row is not None and row["state"] == "confirmed":
                    self._report(item.key, item.number, already=False)
                else:
                    self._send_single_retry(item)
            return
        self._retries = 0  # the bound is on refusals in a row
        self._report_many([(item.key, item.number) for item in batch], already=False,
                          settle=(flight.tx_hash, receipt))

    def _send_single_retry(self, item: Prepared) -> None:
        try:
            kept, _gas = self._preflight([item])
            if kept:
                data = self.registry.batch_calldata([item.entry])
                receipt = self.transactor.transact(self.registry.address, data, action="register an order")
                self.journal.add_ready([item])
                self.journal.confirm_elsewhere(item.key, receipt.tx_hash, receipt.block_number)
                self._report(item.key, item.number, already=False)
        except ChainRefused as exc:
            self._refuse(item.number, item.order_number, str(exc), self._sources.pop(item.key, None))


def _evict_oldest(seen: dict[Any, Any], limit: int) -> None:
    """Drop the oldest entries of an insertion-ordered dict until it holds `limit`."""
    while len(seen) > limit:
        del seen[next(iter(seen))]


def _chunks(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
