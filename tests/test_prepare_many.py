"""service.prepare_many and the batch workers' prepare_rows run each step over all their orders before the
next one (for the processor's caches). They must answer, order by order, exactly what the one-at-a-time path
answers, refusals included, let one order's refusal stop no other, and leave no PDF open."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from peru_compras import service
from peru_compras.batch import workers
from peru_compras.errors import ConfigurationError
from peru_compras.hashing import sha256
from peru_compras.order import Order, parse_order
from peru_compras.pdf import CheckedPdf, open_checked
from peru_compras.rows import Row
from peru_compras.store import LocalStore

from . import pdfs

#: 26 characters: with the longest order number (40) the verify URL is 81 characters, over the QR's 80
BASE = "https://ordenes.example.pe"
LONG_NUMBER = "OC-" + "9" * 37


def _order(number: str, **changes: Any) -> Order:
    return parse_order({**pdfs.record(number), **changes})


def _open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def _answer(outcome: service.Prepared | Exception) -> tuple[Any, ...]:
    """What a caller sees of one order's outcome."""
    if isinstance(outcome, Exception):
        return type(outcome).__name__, str(outcome)
    return (outcome.order.key, outcome.document, outcome.sha256, outcome.verify_url, outcome.qr_text,
            outcome.warnings)


def _one_by_one(order: Order, document: bytes | None, name: str, **options: Any) -> tuple[Any, ...]:
    try:
        return _answer(service.prepare(order, document, base_url=BASE, name=name, **options))
    except Exception as exc:  # noqa: BLE001 — compared with what prepare_many answers for it
        return _answer(exc)


@pytest.fixture(scope="module")
def documents() -> dict[str, bytes]:
    good = pdfs.order_pdf(pdfs.record("OC-1"))
    return {"good": good, "other": pdfs.order_pdf(pdfs.record("OC-2")), "not_pdf": pdfs.not_a_pdf(good),
            "active": pdfs.active(good, "open_action_javascript"), "linked": pdfs.with_link(good, "https://evil.example")}


@pytest.mark.parametrize("stamp", [True, False], ids=["stamped", "as_given"])
def test_each_order_gets_what_prepare_alone_gives_it(documents: dict[str, bytes], stamp: bool) -> None:
    items: list[tuple[Order, bytes | None, str]] = [
        (_order("OC-1"), documents["good"], "good.pdf"),
        (_order("OC-2"), documents["not_pdf"], "not.pdf"),
        (_order("OC-3"), None, "document"),  # drawn
        (_order("OC-4"), documents["active"], "active.pdf"),
        (_order(LONG_NUMBER), documents["other"], "long.pdf"),  # its verify URL is over 80 characters
        (_order("OC-6", total={"amount": "1.00", "currency": "PEN"}), documents["other"], "total.pdf"),  # warned
        (_order("OC-7"), documents["linked"], "linked.pdf"),
        (_order("OC-8"), documents["other"], "other.pdf"),
    ]
    together = service.prepare_many(items, base_url=BASE, stamp=stamp)
    alone = [_one_by_one(order, document, name, stamp=stamp) for order, document, name in items]
    assert [_answer(outcome) for outcome in together] == alone
    kinds = [type(outcome).__name__ for outcome in together]
    assert kinds == ["Prepared", "InvalidDocument", "Prepared", "InvalidDocument", "ConfigurationError", "Prepared",
                     "InvalidDocument", "Prepared"]
    warned = together[5]
    assert isinstance(warned, service.Prepared) and "differs from the items' sum" in warned.warnings[0]
    stamped = together[0]
    assert isinstance(stamped, service.Prepared)
    assert (stamped.document != documents["good"]) is stamp  # stamped: a new PDF; as given: the very bytes


def test_a_checked_pdf_is_used_up_whether_refused_or_not(documents: dict[str, bytes]) -> None:
    before = _open_files()
    kept = open_checked(documents["good"], name="kept.pdf")
    refused = open_checked(documents["other"], name="refused.pdf")  # refused before it is read: the URL's length
    outcomes = service.prepare_many([(_order("OC-1"), kept, "kept.pdf"), (_order(LONG_NUMBER), refused, "refused.pdf")],
                                    base_url=BASE, stamp=False)
    assert isinstance(outcomes[0], service.Prepared) and outcomes[0].document == documents["good"]
    assert isinstance(outcomes[1], ConfigurationError)
    for checked in (kept, refused):
        with pytest.raises(ValueError, match="closed"):
            checked.pdf  # noqa: B018 — closed
    assert _open_files() == before


def test_what_no_rule_foresaw_refuses_its_order_only(documents: dict[str, bytes],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from peru_compras.pdf import checks

    real = checks.check_registrable

    def breaks_on_b(document: CheckedPdf, url: str, **options: Any) -> None:
        if options["name"] == "b.pdf":
            raise ValueError("a library's surprise")
        real(document, url, **options)

    monkeypatch.setattr(checks, "check_registrable", breaks_on_b)
    outcomes = service.prepare_many([(_order(f"OC-{n}"), documents["good"], name)
                                     for n, name in enumerate(["a.pdf", "b.pdf", "c.pdf"])], base_url=BASE, stamp=False)
    assert [type(outcome).__name__ for outcome in outcomes] == ["Prepared", "ValueError", "Prepared"]
    with pytest.raises(ValueError, match="surprise"):  # alone, it is raised as before
        service.prepare(_order("OC-2"), documents["good"], base_url=BASE, stamp=False, name="b.pdf")


def test_anything_else_stops_the_call_and_closes_every_pdf(documents: dict[str, bytes],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from peru_compras.pdf import checks

    def disk_gone(*_: Any, **__: Any) -> None:
        raise OSError("the disk went away")

    monkeypatch.setattr(checks, "check_registrable", disk_gone)
    before = _open_files()
    given = [open_checked(documents["good"], name=f"{n}.pdf") for n in range(3)]
    with pytest.raises(OSError, match="went away"):
        service.prepare_many([(_order(f"OC-{n}"), checked, f"{n}.pdf") for n, checked in enumerate(given)],
                             base_url=BASE, stamp=False)
    assert _open_files() == before


# -- the batch's workers -----------------------------------------------------------------------------------


def _rows(folder: Path, documents: dict[str, bytes]) -> list[Row]:
    folder.mkdir()
    files = {"good": "a.pdf", "other": "b.pdf", "not_pdf": "c.pdf", "active": "d.pdf"}
    for kind, name in files.items():
        (folder / name).write_bytes(documents[kind])
    record = pdfs.record
    return [
        Row(1, record("OC-1"), folder / "a.pdf"),
        Row(2, None, None, "line 2 is not a JSON object"),
        Row(3, record("OC-3"), folder / "c.pdf"),  # not a PDF
        Row(4, record("OC-4"), folder / "missing.pdf"),
        Row(5, {**record("OC-5"), "issued_on": "yesterday"}, folder / "b.pdf"),  # a record the rules refuse
        Row(6, record("OC-6"), None, render=True),  # drawn
        Row(7, record("OC-7"), folder / "d.pdf"),  # active content
        Row(8, {"ocid": "ocds-x-1"}, None, "release ocds-x-1 has no contract", skipped=True,
            source={"ocid": "ocds-x-1"}),
        Row(9, record(LONG_NUMBER), folder / "b.pdf"),  # verify URL too long
        Row(10, record("OC-10"), folder / "b.pdf"),
        Row(11, {**record("OC-11"), "items": "many"}, folder / "a.pdf"),  # items that are not a list
    ]


def _seen(prepared: workers.Prepared) -> tuple[Any, ...]:
    return (prepared.number, prepared.key, prepared.order_number, prepared.entity, prepared.token_id,
            prepared.digest, prepared.entry, prepared.verify_url, prepared.document_url, prepared.error,
            prepared.skipped, prepared.source, prepared.packed is not None)


@pytest.mark.parametrize("stamp", [True, False], ids=["stamped", "as_given"])
def test_a_chunk_is_what_its_rows_alone_would_be(tmp_path: Path, documents: dict[str, bytes], stamp: bool) -> None:
    rows = _rows(tmp_path / "pdfs", documents)
    before = _open_files()
    together = workers.prepare_rows(rows, BASE, stamp, tmp_path / "store-a")
    alone = [workers.prepare(row, BASE, stamp, tmp_path / "store-b") for row in rows]
    assert [_seen(p) for p in together] == [_seen(p) for p in alone]
    assert [p.number for p in together] == [row.number for row in rows]  # in the rows' order
    refused = {p.number: p.error for p in together if p.error}
    assert sorted(refused) == [2, 3, 4, 5, 7, 8, 9, 11]
    assert "not a PDF" in str(refused[3]) and "active content" in str(refused[7]) and "80" in str(refused[9])
    assert together[7].skipped and together[7].source == {"ocid": "ocds-x-1"}
    assert _open_files() <= before + 2  # the two pack writers' files, nothing of the PDFs
    workers._writer(tmp_path / "store-a", BASE).sync()
    store = LocalStore(tmp_path / "store-a", BASE)
    store.commit([p.packed for p in together if p.packed is not None], synced=True)
    for prepared in together:
        if prepared.packed is not None:  # what was appended to the pack is what the entry names
            assert sha256(store.get(prepared.digest) or b"") == prepared.digest == prepared.entry[:32]
    assert (store.get(together[9].digest) == documents["other"]) is not stamp


def test_a_chunk_holds_at_most_group_bytes_of_pdf_at_once(tmp_path: Path, documents: dict[str, bytes],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [row for row in _rows(tmp_path / "pdfs", documents) if row.number in (1, 6, 9, 10, 3)]
    calls: list[int] = []
    real = service.prepare_many

    def counted(items: list[tuple[Order, Any, str]], **options: Any) -> list[Any]:
        calls.append(sum(document is not None for _, document, _ in items))
        return real(items, **options)

    monkeypatch.setattr(service, "prepare_many", counted)
    whole = workers.prepare_rows(rows, BASE, False, tmp_path / "store-a")
    assert calls == [3]  # one group: 1, 6 (drawn), 9, 10 (3 is refused when read)
    calls.clear()
    monkeypatch.setattr(workers, "GROUP_BYTES", 1)  # each PDF fills a group
    grouped = workers.prepare_rows(rows, BASE, False, tmp_path / "store-b")
    assert calls == [1, 1, 1]  # 1; (3, refused when read); 6 (drawn) and 9; 10
    assert [_seen(p) for p in grouped] == [_seen(p) for p in whole]


def test_a_worker_answers_errors_as_lines_not_objects(tmp_path: Path, documents: dict[str, bytes]) -> None:
    for prepared in workers.prepare_rows(_rows(tmp_path / "pdfs", documents), BASE, False, tmp_path / "store"):
        assert prepared.error is None or ("\n" not in prepared.error and "object at 0x" not in prepared.error)
        assert prepared.error is None or prepared.skipped or prepared.number == 2 or prepared.order_number


def test_a_chunk_stopped_while_reading_leaves_no_pdf_open(tmp_path: Path, documents: dict[str, bytes],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from peru_compras.pdf import checked

    rows = [row for row in _rows(tmp_path / "pdfs", documents) if row.number in (1, 10)]
    rows.append(Row(12, pdfs.record("OC-12"), rows[0].pdf))
    real, seen = checked._Run.paged, []

    def fails_third(run: Any, item: Any) -> None:  # every PDF is open by now; two have been paged
        seen.append(item)
        if len(seen) == 3:
            raise OSError("the share went away")
        real(run, item)

    monkeypatch.setattr(checked._Run, "paged", fails_third)
    before = _open_files()
    with pytest.raises(OSError, match="went away"):
        workers.prepare_rows(rows, BASE, False, tmp_path / "store")
    assert len(seen) == 3 and _open_files() == before
    assert [item.pdf for item in seen] == [None, None, None]  # closed, not left to the collector


def test_many_files_read_as_each_alone(tmp_path: Path, documents: dict[str, bytes]) -> None:
    from peru_compras.pdf import Limits, read_checked, read_checked_many

    (tmp_path / "folder.pdf").mkdir()
    for kind in ("good", "not_pdf", "active", "other"):
        (tmp_path / f"{kind}.pdf").write_bytes(documents[kind])
    (tmp_path / "damaged.pdf").write_bytes(pdfs.damaged_xref(documents["good"]))
    (tmp_path / "locked.pdf").write_bytes(pdfs.password_protected(documents["good"]))
    (tmp_path / "big.pdf").write_bytes(documents["good"] + b"\n" * 10)
    names = ["good", "missing", "folder", "not_pdf", "damaged", "locked", "active", "big", "other"]
    paths = [tmp_path / f"{name}.pdf" for name in names]
    limits = Limits(max_bytes=len(documents["good"]) + 5)

    def seen(outcome: CheckedPdf | Exception) -> tuple[Any, ...]:
        if isinstance(outcome, Exception):
            return type(outcome).__name__, str(outcome)
        with outcome:
            return outcome.name, outcome.data, outcome.pages, dict(outcome.decoded)

    alone = []
    for path in paths:
        try:
            alone.append(seen(read_checked(path, limits=limits)))
        except Exception as exc:  # noqa: BLE001 — compared with read_checked_many's answer
            alone.append(seen(exc))
    before = _open_files()
    together = [seen(outcome) for outcome in read_checked_many(paths, limits=limits)]
    assert together == alone and _open_files() == before
    assert [answer[0] for answer in together] == [
        str(paths[0]), "InvalidDocument", "InvalidDocument", "InvalidDocument", "InvalidDocument", "InvalidDocument",
        str(paths[6]), "InvalidDocument", str(paths[8])]  # active content is check_registrable's to refuse
    assert "over the" in together[7][1] and "folder" in together[2][1] and "password" in together[5][1]
    kept = [outcome for outcome in read_checked_many(paths, limits=limits, keep_total=0) if
            not isinstance(outcome, Exception)]
    assert [dict(checked.decoded) for checked in kept] == [{}, {}, {}]  # nothing kept: check_registrable decodes
    assert together[0][3] and together[8][3]  # by default each keeps its decoded page contents
    first = sum(map(len, together[0][3].values()))
    shared = [outcome for outcome in read_checked_many(paths, limits=limits, keep_total=first)
              if not isinstance(outcome, Exception)]
    assert [bool(checked.decoded) for checked in shared] == [True, False, False]  # the first used it all up
    kept += shared
    for checked in kept:
        checked.close()


def test_lines_a_worker_reads_itself_prepare_as_rows_read_before(tmp_path: Path, documents: dict[str, bytes]) -> None:
    import json

    from peru_compras.manifest import read_lines, read_manifest
    from peru_compras.rows import Line

    folder = tmp_path / "pdfs"
    folder.mkdir()
    (folder / "a.pdf").write_bytes(documents["good"])
    (folder / "c.pdf").write_bytes(documents["not_pdf"])
    lines = [json.dumps({**pdfs.record("OC-1"), "pdf": "a.pdf"}, ensure_ascii=False), "{not json",
             json.dumps({**pdfs.record("OC-3"), "pdf": "c.pdf"}),
             json.dumps({**pdfs.record("OC-4"), "pdf": "../x.pdf"}), json.dumps(pdfs.record("OC-5"))]
    manifest = folder / "m.jsonl"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    unread = list(read_lines(manifest))
    assert all(isinstance(line, Line) for line in unread)
    from_lines = workers.prepare_rows(unread, BASE, False, tmp_path / "store-a")
    from_rows = workers.prepare_rows(list(read_manifest(manifest)), BASE, False, tmp_path / "store-b")
    assert [_seen(p) for p in from_lines] == [_seen(p) for p in from_rows]
    assert [p.error is None for p in from_lines] == [True, False, False, False, False]
