"""The document store: loose files (one order at a time) and packs (batches), both read by `get`."""

from __future__ import annotations

import hashlib
import multiprocessing
import sqlite3
import time
from pathlib import Path

from peru_compras.store import LocalStore, Packed

BASE = "https://oc.example.pe"


def docs(count: int, size: int = 3000) -> list[bytes]:
    return [b"%PDF-1.7\n" + bytes([index % 251]) * size + b"\n%%EOF %d\n" % index for index in range(count)]


def test_packed_documents_are_served_only_once_committed(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "documents", BASE)
    writer = store.pack_writer()
    documents = docs(5)
    packed = [writer.add(data) for data in documents]
    assert all(p.pack is not None for p in packed)
    assert len({p.pack for p in packed}) == 1  # one file for all five, not one per document
    assert store.get(packed[0].digest) is None  # appended but not committed: not served
    store.commit(packed)
    reader = LocalStore(tmp_path / "documents", BASE)  # another process (the page) sees the same
    for data, item in zip(documents, packed, strict=True):
        assert item.digest == hashlib.sha256(data).digest()
        assert reader.get(item.digest) == data
        assert reader.has(item.digest)
    assert list((tmp_path / "documents").glob("??/*.pdf")) == []
    assert reader.get(hashlib.sha256(b"never stored").digest()) is None


def test_a_document_the_store_has_is_not_appended_again(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "documents", BASE)
    loose, packed_once = docs(2)
    store.put(loose)
    writer = store.pack_writer()
    first = writer.add(packed_once)
    store.commit([first])
    assert writer.add(loose) == Packed(hashlib.sha256(loose).digest())
    assert writer.add(packed_once) == Packed(first.digest)  # a resumed batch re-prepares its rows
    assert store.put(packed_once) == first.digest  # `register` of a packed document: no loose copy
    assert not store.path(first.digest).exists()
    assert (tmp_path / "documents" / "packs" / str(first.pack)).stat().st_size == 44 + len(packed_once)


def test_reindex_rebuilds_the_index_and_ignores_a_torn_tail(tmp_path: Path) -> None:
    root = tmp_path / "documents"
    store = LocalStore(root, BASE)
    writer = store.pack_writer()
    documents = docs(4)
    packed = [writer.add(data) for data in documents]
    store.commit(packed)
    writer.close()
    pack = root / "packs" / str(packed[0].pack)
    torn = writer.add(b"%PDF-1.7 cut short by a crash")  # a new pack: the old writer was closed
    with open(root / "packs" / str(torn.pack), "r+b") as handle:
        handle.truncate(60)
    (root / "index.sqlite").unlink()
    for extra in ("index.sqlite-wal", "index.sqlite-shm"):
        (root / extra).unlink(missing_ok=True)
    fresh = LocalStore(root, BASE)
    assert fresh.get(packed[1].digest) is None
    assert fresh.reindex() == 4
    assert [fresh.get(p.digest) for p in packed] == documents
    assert fresh.get(torn.digest) is None
    assert pack.exists()


def test_a_pack_is_closed_at_its_limit(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "documents", BASE)
    writer = store.pack_writer()
    writer.limit = 10_000
    packed = [writer.add(data) for data in docs(10)]
    store.commit(packed)
    packs = {p.pack for p in packed}
    assert len(packs) == 3  # a pack takes records until it holds 10,000 bytes: 4 of ~3 KB, 4, then 2
    assert all(store.get(p.digest) is not None for p in packed)


def test_the_index_lists_where_each_record_starts(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "documents", BASE)
    writer = store.pack_writer()
    packed = [writer.add(data) for data in docs(3)]
    store.commit(packed)
    rows = sqlite3.connect(tmp_path / "documents" / "index.sqlite").execute(
        "SELECT sha256, offset, length FROM documents ORDER BY offset").fetchall()
    assert [(bytes(d), o, n) for d, o, n in rows] == [(p.digest, p.offset, p.length) for p in packed]
    raw = (tmp_path / "documents" / "packs" / str(packed[0].pack)).read_bytes()
    assert raw[:4] == b"PCD1" and raw[4:36] == packed[0].digest


def _poll(root: Path, digest: bytes, until: float) -> None:
    store = LocalStore(root, BASE)
    while time.monotonic() < until and not store.has(digest):
        pass


def test_readers_polling_while_the_index_is_first_created(tmp_path: Path) -> None:
    """Batch workers and the page look documents up while a batch's first commit creates the index: neither
    side may fail with "database is locked" (a reader that also wrote could deadlock with the writer)."""
    context = multiprocessing.get_context("forkserver")  # forked from a clean server: a test run may have threads
    for attempt in range(15):
        root = tmp_path / f"store-{attempt}"
        store = LocalStore(root, BASE)
        writer = store.pack_writer()
        packed = [writer.add(data) for data in docs(3)]
        until = time.monotonic() + 10
        readers = [context.Process(target=_poll, args=(root, packed[-1].digest, until)) for _ in range(2)]
        for reader in readers:
            reader.start()
        store.commit(packed)
        for reader in readers:
            reader.join(timeout=20)
            assert reader.exitcode == 0
        assert all(store.get(p.digest) is not None for p in packed)


def _commit_some(root: Path, which: int) -> None:
    store = LocalStore(root, BASE)
    writer = store.pack_writer()
    store.commit([writer.add(b"%%PDF-1.7 writer %d document %d" % (which, index)) for index in range(5)])


def test_batches_committing_to_a_new_store_at_once(tmp_path: Path) -> None:
    """Two or three batch runs sharing a home, each making the index at once: every commit goes through."""
    context = multiprocessing.get_context("forkserver")  # forked from a clean server: a test run may have threads
    for attempt in range(15):
        root = tmp_path / f"store-{attempt}"
        writers = [context.Process(target=_commit_some, args=(root, which)) for which in range(3)]
        for process in writers:
            process.start()
        for process in writers:
            process.join(timeout=30)
            assert process.exitcode == 0
        rows = sqlite3.connect(root / "index.sqlite").execute("SELECT COUNT(*) FROM documents").fetchone()
        assert rows == (15,)
