"""The journal's one transaction kind that does not wait for the disk (a receipt's confirmation and the
"reported" marks, which the chain gives again) runs at synchronous=NORMAL and nothing else does: every other
change waits for the disk (synchronous=FULL), and flush() checkpoints the whole write-ahead log."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from peru_compras.journal import Journal

REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
NORMAL, FULL = 1, 2


def _synchronous(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA synchronous").fetchone()[0])


def test_settling_alone_skips_the_flush_and_commits(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite", REGISTRY)
    assert _synchronous(journal.db) == FULL
    with journal.settling() as db:
        assert _synchronous(db) == NORMAL and db.in_transaction
        db.execute("INSERT INTO txs (tx_hash, registry, sender, nonce, raw, state, orders) "
                   "VALUES ('0x01', ?, '0xabc', 0, x'00', 'confirmed', 0)", (REGISTRY,))
    assert _synchronous(journal.db) == FULL and not journal.db.in_transaction
    other = sqlite3.connect(tmp_path / "journal.sqlite")  # committed: another reader sees it
    assert other.execute("SELECT state FROM txs WHERE tx_hash='0x01'").fetchone() == ("confirmed",)


def test_a_failed_settling_rolls_back_and_restores_full(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite", REGISTRY)
    with pytest.raises(RuntimeError), journal.settling() as db:
        db.execute("INSERT INTO txs (tx_hash, registry, sender, nonce, raw, state, orders) "
                   "VALUES ('0x02', ?, '0xabc', 0, x'00', 'confirmed', 0)", (REGISTRY,))
        raise RuntimeError("a crash in the middle")
    assert _synchronous(journal.db) == FULL
    assert journal.db.execute("SELECT COUNT(*) FROM txs").fetchone()[0] == 0


def test_flush_puts_what_settling_wrote_into_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = Journal(path, REGISTRY)
    with journal.settling() as db:
        db.execute("INSERT INTO txs (tx_hash, registry, sender, nonce, raw, state, orders) "
                   "VALUES ('0x03', ?, '0xabc', 0, x'00', 'confirmed', 0)", (REGISTRY,))

    def in_the_file() -> int:  # the database file alone, its write-ahead log ignored
        reader = sqlite3.connect(f"{path.as_uri()}?immutable=1", uri=True)
        try:
            return int(reader.execute("SELECT COUNT(*) FROM txs").fetchone()[0])
        except sqlite3.OperationalError:  # not even the schema is in the file yet
            return 0
        finally:
            reader.close()

    assert in_the_file() == 0  # only in the log so far
    journal.flush()
    assert in_the_file() == 1
