"""The batch's worker pool starts before the chain is reached when its rows need nothing from it, and asks
for the QR signer (which may reach the chain) only when a row would print a QR: before any worker starts when
stamping, at the first drawn row otherwise. Rows come back in order either way, drawn ones signed."""

from __future__ import annotations

from pathlib import Path

import pytest

from peru_compras import qr
from peru_compras.batch.workers import Preparer, _Job
from peru_compras.hashing import sha256
from peru_compras.manifest import read_manifest
from peru_compras.rows import Row
from peru_compras.signed_qr import QrSigner
from peru_compras.store import LocalStore

from .conftest import REFERENCE
from .test_batch import make_orders, write_jsonl

BASE = "https://oc.example.pe"
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
KEY = bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")  # Anvil's 2nd test key


def _rows(folder: Path, count: int, *, drawn_at: int | None = None) -> list[Row]:
    rows = list(read_manifest(write_jsonl(folder / "manifest.jsonl", make_orders(folder, count))))
    if drawn_at is not None:  # an OCDS row without its PDF: the order is drawn, with its QR printed
        record = {**REFERENCE, "order_number": "OC-DRAWN-1"}
        rows.insert(drawn_at, Row(drawn_at + 1, record, None, render=True))
    return rows


def _job(root: Path, *, stamp: bool) -> _Job:
    return _Job(BASE, stamp, root, None, None, signed=False)


def _packs(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


@pytest.mark.parametrize("workers", [1, 2])
def test_unstamped_rows_never_ask_for_the_signer(tmp_path: Path, workers: int) -> None:
    rows = _rows(tmp_path / "m", 5)

    def signer() -> QrSigner:
        raise AssertionError("the signer was asked for, though no row prints a QR")

    preparer = Preparer(_job(tmp_path / "store", stamp=False), rows, workers=workers, chunk=2, signer=signer)
    try:
        got = [item for chunk in iter(preparer.next, None) for item in chunk]
    finally:
        preparer.close()
    assert [item.number for item in got] == [row.number for row in rows]
    for item, row in zip(got, rows, strict=True):  # hashed as they are
        assert row.pdf is not None and item.error is None and item.digest == sha256(row.pdf.read_bytes())


@pytest.mark.parametrize("workers", [1, 2])
def test_a_drawn_row_waits_for_the_signer_and_is_signed(tmp_path: Path, workers: int) -> None:
    rows = _rows(tmp_path / "m", 5, drawn_at=4)  # chunks of 2: [1 2] [3 4] [drawn 6] [7]... in row order
    read: list[int] = []
    asked: list[list[int]] = []

    def signer() -> QrSigner:
        asked.append(list(read))
        return QrSigner(KEY, 31337, REGISTRY)

    preparer = Preparer(_job(tmp_path / "store", stamp=False), rows, workers=workers, chunk=2, signer=signer)
    got = []
    try:
        while (chunk := preparer.next()) is not None:
            read.extend(item.number for item in chunk)
            got.extend(chunk)
    finally:
        preparer.close()
    assert [item.number for item in got] == [row.number for row in rows]
    assert asked == [[1, 2, 3, 4]]  # once, when the chunks prepared without it were read
    store = LocalStore(tmp_path / "store", BASE)
    store.commit(item.packed for item in got if item.packed is not None)
    drawn = next(item for item in got if item.order_number == "OC-DRAWN-1")
    document = store.get(drawn.digest)
    assert document is not None
    (printed,) = qr.decode_page(document, 1)
    assert printed.startswith(drawn.verify_url + "#")  # the signed QR, not the plain verify URL


def test_stamping_asks_for_the_signer_before_any_worker_starts(tmp_path: Path) -> None:
    rows = _rows(tmp_path / "m", 3)
    store_root = tmp_path / "store"
    packs_when_asked: list[list[Path]] = []

    def signer() -> QrSigner:
        packs_when_asked.append(_packs(store_root))
        return QrSigner(KEY, 31337, REGISTRY)

    preparer = Preparer(_job(store_root, stamp=True), rows, workers=2, chunk=2, signer=signer)
    try:
        preparer.top_up()
        assert packs_when_asked == [[]]  # asked first, when nothing had been prepared
        got = [item for chunk in iter(preparer.next, None) for item in chunk]
    finally:
        preparer.close()
    assert len(packs_when_asked) == 1 and [item.number for item in got] == [1, 2, 3]
    assert all(item.error is None and item.verify_url for item in got)


def test_a_chunk_is_on_disk_when_its_worker_hands_it_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The workers flush their packs (and a new pack's folder entry) at the end of each chunk: the batch
    process's commit then writes only the index, and nothing it indexes is only in the page cache."""
    import os

    from peru_compras.batch import workers

    synced: list[str] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real_fsync(fd)))
    rows = _rows(tmp_path / "m", 3)
    store_root = tmp_path / "store"
    workers._start_worker(_Job(BASE, False, store_root, None, None), False)
    got = workers._prepare_chunk(rows)
    packs = sorted({item.packed.pack for item in got if item.packed is not None and item.packed.pack})
    assert len(packs) == 1
    assert synced == [str(store_root / "packs" / packs[0]), str(store_root / "packs")]
    synced.clear()
    store = LocalStore(store_root, BASE)
    store.commit((item.packed for item in got if item.packed is not None), synced=True)
    assert not [path for path in synced if "/packs" in path]  # the index only
    assert all(store.get(item.digest) == row.pdf.read_bytes() for item, row in zip(got, rows, strict=True)
               if row.pdf is not None)


def test_workers_forked_early_take_the_job_with_each_chunk(tmp_path: Path) -> None:
    """register-batch forks its workers before its command line is parsed (launch.py): a Preparer whose job
    has no signer takes those, not a pool of its own, and they prepare the rows with the job each chunk brings."""
    from peru_compras.batch import workers

    rows = _rows(tmp_path / "m", 5)
    workers.start_early(2)
    early = workers._EARLY[0][1]
    preparer = Preparer(_job(tmp_path / "store", stamp=False), rows, workers=2, chunk=2, signer=lambda: None)
    try:
        got = [item for chunk in iter(preparer.next, None) for item in chunk]
        assert preparer._pool is early and not workers._EARLY  # taken, once
    finally:
        preparer.close()
    assert [item.number for item in got] == [1, 2, 3, 4, 5]
    for item, row in zip(got, rows, strict=True):
        assert row.pdf is not None and item.error is None and item.digest == sha256(row.pdf.read_bytes())
        assert item.verify_url.startswith(BASE + "/")  # the job's base URL reached the workers


@pytest.mark.parametrize("case", ["signer", "one worker"])
def test_early_workers_are_stopped_where_the_job_cannot_travel_to_them(tmp_path: Path, case: str) -> None:
    """A job with a QR signer (its key never goes through a pipe) or another number of workers gets its own
    pool; the early one is shut down, not left running."""
    from peru_compras.batch import workers

    rows = _rows(tmp_path / "m", 3)
    workers.start_early(2)
    early = workers._EARLY[0][1]
    stamp = case == "signer"
    preparer = Preparer(_job(tmp_path / "store", stamp=stamp), rows, workers=2 if stamp else 1, chunk=2,
                        signer=lambda: QrSigner(KEY, 31337, REGISTRY))
    try:
        got = [item for chunk in iter(preparer.next, None) for item in chunk]
        assert preparer._pool is not early and not workers._EARLY
        with pytest.raises(RuntimeError):  # shut down
            early.submit(int)
    finally:
        preparer.close()
    assert [item.number for item in got] == [1, 2, 3] and all(item.error is None for item in got)


@pytest.mark.parametrize(("args", "forks"), [
    (["register-batch", "m.jsonl", "--no-stamp"], True),
    (["--home", "h", "register-batch", "m.jsonl", "--json"], True),
    (["register-batch", "m.jsonl", "--dry-run"], False),
    (["register-batch", "--help"], False),
    (["register", "o.json", "o.pdf"], False),
    (["verify", "register-batch.pdf"], False),
])
def test_only_a_batch_that_registers_forks_its_workers_before_parsing(args: list[str], forks: bool) -> None:
    from peru_compras.launch import wants_workers

    assert wants_workers(args) is forks


def test_next_keeps_the_batch_process_busy_while_the_chunk_is_not_ready(tmp_path: Path) -> None:
    """`idle` (the registrar settles a mined transaction) runs while the next chunk is not ready, again as long
    as it did some work, and never once the chunk is there."""
    import threading
    from concurrent.futures import Future

    from peru_compras.batch.workers import Prepared

    preparer = Preparer(_job(tmp_path / "store", stamp=False), [], workers=1, chunk=1, signer=lambda: None)
    chunk = [Prepared(1)]
    pending: Future[list[Prepared]] = Future()
    preparer._ahead.append(pending)
    calls: list[int] = []

    def busy() -> bool:
        calls.append(len(calls))
        if len(calls) == 3:
            pending.set_result(chunk)
        return True
    assert preparer.next(idle=busy) is chunk and calls == [0, 1, 2]

    later: Future[list[Prepared]] = Future()
    preparer._ahead.append(later)
    calls.clear()
    threading.Timer(0.2, later.set_result, [chunk]).start()
    assert preparer.next(idle=lambda: calls.append(0) or False) is chunk and calls == [0]  # nothing to do: waits

    ready: Future[list[Prepared]] = Future()
    ready.set_result(chunk)
    preparer._ahead.append(ready)
    assert preparer.next(idle=lambda: calls.append(1) or True) is chunk and calls == [0]  # ready: not called
