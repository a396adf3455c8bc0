"""The write-ahead journal of batch registrations (SQLite, ``<home>/journal.sqlite``).

Each order and each transaction of a registry's batches goes through these states:

``ready``      validated, stamped and stored; its on-chain entry kept
``signed``     in a transaction whose raw bytes and nonce are committed *before* it is sent
``confirmed``  the receipt says so (block, gas)

A transaction is ``dropped`` when it can never be mined (its orders go back to ``ready``). Every change is
one SQLite transaction (WAL, ``synchronous=FULL``), so a crash at any instant leaves a state the next run
reconciles with the chain (see :mod:`.batch`). One kind waits for no disk flush (:meth:`Journal.settling`):
a receipt's confirmation and the "reported" marks, which the chain's receipts give again. A crash of the
process loses nothing (the system has the write); a power cut may undo those since the next flushed
transaction (every ``signed`` one, and :meth:`Journal.flush` at the end of a run): the next run then
reads those receipts again and prints those orders' lines again. That spares a 100-order batch one of
its three fsyncs on the batch process's path (~8 ms each on the 2-core machine's disk).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .urls import token_hex

if TYPE_CHECKING:
    from .chain.transactions import Receipt


class Entry(Protocol):
    """What the journal keeps of a prepared order (:class:`peru_compras.batch.Prepared`)."""

    @property
    def key(self) -> str: ...
    @property
    def token_id(self) -> int: ...
    @property
    def order_number(self) -> str: ...
    @property
    def entity(self) -> str: ...
    @property
    def digest(self) -> bytes: ...
    @property
    def entry(self) -> bytes: ...
    @property
    def verify_url(self) -> str: ...
    @property
    def document_url(self) -> str: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    registry TEXT NOT NULL, key TEXT NOT NULL, token_id TEXT NOT NULL, order_number TEXT NOT NULL,
    entity TEXT NOT NULL, sha256 TEXT NOT NULL, entry BLOB NOT NULL, verify_url TEXT, document_url TEXT,
    state TEXT NOT NULL, tx_hash TEXT, block_number INTEGER, gas_used INTEGER, tx_orders INTEGER,
    reported INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (registry, key));
CREATE INDEX IF NOT EXISTS orders_tx ON orders (tx_hash);
CREATE TABLE IF NOT EXISTS txs (
    tx_hash TEXT PRIMARY KEY, registry TEXT NOT NULL, sender TEXT NOT NULL, nonce INTEGER NOT NULL,
    raw BLOB NOT NULL, state TEXT NOT NULL, orders INTEGER NOT NULL, block_number INTEGER, gas_used INTEGER);
"""


class Journal:
    """The write-ahead journal of a registry's batch registrations."""

    def __init__(self, path: Path, registry: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        # statement journals in memory: SQLite made and removed a temporary file for every batch (strace -e openat of
        # a 500-order run: 5 -> 0)
        self.db.execute("PRAGMA temp_store=MEMORY")
        self.db.executescript(_SCHEMA)
        self.registry = registry

    @contextmanager
    def settling(self) -> Iterator[sqlite3.Connection]:
        """One transaction (confirmations, reported marks) committed without waiting for the disk."""
        self.db.execute("PRAGMA synchronous=NORMAL")
        try:
            with self.db:
                self.db.execute("BEGIN")
                yield self.db
        finally:
            self.db.execute("PRAGMA synchronous=FULL")

    def flush(self) -> None:
        """Everything committed so far on disk (the end of a run: what :meth:`settling` wrote included)."""
        self.db.execute("PRAGMA wal_checkpoint(FULL)")

    def get(self, key: str) -> sqlite3.Row | None:
        self.db.row_factory = sqlite3.Row
        row: sqlite3.Row | None = self.db.execute(
            "SELECT * FROM orders WHERE registry=? AND key=?", (self.registry, key)).fetchone()
        return row

    def get_many(self, keys: list[str]) -> dict[str, sqlite3.Row]:
        """The rows of these orders, by key (at most 500 keys: one query)."""
        self.db.row_factory = sqlite3.Row
        marks = ",".join("?" * len(keys))
        rows = self.db.execute(f"SELECT * FROM orders WHERE registry=? AND key IN ({marks})",  # noqa: S608
                               (self.registry, *keys)).fetchall()
        return {row["key"]: row for row in rows}

    def add_ready(self, items: Sequence[Entry]) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self._insert(items)

    def _insert(self, items: Sequence[Entry], tx_hash: str | None = None) -> None:
        """`items` as rows: ready (a row already there is left as it is), or signed in `tx_hash` (a row already
        there is made so). One statement, not an insert and an update: signing a 100-order batch 1.9 -> 1.5 ms
        of CPU (20 batches into a new journal, every other one with 50 of its rows ready already)."""
        self.db.executemany(
            "INSERT INTO orders (registry, key, token_id, order_number, entity, sha256, entry, verify_url, "
            "document_url, state, tx_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (registry, key) DO "
            + ("NOTHING" if tx_hash is None else "UPDATE SET state='signed', tx_hash=excluded.tx_hash"),
            [(self.registry, p.key, token_hex(p.token_id), p.order_number, p.entity, p.digest.hex(), p.entry,
              p.verify_url, p.document_url, "ready" if tx_hash is None else "signed", tx_hash) for p in items])

    def signed(self, tx_hash: str, sender: str, nonce: int, raw: bytes, batch: Sequence[Entry]) -> None:
        """In one transaction: the orders (ready, if new) and the signed transaction that carries them."""
        with self.db:
            self.db.execute("BEGIN")
            self._insert(batch, tx_hash)
            # the same bytes signed again after a refusal (same nonce, same expiration second): one row
            self.db.execute("INSERT INTO txs (tx_hash, registry, sender, nonce, raw, state, orders) "
                            "VALUES (?,?,?,?,?,'signed',?) ON CONFLICT (tx_hash) DO UPDATE SET state='signed', "
                            "orders=excluded.orders WHERE txs.state='dropped'",
                            (tx_hash, self.registry, sender, nonce, raw, len(batch)))

    def confirmed(self, tx_hash: str, receipt: Receipt) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.confirm_in_transaction(tx_hash, receipt)

    def confirm_in_transaction(self, tx_hash: str, receipt: Receipt) -> None:
        """:meth:`confirmed`'s statements, inside a transaction the caller holds."""
        count = self.db.execute("SELECT orders FROM txs WHERE tx_hash=?", (tx_hash,)).fetchone()[0]
        self.db.execute("UPDATE txs SET state='confirmed', block_number=?, gas_used=? WHERE tx_hash=?",
                        (receipt.block_number, receipt.gas_used, tx_hash))
        self.db.execute("UPDATE orders SET state='confirmed', block_number=?, gas_used=?, tx_orders=? "
                        "WHERE tx_hash=? AND state='signed'",
                        (receipt.block_number, receipt.gas_used // max(count, 1), count, tx_hash))

    def renamed(self, old: str, new: str) -> None:
        """The node answered with another hash (a LACNet relay's transaction): use it from now on."""
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("UPDATE txs SET tx_hash=? WHERE tx_hash=?", (new, old))
            self.db.execute("UPDATE orders SET tx_hash=? WHERE tx_hash=?", (new, old))

    def dropped(self, tx_hash: str) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("UPDATE txs SET state='dropped' WHERE tx_hash=?", (tx_hash,))
            self.db.execute("UPDATE orders SET state='ready', tx_hash=NULL WHERE tx_hash=? AND state='signed'",
                            (tx_hash,))

    def confirm_elsewhere(self, key: str, tx_hash: str | None, block: int | None) -> None:
        self.db.execute("UPDATE orders SET state='confirmed', tx_hash=?, block_number=?, tx_orders=NULL "
                        "WHERE registry=? AND key=?", (tx_hash, block, self.registry, key))

    def forget(self, key: str) -> None:
        self.db.execute("DELETE FROM orders WHERE registry=? AND key=? AND state='ready'", (self.registry, key))

    def mark_reported(self, keys: list[str]) -> None:
        self.db.executemany("UPDATE orders SET reported=1 WHERE registry=? AND key=?",
                            [(self.registry, key) for key in keys])

    def pending_txs(self) -> list[tuple[str, int, bytes]]:
        return [(h, n, bytes(r)) for h, n, r in self.db.execute(
            "SELECT tx_hash, nonce, raw FROM txs WHERE registry=? AND state='signed' ORDER BY nonce",
            (self.registry,))]

    def keys_of(self, tx_hash: str) -> list[str]:
        return [k for (k,) in self.db.execute("SELECT key FROM orders WHERE tx_hash=?", (tx_hash,))]

    def max_nonce(self, sender: str) -> int | None:
        value = self.db.execute("SELECT MAX(nonce) FROM txs WHERE sender=? AND state != 'dropped'",
                                (sender,)).fetchone()[0]
        return int(value) if value is not None else None
