"""The mirror's SQLite schema (see :mod:`.mirror`), made with sqlite-utils in one transaction.

Column names are the record's field names (``order_number``, ``issued_on``, ``total_amount`` …); party
columns are ``<role>_id`` (``PE-RUC:20131370998``, a key of ``parties``) and ``<role>_name`` (the name as that
order gives it). Token ids are written ``0x`` + 64 hex digits, times as ISO 8601 UTC. ``audit`` belongs to
:mod:`.audit` and is made by it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils.db import Database

from .errors import InvalidInput

FORMAT = "peru-compras-mirror/1"
_TOKENIZE = "unicode61 remove_diacritics 2"  # "logistica" finds "Logística"

__all__ = ["CHANGE_COLUMNS", "FORMAT", "ITEM_COLUMNS", "ORDER_COLUMNS", "ROLE_COLUMNS", "Database", "create_schema",
           "index_new_rows", "insert", "last_rowids", "open_database", "refresh_summaries"]

_ORDERS: dict[str, type] = {
    "token_id": str, "order_key": str, "order_number": str, "issued_on": str,
    "entity_id": str, "entity_name": str, "buyer_id": str, "buyer_name": str, "supplier_id": str,
    "supplier_name": str, "total_amount": str, "total_value": float, "currency": str, "items_count": int,
    "delivery_place": str, "delivery_term_days": int, "delivery_deadline": str,
    "document_url": str, "document_sha256": str, "document_hashlink": str, "published_url": str,
    "status": str, "status_changed_at": str, "annul_reason": str, "replaced_by": str, "replaces": str,
    "registrar": str, "block_number": int, "log_index": int, "registered_at": str, "tx_hash": str,
    "notes": str, "record_error": str,
}
FTS_COLUMNS = {"orders": ["order_number", "entity_name", "buyer_name", "supplier_name", "delivery_place"],
               "items": ["description"], "parties": ["name", "identifier"]}
#: the columns of the tables each range writes, in the order rows are written
ORDER_COLUMNS = tuple(_ORDERS)
ITEM_COLUMNS = ("token_id", "position", "description", "quantity", "unit", "unit_price", "cubso")
CHANGE_COLUMNS = ("token_id", "change", "reason", "replaced_by", "account", "block_number", "log_index",
                  "changed_at", "tx_hash")
ROLE_COLUMNS = ("role", "account", "action", "sender", "block_number", "log_index", "changed_at", "tx_hash")
_CHANGE: dict[str, type] = {"block_number": int, "log_index": int, "changed_at": str, "tx_hash": str}


def open_database(path: Path, *, hint: str = "give a new file name with --out") -> Database:
    """The SQLite file at `path` (created when missing), in WAL mode so a reader such as Datasette can read
    while a run writes; a file that is not SQLite is one clear InvalidInput."""
    if path.exists() and not path.is_file():
        raise InvalidInput(f"{str(path)!r} is not a file", hint="give the mirror's file name with --out")
    try:
        db = sqlite_utils.Database(path)
        db.execute("PRAGMA busy_timeout = 10000")
        db.enable_wal()
        db.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a killed process loses no committed range
        db.execute("PRAGMA cache_size = -262144")  # 256 MiB: the random-key indexes of 100,000s of orders
        db.table_names()
    except sqlite3.DatabaseError as exc:
        raise InvalidInput(f"{str(path)!r} is not an SQLite file ({exc})", hint=hint) from None
    return db


def create_schema(db: Database) -> None:
    """Every table, index and full-text index of a new mirror (call inside ``db.atomic()``)."""
    db.table("mirror").create({"id": int, "format": str, "chain_id": int, "registry": str, "from_block": int,
                         "last_block": int, "last_block_hash": str, "document_base_uri": str, "updated_at": str},
                        pk="id")
    db.table("parties").create({"id": str, "scheme": str, "identifier": str, "name": str}, pk="id")
    db.table("orders").create(_ORDERS, pk="token_id", not_null={"status", "block_number", "tx_hash"},
                        foreign_keys=[("entity_id", "parties", "id"), ("buyer_id", "parties", "id"),
                                      ("supplier_id", "parties", "id")])
    db.table("items").create({"token_id": str, "position": int, "description": str, "quantity": str, "unit": str,
                              "unit_price": str, "cubso": str}, pk=("token_id", "position"),
                             foreign_keys=[("token_id", "orders", "token_id")])
    db.table("status_changes").create({"token_id": str, "change": str, "reason": str, "replaced_by": str,
                                 "account": str, **_CHANGE}, pk=("block_number", "log_index"),
                                foreign_keys=[("token_id", "orders", "token_id")])
    db.table("registrars").create({"role": str, "account": str, "action": str, "sender": str, **_CHANGE},
                            pk=("block_number", "log_index"))
    # the canned queries' indexes cover their columns: "orders by supplier" and "orders per month" read
    # an index, not the table (benchmarks/mirror.py)
    for table, columns in (("orders", ["entity_id", "status"]),
                           ("orders", ["supplier_id", "currency", "status", "total_value"]),
                           ("orders", ["issued_on", "currency", "total_value"]), ("orders", ["document_sha256"]),
                           ("orders", ["order_number"]), ("orders", ["registered_at"]),
                           ("items", ["cubso"]), ("status_changes", ["token_id"]),
                           ("registrars", ["account"]), ("parties", ["identifier"])):
        db.table(table).create_index(columns)
    db.table("supplier_summary").create({"supplier_id": str, "currency": str, "orders": int, "valid": int,
                                         "annulled": int, "superseded": int, "total_value": float},
                                        pk=("supplier_id", "currency"), foreign_keys=[("supplier_id", "parties", "id")])
    db.table("entity_summary").create({"entity_id": str, "orders": int, "valid": int, "annulled": int,
                                       "superseded": int}, pk="entity_id",
                                      foreign_keys=[("entity_id", "parties", "id")])
    db.table("month_summary").create({"month": str, "currency": str, "orders": int, "total_value": float},
                                     pk=("month", "currency"))
    db.table("supplier_summary").create_index(["orders"])
    db.table("entity_summary").create_index(["annulled"])
    for table, columns in FTS_COLUMNS.items():  # orders and items: filled per range by index_new_rows
        db.table(table).enable_fts(columns, create_triggers=table == "parties", tokenize=_TOKENIZE)


def index_new_rows(db: Database, after: dict[str, int]) -> None:
    """Add the rows of orders and items past rowid `after[table]` to their full-text index (one statement
    per table: per-row triggers cost twice the rest of the insert)."""
    for table in ("orders", "items"):
        columns = ", ".join(FTS_COLUMNS[table])
        db.execute(f"INSERT INTO {table}_fts (rowid, {columns}) SELECT rowid, {columns} FROM {table} WHERE rowid > ?",
                   [after[table]])


def last_rowids(db: Database) -> dict[str, int]:
    return {table: int(db.execute(f"SELECT coalesce(max(rowid), 0) FROM {table}").fetchone()[0])
            for table in ("orders", "items")}


def insert(db: Database, table: str, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """Insert `rows` (dicts; a missing column is NULL) with one prepared statement: sqlite-utils'
    ``insert_all`` rebuilds its SQL per chunk, which cost more than SQLite itself at 100,000 orders."""
    if rows:
        names = ", ".join(f"[{column}]" for column in columns)
        marks = ", ".join("?" * len(columns))
        db.conn.executemany(f"INSERT INTO [{table}] ({names}) VALUES ({marks})",
                            [tuple(row.get(column) for column in columns) for row in rows])


#: (table, the key's expression over orders, the columns it sums): the canned queries' aggregates, kept
#: per key so a question over every order reads a few thousand rows, not every order
_COUNTS = "count(*), sum(status = 'valid'), sum(status = 'annulled'), sum(status = 'superseded')"
_SUMMARIES = (
    ("supplier_summary", "supplier_id", f"supplier_id, currency, {_COUNTS}, sum(total_value)", "supplier_id, currency"),
    ("entity_summary", "entity_id", f"entity_id, {_COUNTS}", "entity_id"),
    ("month_summary", "substr(issued_on, 1, 7)", "substr(issued_on, 1, 7), currency, count(*), sum(total_value)",
     "substr(issued_on, 1, 7), currency"),
)


def refresh_summaries(db: Database, tokens: list[str]) -> None:
    """Recompute the summary rows of every supplier, entity and month that one of `tokens` (orders added or
    changed in this range) belongs to; call inside the range's transaction."""
    if not tokens:
        return
    db.execute("CREATE TEMP TABLE IF NOT EXISTS touched (token_id TEXT PRIMARY KEY)")
    db.execute("DELETE FROM touched")
    db.conn.executemany("INSERT OR IGNORE INTO touched VALUES (?)", [(token,) for token in tokens])
    for table, key, columns, group in _SUMMARIES:
        keys = f"SELECT DISTINCT {key} FROM orders WHERE token_id IN (SELECT token_id FROM touched)"
        column = key if "(" not in key else "month"
        db.execute(f"DELETE FROM {table} WHERE {column} IN ({keys})")
        db.execute(f"INSERT INTO {table} SELECT {columns} FROM orders WHERE {key} IN ({keys}) AND {key} IS NOT NULL "
                   f"GROUP BY {group}")
