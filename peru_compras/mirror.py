"""A copy of the whole registry in SQLite, from chain data alone, brought up to date on every run.

What is read: the registry's logs (``eth_getLogs`` over block ranges, every event of the contract), the
registering transactions' calldata (``eth_getTransactionByHash``; the record travels only there, through a
plain transaction, LACNet's relay hub or the ERC-2771 hub, decoded as :meth:`Registry.read` does), the
blocks' times and the registry's ``documentBaseURI``. Nothing comes from the page or the document store.

Tables (sqlite-utils conventions; the schema is in :mod:`.mirror_schema`): ``orders`` (one row per token:
every record field, status, registrar, block, time, transaction), ``items``, ``parties`` (entities, buyers,
suppliers by identifier), ``status_changes`` (annulments with their reason, supersessions), ``registrars``
(every role grant and revocation), full-text search on names and descriptions, and ``mirror``, one row:
the chain, the registry and the cursor (the last block mirrored and its hash).

Each block range is written in one SQLite transaction together with the cursor, so a run killed at any
moment (``kill -9``) leaves the file as it was after the last range; the next run goes on from there,
nothing lost and nothing twice. A node that refuses a range (a JSON-RPC error, an answer over the size
limit, a time-out while the node still answers) gets half the range, down to one block; the range grows
again while answers stay small. A changed hash at the cursor block (a reorganisation below the mirror) is
one clear error: the file is never patched over it.

Speed: the next range is read from the node while the current one is decoded (:mod:`.mirror_rows`) and
written; rows go in with one prepared statement per table and the full-text index is filled once per range
(benchmarks/mirror.py).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from .chain.client import (
    ORDER_ANNULLED,
    ORDER_REGISTERED,
    ORDER_SUPERSEDED,
    ROLE_GRANTED,
    ROLE_REVOKED,
    TRANSFER,
    Registry,
    annul_reason,
    order_entries,
)
from .chain.contract import ROLE_NAMES
from .chain.rpc import RpcError, host_of
from .errors import ChainRefused, InvalidInput, InvalidNodeAnswer, NodeUnavailable
from .hashing import keccak256
from .mirror_rows import Job, registration
from .mirror_rows import address as _address
from .mirror_schema import (
    CHANGE_COLUMNS,
    FORMAT,
    ITEM_COLUMNS,
    ORDER_COLUMNS,
    ROLE_COLUMNS,
    Database,
    create_schema,
    index_new_rows,
    insert,
    last_rowids,
    open_database,
    refresh_summaries,
)
from .urls import token_hex

#: the first block range asked for, and the bounds it moves between
FIRST_SPAN = 100
MAX_SPAN = 100_000
#: logs per answer the range is sized for (a registration is two logs)
TARGET_LOGS = 20_000
_ZERO_WORD = "0x" + "0" * 64
_WORDS = re.compile(r"0x[0-9a-f]{64}(?:,0x[0-9a-f]{64})*")  # 32-byte words, comma-separated
_DATA = re.compile(r"0x(?:[0-9a-fA-F]{2})*")
_ROLE_OF = {"0x" + value.hex(): name for name, value in ROLE_NAMES.items()}

Progress = Callable[[int, int, int], None]  # (blocks done, blocks in all, orders added)


@dataclass(frozen=True, slots=True)
class MirrorSummary:
    """What a run did: `orders` in the file now, up to `block`; `added` by this run."""

    file: str
    chain_id: int
    registry: str
    orders: int
    block: int
    added: int
    status_changes: int
    unreadable: int

    def to_json(self) -> dict[str, Any]:
        return {"orders": self.orders, "block": self.block, "added": self.added,
                "status_changes": self.status_changes, "unreadable": self.unreadable, "file": self.file,
                "chain_id": self.chain_id, "registry": self.registry}


@lru_cache(maxsize=65_536)  # one block time for every log of the block
def _iso(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Refused(Exception):
    """The node would not answer this block range (the caller halves it)."""


@dataclass(frozen=True, slots=True)
class _Range:
    """What was read for one block range."""

    logs: list[dict[str, Any]]
    blocks: dict[int, tuple[str, int]]  # number -> (hash, time)
    records: dict[str, dict[int, bytes]]  # registering transaction -> token id -> entry


class Mirror:
    """Mirror `registry` into the SQLite file at `path` (created on the first run)."""

    def __init__(self, registry: Registry, path: Path, *, max_blocks: int = MAX_SPAN,
                 progress: Progress | None = None) -> None:
        if not 1 <= max_blocks <= MAX_SPAN:
            raise InvalidInput(f"--max-blocks {max_blocks} is out of range",
                               hint=f"give 1 to {MAX_SPAN} blocks per eth_getLogs request")
        self.registry = registry
        self.rpc = registry.rpc
        self.path = path
        self.max_span = max_blocks
        self.span = min(FIRST_SPAN, max_blocks)
        self.progress = progress
        self.unreadable = 0
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="mirror-read")  # a Mirror runs once

    # -- the run ---------------------------------------------------------------------------------------

    def run(self, *, to_block: int | None = None) -> MirrorSummary:
        """Bring the file up to `to_block` (default: the node's latest block)."""
        chain_id = self.rpc.hex_int(self.rpc.call("eth_chainId"), "eth_chainId")
        self.registry.check_deployed()
        head = self.rpc.hex_int(self.rpc.call("eth_blockNumber"), "eth_blockNumber")
        end = head if to_block is None else min(to_block, head)
        db = open_database(self.path)
        try:
            state = self._state(db, chain_id)
            base = self.registry.document_base_uri()
            with db.atomic():
                if state["document_base_uri"] != base:  # changed since the last run: every store URL follows
                    db.execute("UPDATE orders SET published_url = ? || document_hashlink "
                               "WHERE document_url IS NULL", [base])
                    db.execute("UPDATE mirror SET document_base_uri = ? WHERE id = 1", [base])
            self.base = base
            cursor = int(state["last_block"])
            self._check_cursor(cursor, state["last_block_hash"])
            first = cursor
            added = changes = 0
            ahead: tuple[tuple[int, int], Future[_Range]] | None = None  # the next range, read while one is written
            while cursor < end:
                last = min(end, cursor + self.span)
                try:
                    fetched = self._take(ahead, cursor + 1, last)
                    ahead = None
                except _Refused as exc:
                    ahead = None
                    if last == cursor + 1:
                        raise ChainRefused(f"the node at {host_of(self.rpc.url)} refuses eth_getLogs even for "
                                           f"block {last} alone ({exc})",
                                           hint="use another node (an archive node without a log limit)") from None
                    self.span = max(1, (last - cursor) // 2)
                    continue
                logs = fetched.logs
                # size the next range for about TARGET_LOGS logs, growing at most fourfold at a time
                wanted = (last - cursor) * TARGET_LOGS // len(logs) if logs else self.span * 4
                self.span = max(1, min(self.max_span, self.span * 4, wanted))
                if last < end:  # the node answers the next range while this one is decoded and written
                    upcoming = (last + 1, min(end, last + self.span))
                    ahead = (upcoming, self._reader.submit(self._read_range, *upcoming))
                done = self._write(db, cursor, last, fetched)
                added += done[0]
                changes += done[1]
                cursor = last
                if self.progress:
                    self.progress(cursor - first, end - first, added)
            if self.progress:
                self.progress(max(end - first, 0), max(end - first, 0), added)
            total = int(db.execute("SELECT count(*) FROM orders").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            raise InvalidInput(f"cannot write the mirror {str(self.path)!r}: {exc}",
                               hint="is another mirror run writing it? wait for it, or use another --out") from None
        finally:
            db.close()
            self._reader.shutdown(wait=True, cancel_futures=True)
        return MirrorSummary(str(self.path), chain_id, self.registry.address, total, cursor, added, changes,
                             self.unreadable)

    def _state(self, db: Database, chain_id: int) -> dict[str, Any]:
        """The file's one `mirror` row, made on the first run; a file of another chain or registry is refused."""
        if "mirror" not in db.table_names():
            if db.table_names():
                raise InvalidInput(f"{str(self.path)!r} is an SQLite file but not a peru-compras mirror",
                                   hint="give a new file name with --out")
            with db.atomic():
                create_schema(db)
                start = self._creation_block()
                db.table("mirror").insert({"id": 1, "format": FORMAT, "chain_id": chain_id,
                                     "registry": self.registry.address, "from_block": start,
                                     "last_block": start - 1, "last_block_hash": None,
                                     "document_base_uri": None, "updated_at": None})
        row = dict(db.table("mirror").get(1))
        if row["format"] != FORMAT:
            raise InvalidInput(f"{str(self.path)!r} is a mirror of format {row['format']!r}, not {FORMAT!r}",
                               hint="build a new one with another --out")
        if int(row["chain_id"]) != chain_id or str(row["registry"]).lower() != self.registry.address.lower():
            raise InvalidInput(f"{str(self.path)!r} mirrors registry {row['registry']} on chain {row['chain_id']}, "
                               f"not {self.registry.address} on chain {chain_id}",
                               hint="give another --out for this registry")
        return row

    def _creation_block(self) -> int:
        """The block the registry was deployed in (the workspace's record, else a binary search on
        ``eth_getCode``; 0 when the node keeps no history)."""
        if self.registry.from_block:
            return self.registry.from_block
        low, high = 0, self.rpc.hex_int(self.rpc.call("eth_blockNumber"), "eth_blockNumber")
        try:
            while low < high:
                middle = (low + high) // 2
                code = self.rpc.call("eth_getCode", [self.registry.address, hex(middle)])
                if code and code != "0x":
                    high = middle
                else:
                    low = middle + 1
        except RpcError:  # a node without the state of old blocks: read its logs from the start
            return 0
        return low

    def _check_cursor(self, cursor: int, expected: str | None) -> None:
        if expected is None or cursor < 0:
            return
        found = self._block(cursor)[0]
        if found != expected:
            raise ChainRefused(f"block {cursor} is now {found}, not {expected} as mirrored: the chain was "
                               "reorganised below the mirror", hint="build the mirror again with a new --out")

    # -- reading the chain -------------------------------------------------------------------------------

    def _block(self, number: int) -> tuple[str, int]:
        """(hash, time) of block `number`."""
        block = self.rpc.call("eth_getBlockByNumber", [hex(number), False])
        digest = self.rpc.data_field(block, "hash", "eth_getBlockByNumber")
        return "0x" + digest.hex(), self.rpc.int_field(block, "timestamp", "eth_getBlockByNumber")

    def _logs(self, start: int, end: int) -> list[dict[str, Any]]:
        """Every log of the registry in blocks `start`..`end`, in chain order (fields checked)."""
        query = {"address": self.registry.address, "fromBlock": hex(start), "toBlock": hex(end)}
        try:
            logs: list[Any] = self.rpc.call("eth_getLogs", [query])
        except RpcError as exc:
            raise _Refused(f"{exc.message} (code {exc.code})") from None
        except InvalidNodeAnswer as exc:
            if "limit" not in exc.message:
                raise
            raise _Refused(exc.message) from None
        except NodeUnavailable as exc:
            self.rpc.call("eth_blockNumber")  # the node is down (NodeUnavailable), or only this range is too much
            raise _Refused(exc.message) from None
        out = []
        me = self.registry.address.lower()
        for log in logs:  # every field read is checked: hashes and topics in one pattern, numbers by int()
            try:
                number, index = int(log["blockNumber"], 16), int(log["logIndex"], 16)
                tx, block, data = log["transactionHash"].lower(), log["blockHash"].lower(), log["data"]
                topics = [topic.lower() for topic in log["topics"]]
                shaped = bool(topics and _WORDS.fullmatch(",".join([tx, block, *topics])) and _DATA.fullmatch(data))
            except (KeyError, TypeError, ValueError, AttributeError):
                shaped = False
            if not shaped:
                raise self.rpc.invalid("eth_getLogs", f"a log that is not one: {str(log)[:80]}")
            if str(log.get("address", "")).lower() != me or log.get("removed") is True or not start <= number <= end:
                raise self.rpc.invalid("eth_getLogs", f"a log of {str(log.get('address'))[:42]} in block {number}, "
                                       f"asked for {me} in blocks {start}-{end}")
            out.append({"block": number, "index": index, "tx": tx, "block_hash": block, "topics": topics,
                        "data": data})
        out.sort(key=lambda entry: (entry["block"], entry["index"]))
        return out

    def _records(self, tx_hash: str) -> dict[int, bytes]:
        """Token id → entry for every order entry in a registering transaction's calldata."""
        tx = self.rpc.call("eth_getTransactionByHash", [tx_hash])
        data = self.rpc.data_field(tx, "input", "eth_getTransactionByHash")
        out = {}
        for entry in order_entries(data):
            if len(entry) > 33:
                out[int.from_bytes(keccak256(entry[33 : 33 + entry[32]]), "big")] = entry
        return out

    # -- writing one range -----------------------------------------------------------------------------

    def _take(self, ahead: tuple[tuple[int, int], Future[_Range]] | None, start: int, end: int) -> _Range:
        """Blocks `start`..`end` as read ahead, or read now (a read ahead of another range is waited for
        first: one request to the node at a time)."""
        if ahead is not None:
            wanted, future = ahead
            if wanted == (start, end):
                return future.result()
            try:
                future.result()
            except Exception:  # noqa: BLE001, S110 — a range not asked for after all: its failure does not count
                pass
        return self._read_range(start, end)

    def _read_range(self, start: int, end: int) -> _Range:
        """What the chain says about blocks `start`..`end`: logs, the blocks' hashes and times, and the
        entries of every registering transaction."""
        logs = self._logs(start, end)
        blocks = {number: self._block(number) for number in sorted({log["block"] for log in logs} | {end})}
        for log in logs:
            if blocks[log["block"]][0] != log["block_hash"]:
                raise ChainRefused(f"block {log['block']} changed while it was read (a reorganisation)",
                                   hint="run the mirror again")
        records: dict[str, dict[int, bytes]] = {}
        for log in logs:
            if log["topics"][0] == TRANSFER and log["tx"] not in records:
                records[log["tx"]] = self._records(log["tx"])
        return _Range(logs, blocks, records)

    def _write(self, db: Database, cursor: int, last: int, fetched: _Range) -> tuple[int, int]:
        """Write the range's rows and the cursor in one transaction; (orders added, status changes)."""
        logs, blocks, records = fetched.logs, fetched.blocks, fetched.records
        registered = {(log["tx"], log["index"]): log for log in logs  # its hash and registrar: topics 1 and 2
                      if log["topics"][0] == ORDER_REGISTERED and len(log["topics"]) == 3}
        jobs: list[Job] = []
        for log in logs:
            topics = log["topics"]
            if topics[0] == TRANSFER and len(topics) == 4 and topics[1] == _ZERO_WORD:
                token = int(topics[3], 16)
                paired = registered.get((log["tx"], log["index"] + 1))
                jobs.append((token, records[log["tx"]].get(token), paired["topics"][1] if paired else None,
                             paired["topics"][2] if paired else None, _iso(blocks[log["block"]][1]),
                             {"block_number": log["block"], "log_index": log["index"], "tx_hash": log["tx"]}))
        orders: dict[str, dict[str, Any]] = {}
        items: list[dict[str, Any]] = []
        parties: dict[str, dict[str, Any]] = {}
        for row, row_items, row_parties in (registration(job, self.base) for job in jobs):
            orders[row["token_id"]] = row
            items += row_items
            parties.update((party["id"], party) for party in row_parties)
            self.unreadable += "record_error" in row
        changes: list[dict[str, Any]] = []
        roles: list[dict[str, Any]] = []
        updates: list[tuple[str, list[Any]]] = []
        for log in logs:
            kind, topics, when = log["topics"][0], log["topics"], _iso(blocks[log["block"]][1])
            where = {"block_number": log["block"], "log_index": log["index"], "tx_hash": log["tx"]}
            if kind == ORDER_ANNULLED and len(topics) == 3:
                # a reason that is not an ABI string is marked unreadable; the change is kept (see annul_reason)
                token_hex_id, reason = token_hex(int(topics[1], 16)), annul_reason(log["data"])
                changes.append({"token_id": token_hex_id, "change": "annulled", "reason": reason,
                                "replaced_by": None, "account": _address(topics[2]), "changed_at": when, **where})
                self._status(orders, updates, token_hex_id, status="annulled", status_changed_at=when,
                             annul_reason=reason)
            elif kind == ORDER_SUPERSEDED and len(topics) == 4:
                old, new = token_hex(int(topics[1], 16)), token_hex(int(topics[2], 16))
                changes.append({"token_id": old, "change": "superseded", "reason": None, "replaced_by": new,
                                "account": _address(topics[3]), "changed_at": when, **where})
                self._status(orders, updates, old, status="superseded", status_changed_at=when, replaced_by=new)
                self._status(orders, updates, new, replaces=old)
            elif kind in (ROLE_GRANTED, ROLE_REVOKED) and len(topics) == 4:
                roles.append({"role": _ROLE_OF.get(topics[1], topics[1]), "account": _address(topics[2]),
                              "action": "granted" if kind == ROLE_GRANTED else "revoked",
                              "sender": _address(topics[3]), "changed_at": when, **where})
        with db.atomic():
            (found,) = db.execute("SELECT last_block FROM mirror WHERE id = 1").fetchone()
            if found != cursor:
                raise InvalidInput(f"another run moved {str(self.path)!r} to block {found} meanwhile",
                                   hint="run one mirror at a time per file")
            before = last_rowids(db)
            db.conn.executemany("INSERT INTO parties (id, scheme, identifier, name) VALUES (?, ?, ?, ?) "
                                "ON CONFLICT (id) DO UPDATE SET name = excluded.name",
                                [(p["id"], p["scheme"], p["identifier"], p["name"]) for p in parties.values()])
            insert(db, "orders", ORDER_COLUMNS, list(orders.values()))
            insert(db, "items", ITEM_COLUMNS, items)
            insert(db, "status_changes", CHANGE_COLUMNS, changes)
            insert(db, "registrars", ROLE_COLUMNS, roles)
            for sql, args in updates:
                db.execute(sql, args)
            index_new_rows(db, before)
            refresh_summaries(db, [*orders, *(change["token_id"] for change in changes)])  # after the updates
            db.execute("UPDATE mirror SET last_block = ?, last_block_hash = ?, updated_at = ? WHERE id = 1",
                       [last, blocks[last][0], _iso(blocks[last][1])])
        return len(orders), len(changes)

    @staticmethod
    def _status(orders: dict[str, dict[str, Any]], updates: list[tuple[str, list[Any]]], token: str,
                **values: Any) -> None:
        """Apply a status change to a row of this range, else to the file's row."""
        if token in orders:
            orders[token].update(values)
        else:
            names = ", ".join(f"{name} = ?" for name in values)
            updates.append((f"UPDATE orders SET {names} WHERE token_id = ?", [*values.values(), token]))


def mirror(registry: Registry, path: Path, *, progress: Progress | None = None, max_blocks: int = MAX_SPAN,
           to_block: int | None = None) -> MirrorSummary:
    """Build or bring up to date the mirror of `registry` at `path` (see the module docstring); `max_blocks`:
    the most blocks one ``eth_getLogs`` asks for (a node's own limit)."""
    return Mirror(registry, path, max_blocks=max_blocks, progress=progress).run(to_block=to_block)
