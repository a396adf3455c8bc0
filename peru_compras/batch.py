"""Batch registration: manifests in, one JSON line per order out, never losing or doubling an order.

Manifests: JSON Lines (one record per line, plus ``pdf``) or CSV (a column per field: ``entity_name``,
``entity_ruc``, ``total_amount``, ``delivery_place``, … or a JSON object in ``entity``; ``items`` as JSON).
Rows are streamed: memory stays bounded whatever the manifest's size. OCDS manifests (release or record
packages, JSON Lines of releases) are read whole and mapped by :mod:`.ocds`: their rows may carry no PDF
(``render``: the order PDF is drawn), or nothing to register (``skipped``: a line with the reason), and a
``source`` (ocid, release, contract or award) that goes on each of their output lines.

The journal (SQLite, ``<home>/journal.sqlite``) is a write-ahead log of each order and transaction:

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

import csv
import io
import os
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from .chain import lacnet
from .chain.client import ORDER_REGISTERED, Registry
from .chain.rpc import RpcError
from .chain.transactions import NONCE_RESYNCS, Receipt, Transactor
from .config import Workspace
from .errors import (
    ChainRefused,
    InvalidInput,
    NodeUnavailable,
    OrderAlreadyRegistered,
    PeruComprasError,
    RelayRefused,
)
from .hashing import hashlink
from .store import LocalStore, Packed, PackWriter

_NESTED = ("entity", "buyer", "supplier", "total", "delivery")
#: how many rounds in a row the orders of transactions the LACNet hub did not run are sent again
RELAY_RETRIES = 6
_RETRYABLE = (lacnet.NOT_ENOUGH_GAS, lacnet.BAD_NONCE)
_INTS = {"delivery.term_days"}
#: a manifest line (one order) at most: the record's own limit is far below
MAX_LINE = 1 << 20

Emit = Callable[[dict[str, Any]], None]


# -- manifests -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    """One manifest row: its number (1-based), the record and the PDF path it names (or why not).

    `render`: no PDF is given, :func:`~peru_compras.render.render_order` draws it. `skipped`: nothing to
    register and nothing wrong (`error` says why). `source`: where an OCDS row came from, put on its lines."""

    number: int
    record: dict[str, Any] | None
    pdf: Path | None
    error: str | None = None
    render: bool = False
    skipped: bool = False
    source: dict[str, Any] | None = None


def _csv_record(row: dict[str, str], number: int) -> dict[str, Any]:
    """A CSV row as a record; InvalidInput naming the row and column when a cell cannot be read."""
    from .safejson import loads

    record: dict[str, Any] = {}
    for column, raw in row.items():
        if column is None or raw is None or raw.strip() == "":
            continue
        name = column.strip()
        value: Any = raw.strip()
        for sep in (".", "_"):
            head, _, tail = name.partition(sep)
            if head in _NESTED and tail:
                if f"{head}.{tail}" in _INTS and value.isascii() and value.isdigit() and len(value) <= 9:
                    value = int(value)  # else the string goes on, and the record's rules name it
                record.setdefault(head, {})[tail] = value
                break
        else:
            if name in ("items", *_NESTED) and value.startswith(("[", "{")):
                value = loads(value, source=f"row {number}, column {name[:40]!r}", max_bytes=1 << 20)
            record[name] = value
    return record


def _csv_rows(handle: io.TextIOBase) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """(row number, record or None, why not): a bad row is reported on its own and the next ones read."""
    reader = csv.DictReader(handle)
    number = 0
    while True:
        number += 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield number, None, f"row {number} is not CSV: {exc}"
            continue
        if _not_utf8("".join(value for value in row.values() if isinstance(value, str))):
            yield number, None, f"row {number} is not UTF-8 text"
            continue
        try:
            yield number, _csv_record(row, number), None
        except InvalidInput as exc:
            yield number, None, exc.message


def _not_utf8(text: str) -> bool:
    """The manifest is read with surrogateescape: a byte that is not UTF-8 shows as a lone surrogate."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def pdf_inside(base: Path, name: str) -> tuple[Path | None, str | None]:
    """The file a manifest's `pdf` names, resolved (symlinks followed) inside `base`; or why not.

    Absolute paths, ``..`` and symlinks leading out of `base` are refused with one message that does not
    depend on whether the target exists, so a manifest cannot probe the machine's other paths."""
    refusal = (f"pdf {name[:80]!r} is not a file inside {str(base)!r}",
               "give each `pdf` relative to the manifest's folder (or --pdf-dir), without '..' or links "
               "that lead out of it")
    try:
        root = base.resolve()
        target = (base / name).resolve() if not Path(name).is_absolute() else None
    except (OSError, ValueError, RuntimeError):
        target = None
    if target is None or not target.is_relative_to(root) or target == root:
        return None, f"{refusal[0]} — {refusal[1]}"
    return target, None


def manifest_kind(path: Path) -> str:
    """``csv``, ``ocds`` (a package, or releases: see :mod:`.ocds`) or ``jsonl``, from the name and first bytes."""
    try:
        with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
            head = handle.read(4096)
    except OSError as exc:
        raise InvalidInput(f"cannot read manifest {str(path)!r}: {exc.strerror}", hint="check the path") from None
    return _kind(path, head)


def _kind(path: Path, head: str) -> str:
    if path.suffix.lower() == ".csv" or (not head.lstrip().startswith(("{", "[")) and "," in head.split("\n")[0]):
        return "csv"
    from .ocds import is_ocds

    return "ocds" if is_ocds(head) else "jsonl"


def read_manifest(path: Path, *, pdf_dir: Path | None = None) -> Iterator[Row]:
    """Stream the rows of a JSON Lines or CSV manifest; an OCDS manifest is mapped by :mod:`.ocds`."""
    try:
        handle = path.open(encoding="utf-8-sig", errors="surrogateescape", newline="")
    except OSError as exc:
        raise InvalidInput(f"cannot read manifest {str(path)!r}: {exc.strerror}", hint="check the path") from None
    base = pdf_dir or path.parent
    with handle:
        head = handle.read(4096)
        handle.seek(0)
        kind = _kind(path, head)
        if kind == "ocds":
            from .ocds import manifest_rows

            for row in manifest_rows(path, pdf_dir=pdf_dir):
                if row.pdf is not None and pdf_dir is not None:  # <pdf-dir>/<order number>.pdf: no links out
                    inside, refusal = pdf_inside(pdf_dir, row.pdf.name)
                    if inside is None:
                        row = Row(row.number, row.record, None, refusal, source=row.source)
                yield row
            return
        rows = _csv_rows(handle) if kind == "csv" else _jsonl(handle)
        for number, record, error in rows:
            if record is None:
                yield Row(number, None, None, error)
                continue
            pdf = record.pop("pdf", None)
            if not isinstance(pdf, str) or not pdf:
                yield Row(number, record, None, "row has no `pdf` (the PDF's path)")
                continue
            inside, refusal = pdf_inside(base, pdf)
            yield Row(number, record, inside, refusal)


def _jsonl(handle: io.TextIOBase) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    from .safejson import loads

    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        if _not_utf8(line):
            yield number, None, f"line {number} is not UTF-8 text"
            continue
        try:
            record = loads(line, source=f"line {number}", max_bytes=MAX_LINE)
        except InvalidInput as exc:
            yield number, None, exc.message
            continue
        if not isinstance(record, dict):
            yield number, None, f"line {number} is not a JSON object"
            continue
        yield number, record, None


def count_rows(path: Path) -> int:
    """Rows in a manifest (for the progress bar's ETA), counted without parsing."""
    with path.open("rb") as handle:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    return max(lines - (1 if path.suffix.lower() == ".csv" else 0), 0)


# -- preparing one order (may run in a worker process) ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prepared:
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


def prepare(row: Row, base_url: str, stamp: bool, store_root: Path) -> Prepared:
    """Validate, (stamp,) hash, append to a pack of the store (not yet committed) and encode one row. Never
    raises: a refusal is `error`. Runs in worker processes, so the document's bytes never travel back."""
    from .order import parse_order
    from .pdf import check_registrable, read_pdf, stamp_pdf

    number_hint = str((row.record or {}).get("order_number", "") or "")
    if row.skipped:
        return Prepared(row.number, error=row.error, skipped=True, source=row.source)
    if row.error or row.record is None or (row.pdf is None and not row.render):
        return Prepared(row.number, order_number=number_hint, error=row.error or "unreadable row", source=row.source)
    try:
        order = parse_order(row.record)  # each line names its row already
        verify_url = base_url + order.verify_path
        if len(verify_url) > 80:
            raise InvalidInput(f"verify URL {verify_url!r} is over 80 characters", hint="use a shorter base URL")
        if row.pdf is None:  # drawn with its QR already printed: nothing to stamp
            from .render import render_order

            document = render_order(order, verify_url=verify_url)
        else:
            document = read_pdf(row.pdf)
            check_registrable(document, verify_url, name=str(row.pdf))  # no active content, no other order's QR
            if stamp:
                document = stamp_pdf(document, verify_url, order=order, name=str(row.pdf))
        packed = _writer(store_root, base_url).add(document)
        digest = packed.digest
        return Prepared(row.number, order.key, order.order_number, order.entity.key, order.token_id, digest,
                        order.encode_entry(digest), verify_url,
                        order.document_url or f"{base_url}/d/{hashlink(digest)}", source=row.source, packed=packed)
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


def _die_with_parent() -> None:
    """Worker initializer: on Linux, ask the kernel to kill this worker when the batch process dies (a crash
    or SIGKILL must not leave workers behind holding its output pipes)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _prepare_chunk(rows: list[Row], base_url: str, stamp: bool, store_root: Path) -> list[Prepared]:
    return [prepare(row, base_url, stamp, store_root) for row in rows]


# -- the journal ---------------------------------------------------------------------------------------

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
        self.db.executescript(_SCHEMA)
        self.registry = registry

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

    def add_ready(self, items: list[Prepared]) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self._insert_ready(items)

    def _insert_ready(self, items: list[Prepared]) -> None:
        self.db.executemany(
                "INSERT OR IGNORE INTO orders (registry, key, token_id, order_number, entity, sha256, entry,"
                " verify_url, document_url, state) VALUES (?,?,?,?,?,?,?,?,?,'ready')",
                [(self.registry, p.key, f"0x{p.token_id:064x}", p.order_number, p.entity, p.digest.hex(), p.entry,
                  p.verify_url, p.document_url) for p in items])

    def signed(self, tx_hash: str, sender: str, nonce: int, raw: bytes, batch: list[Prepared]) -> None:
        """In one transaction: the orders (ready, if new) and the signed transaction that carries them."""
        keys = [p.key for p in batch]
        with self.db:
            self.db.execute("BEGIN")
            self._insert_ready(batch)
            # the same bytes signed again after a refusal (same nonce, same expiration second): one row
            self.db.execute("INSERT INTO txs (tx_hash, registry, sender, nonce, raw, state, orders) "
                            "VALUES (?,?,?,?,?,'signed',?) ON CONFLICT (tx_hash) DO UPDATE SET state='signed', "
                            "orders=excluded.orders WHERE txs.state='dropped'",
                            (tx_hash, self.registry, sender, nonce, raw, len(keys)))
            self.db.executemany("UPDATE orders SET state='signed', tx_hash=? WHERE registry=? AND key=?",
                                [(tx_hash, self.registry, key) for key in keys])

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


def preview(rows: Iterator[Row], *, base_url: str, emit: Emit, progress: Callable[[int], None] | None = None
            ) -> Summary:
    """``--dry-run``: each row's mapped record (or its refusal, or why it is skipped) as one line, checked
    as ``register-batch`` would check it (record rules, verify URL length, the PDF readable) but nothing
    drawn, stamped, stored, journaled or sent."""
    from .order import parse_order
    from .pdf import check_registrable, read_pdf

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
            verify_url = base_url + order.verify_path
            if len(verify_url) > 80:
                raise InvalidInput(f"verify URL {verify_url!r} is over 80 characters", hint="use a shorter base URL")
            if row.pdf is not None:
                check_registrable(read_pdf(row.pdf), verify_url, name=str(row.pdf))
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
              "entity_ruc": order.entity.key, "token_id": f"0x{order.token_id:064x}", "verify_url": verify_url,
              "pdf": str(row.pdf) if row.pdf is not None else None, "render": row.pdf is None,
              "record": order.to_json(), **source})
    return summary


def _retrying(action: Callable[[], Any], *, what: str, patience: float = 60.0) -> Any:
    """Run `action`, waiting out a node that went away (bounded backoff)."""
    deadline = time.monotonic() + patience
    delay = 0.25
    while True:
        try:
            return action()
        except NodeUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 4.0)


class BatchRegistrar:
    """Runs one manifest through the journal to the chain."""

    def __init__(self, ws: Workspace, *, batch_size: int = 100, stamp: bool = True, in_flight: int = 4,
                 workers: int | None = None, emit: Emit, progress: Callable[[int], None] | None = None) -> None:
        if not 1 <= batch_size <= 500:
            raise InvalidInput(f"--batch-size {batch_size} is out of range", hint="use 1 to 500 orders per transaction")
        self.ws = ws
        self.registry: Registry = _retrying(partial(ws.registry, write=True), what="reach the registry")
        self.transactor: Transactor = ws.transactor
        self.journal = Journal(ws.home / "journal.sqlite", self.registry.address)
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
                    sent = self.transactor.rpc.call("eth_sendRawTransaction", ["0x" + raw.hex()], retry=False)
                    self._follow(flight, sent)
                except RpcError:
                    # already known, or its nonce is taken: the receipt check below decides. A LACNet relay
                    # never knows the hash of the signed bytes, and refused them again (expired, ...): the
                    # chain alone can tell which orders made it
                    if self.transactor.network.is_lacnet:
                        self._recheck_orders(tx_hash)
                        continue
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
        base_url, stamp, root = self.ws.settings.base_url, self.stamp, self.ws.store.root
        pool: Executor = (ProcessPoolExecutor(self.workers, initializer=_die_with_parent) if self.workers > 1
                          else ThreadPoolExecutor(1))
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
                        ahead.append(pool.submit(_prepare_chunk, chunk, base_url, stamp, root))
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
                           "entity_ruc": item.entity, "token_id": f"0x{item.token_id:064x}",
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
        self.ws.store.commit(p.packed for p in batch if p.packed is not None)
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
                sent = _retrying(partial(self.transactor.rpc.call, "eth_sendRawTransaction", ["0x" + raw.hex()],
                                         retry=False), what="send a batch")
                self._follow(flight, sent)
                break
            except RpcError as exc:
                if "already known" in exc.message.lower():
                    break
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
        return _retrying(self.transactor.take_nonce, what="read the nonce")  # type: ignore[no-any-return]

    def _follow(self, flight: Flight, sent: Any) -> None:
        """The node answered `sent` for `flight`'s bytes: a LACNet relay answers its own transaction's hash."""
        if isinstance(sent, str) and sent.startswith("0x") and sent.lower() != flight.tx_hash.lower():
            self.journal.renamed(flight.tx_hash, sent)
            flight.tx_hash = sent

    def _await_receipt(self, flight: Flight, *, patience: float = 180.0) -> Receipt:
        """The receipt of a journaled transaction. A node that restarted may have lost it from its pool:
        then the very same signed bytes are sent again (same hash, same nonce: it cannot be mined twice)."""
        deadline = time.monotonic() + patience
        while True:
            try:
                return self.transactor.wait(flight.tx_hash, action="register a batch", timeout=5)
            except NodeUnavailable:
                if time.monotonic() > deadline:
                    raise
            try:
                if self.transactor.rpc.call("eth_getTransactionByHash", [flight.tx_hash]) is None:
                    sent = self.transactor.rpc.call("eth_sendRawTransaction", ["0x" + flight.raw.hex()], retry=False)
                    self._follow(flight, sent)
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
