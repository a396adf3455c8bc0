"""The main process of a batch: rows to workers, prepared orders through the journal into transactions,
receipts back into one JSON line per order (see :mod:`peru_compras.batch`)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from ..errors import (
    ChainRefused,
    ConfigurationError,
    InvalidInput,
    NodeUnavailable,
    OrderAlreadyRegistered,
    RelayRefused,
    RpcError,
)
from ..hashing import hashlink
from ..journal import Journal
from ..retry import retry
from ..retry import wait_out_node as _retrying
from ..rows import Line, Row
from ..store import LocalStore
from ..urls import token_hex
from .preview import Summary
from .workers import Emit, Prepared, Preparer, _Job, default_workers

if TYPE_CHECKING:
    from ..chain.client import Registry
    from ..chain.transactions import Receipt, Transactor
    from ..workspace import QrFragment, Session

#: how many rounds in a row the orders of transactions the LACNet hub did not run are sent again (the chain
#: modules are imported where used, once the workers run: before, they held the pool back 55 ms)
RELAY_RETRIES = 6

@dataclass
class Flight:
    """A sent transaction awaiting its receipt (`tx_hash` changes if a relay re-sends it under another)."""

    tx_hash: str
    raw: bytes
    batch: list[Prepared]


class BatchRegistrar:
    """Runs one manifest through the journal to the chain, for a :class:`~peru_compras.workspace.Session`
    whose store is a :class:`~peru_compras.store.LocalStore` (workers append to its packs). `qr_fragment`
    (default: the session's ``qr_signer``) signs each order's QR; it reaches the workers through the pool's
    initializer only."""

    def __init__(self, session: Session, *, batch_size: int = 100, stamp: bool = True, in_flight: int = 4,
                 workers: int | None = None, emit: Emit, progress: Callable[[int], None] | None = None,
                 qr_fragment: QrFragment | None = None) -> None:
        if not 1 <= batch_size <= 500:
            raise InvalidInput(f"--batch-size {batch_size} is out of range", hint="use 1 to 500 orders per transaction")
        store = session.store
        if not isinstance(store, LocalStore):
            raise ConfigurationError("register-batch keeps its documents in a local store (packs)",
                                     hint="give the Session a LocalStore (the default)")
        self.ws, self.store = session, store
        settings = session.settings
        self.job = _Job(session.base_url, stamp, store.root,
                        (settings.max_pdf_bytes, settings.max_pdf_pages, settings.max_pdf_decoded_bytes),
                        qr_fragment, signed=qr_fragment is not None)
        # set by _connect, at the start of run (the workers start first when they need nothing from the chain)
        self.registry: Registry
        self.transactor: Transactor
        self.journal: Journal
        self._committer: ThreadPoolExecutor | None = None  # the store's index commits, beside the node's look-ups
        self._preparer: Preparer | None = None  # set by start (or run)
        self.batch_size, self.stamp, self.in_flight_limit = batch_size, stamp, in_flight
        self.workers = workers if workers is not None else default_workers()
        self.emit, self.progress = emit, progress or (lambda n: None)
        self.summary = Summary()
        self._in_flight: deque[Flight] = deque()
        self._seen_hashes: dict[bytes, str] = {}
        self._pending: dict[str, tuple[bytes, int]] = {}
        self._sources: dict[str, dict[str, Any]] = {}  # OCDS rows: where each order came from
        self._done: list[tuple[str, int | None]] = []  # confirmed by an earlier run: reported in groups
        self._retry: list[Prepared] = []  # orders of transactions the LACNet hub did not run: sent again
        self._retries: int = 0
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

    def _report_many(self, items: list[tuple[str, int | None]], *, already: bool,
                     settle: tuple[str, Receipt] | None = None) -> None:
        """One JSON line per order, read back from the journal; marked reported in one transaction, which
        first records `settle`'s receipt (a transaction and its orders confirmed) if given."""
        with self.journal.settling():
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
                    # Already held, or refused (its nonce taken, ...): elsewhere the receipt check below decides.
                    # A LACNet relay never knows the signed bytes' hash, and refused them again: ask the chain
                    self._recheck_orders(tx_hash)
                    continue
                self._follow(flight, sent)
                try:
                    self.journal.confirmed(flight.tx_hash, self._await_receipt(flight, patience=30))
                except (ChainRefused, NodeUnavailable):
                    self._recheck_orders(flight.tx_hash)
                continue
            try:  # on LACNet a status-1 receipt may still carry the relay's refusal
                read = self.transactor.read_receipt(tx_hash, receipt, action="register a batch")
                self.journal.confirmed(tx_hash, read)
            except ChainRefused:
                self._recheck_orders(tx_hash)
        self.transactor.resync_nonce()

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

    def _connect(self) -> None:
        """Reach the node and the registry (one that cannot be reached is said at once) and open the journal."""
        self.registry = self.ws.registry(write=True)
        self.transactor = self.ws.transactor
        self.journal = Journal(self.ws.settings.home / "journal.sqlite", self.registry.address)

    def start(self, rows: Iterable[Row | Line]) -> Preparer:
        """Start preparing `rows`: the workers fork and take their first chunks while the caller finishes its
        set-up (the CLI loads its progress bar meanwhile); :meth:`run` goes on with them, :meth:`close` stops them."""
        if self._preparer is None:
            self._preparer = Preparer(self.job, rows, workers=self.workers, signer=self.ws.qr_signer,
                                      chunk=max(self.batch_size // max(self.workers, 1), 1))
        self._preparer.top_up()
        return self._preparer

    def close(self) -> None:
        if self._preparer is not None:
            self._preparer.close()
            self._preparer = None

    def run(self, rows: Iterable[Row | Line] = ()) -> Summary:
        """Register `rows` (or those given to :meth:`start`); the summary. The workers start before the chain is
        reached and the journal reconciled (preparing touches neither), unless they need the QR signer first."""
        preparer = self.start(rows)  # (started already: `rows` is not read)
        try:
            self._connect()
            self.reconcile()
            batch: list[Prepared] = []
            while (prepared := preparer.next(idle=self._confirm_if_mined)) is not None:
                # the chunk's journal rows in one query (one a row: 20 ms a 2,000-order run); after a send, one a row
                known: dict[str, Any] | None = self.journal.get_many([p.key for p in prepared if p.key])
                for item in prepared:
                    ready = self._admit(item, known)
                    if ready is not None:
                        batch.append(ready)
                    if len(batch) >= self.batch_size:
                        self._send(batch)
                        batch, known = [], None
            if batch:
                self._send(batch)
            self._flush_done()
            while self._in_flight or self._retry:
                if self._in_flight:
                    self._confirm_oldest()
                else:
                    self._send_retries()
            self.journal.flush()
        finally:
            self.close()
            if self._committer is not None:
                self._committer.shutdown()
        return self.summary

    def _admit(self, item: Prepared, known_rows: dict[str, Any] | None = None) -> Prepared | None:
        """Refuse a prepared row, report it as done, or queue it. `known_rows`: the journal's rows by key, read
        since it last changed (None: ask it)."""
        if item.source is not None:
            self.summary.ocds = True
        if item.skipped:
            self._skip(item)
            return None
        if item.error:
            self._refuse(item.number, item.order_number, item.error, item.source)
            return None
        known = self.journal.get(item.key) if known_rows is None else known_rows.get(item.key)
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
        # Only the oldest go: the journal answers for them by now; the batch being filled is among the newest.
        _evict_oldest(self._pending, 4 * self.batch_size * (self.in_flight_limit + 1))
        return item

    def _preflight(self, batch: list[Prepared]) -> tuple[list[Prepared], int]:
        """Drop what the chain would refuse: documents already registered, orders already registered; the
        gas limit for the rest (on LACNet the node's estimate with a margin, elsewhere a bound measured in
        benchmarks/, which spares an estimate's many executions)."""
        from ..chain import lacnet
        from ..chain.client import ORDER_REGISTERED

        topics = ["0x" + p.digest.hex() for p in batch]
        logs = _retrying(lambda: self.registry.rpc.call("eth_getLogs", [{
            "address": self.registry.address, "fromBlock": hex(self.registry.from_block), "toBlock": "latest",
            "topics": [ORDER_REGISTERED, topics]}]), what="look up document hashes")
        taken = {log["topics"][1] for log in logs}
        keep: list[Prepared] = []
        for item in batch:
            if "0x" + item.digest.hex() in taken:
                self._on_chain(item, f"document {hashlink(item.digest)} is already registered for another order")
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
                self._on_chain(culprit, str(exc))
        return keep, 0

    def _on_chain(self, item: Prepared, refusal: str) -> None:
        """The chain has `item`'s order or document already: confirmed if with this very document, else refused."""
        state = self.registry.state(item.token_id)
        if state.registered and state.document_hash == item.digest:
            self.journal.add_ready([item])
            self.journal.confirm_elsewhere(item.key, None, None)
            self._report_many([(item.key, item.number)], already=True)
        else:
            self._refuse(item.number, item.order_number, refusal, self._sources.pop(item.key, None))

    def _send(self, batch: list[Prepared]) -> None:
        # The documents the workers appended (and flushed) are indexed before the chain can point at them: the
        # index's commit (an fsync, ~8 ms) runs beside the node's look-ups, and is waited for before signing.
        self._committer = self._committer or ThreadPoolExecutor(1, thread_name_prefix="store-commit")
        indexed = self._committer.submit(self.store.commit, [p.packed for p in batch if p.packed], synced=True)
        self._send_retries()
        self._send_checked(batch, indexed)

    def _send_retries(self) -> None:
        """Send again, a few blocks after the refusal, the orders the hub did not run."""
        if self._retry and not self._in_flight:
            items, self._retry = self._retry, []
            self.transactor.wait_for_blocks(self._retry_block, 2 ** min(self._retries - 1, 3))
            for start in range(0, len(items), self.batch_size):
                self._send_checked(items[start : start + self.batch_size])

    def _send_checked(self, batch: list[Prepared], indexed: Future[None] | None = None) -> None:
        try:
            batch, gas = self._preflight(batch)
        finally:  # its documents are served from here on (a failed commit stops the run, unless one did)
            failed = indexed.exception() if indexed is not None else None
        if failed is not None:
            raise failed
        if not batch:
            return
        from ..chain import lacnet
        from ..chain.transactions import NONCE_RESYNCS

        data = self.registry.batch_calldata([p.entry for p in batch])
        for attempt in range(NONCE_RESYNCS + 1):
            nonce = _retrying(self.transactor.take_nonce, what="read the nonce")
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
        """After a refusal (relay or node): settle what is in flight, unconfirmed orders back to ready, stop."""
        while self._in_flight:
            flight = self._in_flight.popleft()
            try:
                receipt = self._await_receipt(flight, patience=30)
            except (ChainRefused, NodeUnavailable):
                self._recheck_orders(flight.tx_hash)
                continue
            self.journal.confirmed(flight.tx_hash, receipt)
            self._report_many([(item.key, item.number) for item in flight.batch], already=False)
        self.transactor.resync_nonce()
        refusal.hint = ((refusal.hint + "; ") if refusal.hint else "") + (
            "the unregistered orders stay in the journal, ready: run the same command again")
        raise refusal

    def _confirm_if_mined(self) -> bool:
        """While the workers prepare, settle the oldest transaction in flight if its receipt is there (one look-up,
        no wait): not all confirmations are left for the run's end, when a core idles. Whether it did."""
        mined = self.transactor.mined(self._in_flight[0].tx_hash) if self._in_flight else None
        if mined is not None:  # (None: not yet, or the node did not answer: the wait for it later says why)
            self._confirm_oldest(mined)
        return mined is not None

    def _confirm_oldest(self, mined: dict[str, Any] | None = None) -> None:
        """Settle the oldest transaction in flight, waiting for its receipt unless `mined` is it."""
        from ..chain import lacnet

        flight = self._in_flight.popleft()
        batch = flight.batch
        try:
            receipt = (self._await_receipt(flight) if mined is None else
                       self.transactor.read_receipt(flight.tx_hash, mined, action="register a batch"))
        except lacnet.HubRefused as refusal:
            self._recheck_orders(flight.tx_hash)
            if refusal.code not in (lacnet.NOT_ENOUGH_GAS, lacnet.BAD_NONCE) or self._retries >= RELAY_RETRIES:
                self._stop_after_refusal(refusal)
            if not self._retry:  # a new round (the later transactions in flight fail with it: BadNonce)
                self._retries += 1
            self._retry_block = refusal.block
            self._each_unconfirmed(batch, self._retry.append)
            return
        except RelayRefused as refusal:
            self._recheck_orders(flight.tx_hash)
            self._stop_after_refusal(refusal)
            return
        except ChainRefused:
            self._recheck_orders(flight.tx_hash)
            self._each_unconfirmed(batch, self._send_single_retry)  # the others again, one transaction each
            return
        self._retries = 0  # the bound is on refusals in a row
        self._report_many([(item.key, item.number) for item in batch], already=False,
                          settle=(flight.tx_hash, receipt))

    def _each_unconfirmed(self, batch: list[Prepared], then: Callable[[Prepared], None]) -> None:
        """Report the orders of `batch` the journal has confirmed (another transaction had them); `then` the rest."""
        for item in batch:
            row = self.journal.get(item.key)
            if row is not None and row["state"] == "confirmed":
                self._report_many([(item.key, item.number)], already=False)
            else:
                then(item)

    def _send_single_retry(self, item: Prepared) -> None:
        try:
            kept, _gas = self._preflight([item])
            if kept:
                data = self.registry.batch_calldata([item.entry])
                receipt = self.transactor.transact(self.registry.address, data, action="register an order")
                self.journal.add_ready([item])
                self.journal.confirm_elsewhere(item.key, receipt.tx_hash, receipt.block_number)
                self._report_many([(item.key, item.number)], already=False)
        except ChainRefused as exc:
            self._refuse(item.number, item.order_number, str(exc), self._sources.pop(item.key, None))


def _evict_oldest(seen: dict[Any, Any], limit: int) -> None:
    """Drop the oldest entries of an insertion-ordered dict until it holds `limit`."""
    while len(seen) > limit:
        del seen[next(iter(seen))]
