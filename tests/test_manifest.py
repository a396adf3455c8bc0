"""Manifests without a chain: which kind a file is, the rows it gives (each bad one named on its own), and the
rule that a row's `pdf` is a file inside the manifest's folder — whatever the name, the links on the way, and
whether the file exists. Fast: this is the file benchmarks/mutation.py runs against manifest.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peru_compras.manifest import MAX_LINE, count_rows, is_ocds, manifest_kind, pdf_inside, read_manifest

REFUSED = ("is not a file inside", "without '..' or links that lead out of it")


def refusal(base: Path, name: str) -> str:
    return (f"pdf {name[:80]!r} is not a file inside {str(base)!r} — give each `pdf` relative to the manifest's "
            "folder (or --pdf-dir), without '..' or links that lead out of it")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "a.pdf").write_bytes(b"%PDF-1.4 a")
    (tmp_path / "m" / "sub").mkdir()
    (tmp_path / "m" / "sub" / "b.pdf").write_bytes(b"%PDF-1.4 b")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.pdf").write_bytes(b"%PDF-1.4 secret")
    return tmp_path / "m"


# -- pdf_inside ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["a.pdf", "sub/b.pdf", "sub/../a.pdf", "./a.pdf", "missing.pdf", "sub/missing.pdf"])
def test_a_name_inside_the_folder_is_that_file(folder: Path, name: str) -> None:
    path, why = pdf_inside(folder, name)
    assert why is None and path == (folder / name).resolve()  # a missing file too: reading it then says so


@pytest.mark.parametrize("name", ["../outside/secret.pdf", "../outside/nothere.pdf", "sub/../../outside/secret.pdf",
                                  "", ".", "sub/..", "a.pdf\x00.txt"])
def test_a_name_that_leaves_the_folder_or_names_no_file_is_refused(folder: Path, name: str) -> None:
    assert pdf_inside(folder, name) == (None, refusal(folder, name))


def test_an_absolute_path_is_refused_even_inside_the_folder(folder: Path) -> None:
    for name in (str(folder / "a.pdf"), "/etc/passwd", "/nothere.pdf"):
        assert pdf_inside(folder, name) == (None, refusal(folder, name))


def test_links_are_followed_and_judged_by_where_they_lead(folder: Path) -> None:
    outside = folder.parent / "outside"
    (folder / "out.pdf").symlink_to(outside / "secret.pdf")
    (folder / "dangling.pdf").symlink_to(outside / "nothere.pdf")
    (folder / "up").symlink_to(outside)
    (folder / "in.pdf").symlink_to(folder / "sub" / "b.pdf")
    (folder / "down").symlink_to(folder / "sub")
    for name in ("out.pdf", "dangling.pdf", "up/secret.pdf", "up/nothere.pdf", "sub/../up/secret.pdf"):
        assert pdf_inside(folder, name) == (None, refusal(folder, name)), name
    assert pdf_inside(folder, "in.pdf") == (folder / "sub" / "b.pdf", None)
    assert pdf_inside(folder, "down/b.pdf") == (folder / "sub" / "b.pdf", None)


def test_the_answer_does_not_tell_whether_a_file_outside_exists(folder: Path) -> None:
    there = pdf_inside(folder, "../outside/secret.pdf")[1]
    not_there = pdf_inside(folder, "../outside/nothere.pdf")[1]
    assert there is not None and not_there is not None
    assert there.replace("secret", "X") == not_there.replace("nothere", "X")


def test_a_long_name_is_shown_cut(folder: Path) -> None:
    name = "../" + "x" * 300
    why = pdf_inside(folder, name)[1]
    assert why is not None and repr(name[:80]) in why and "x" * 81 not in why


def test_the_resolved_root_given_is_the_one_used(folder: Path, tmp_path: Path) -> None:
    """A manifest resolves its folder once; the root passed decides what is inside."""
    other = tmp_path / "outside"
    assert pdf_inside(folder, "a.pdf", root=folder.resolve()) == (folder / "a.pdf", None)
    assert pdf_inside(other, "secret.pdf", root=other.resolve()) == (other / "secret.pdf", None)
    # the name is resolved from `base`, and judged against `root`: the caller's word that it is `base` resolved
    assert pdf_inside(folder, "../outside/secret.pdf", root=other.resolve()) == (other / "secret.pdf", None)
    assert pdf_inside(folder, "../outside/secret.pdf", root=folder.resolve())[0] is None


def test_a_folder_reached_through_a_link_is_still_its_own(tmp_path: Path, folder: Path) -> None:
    (tmp_path / "alias").symlink_to(folder)
    assert pdf_inside(tmp_path / "alias", "a.pdf") == (folder / "a.pdf", None)
    assert pdf_inside(tmp_path / "alias", "../outside/secret.pdf")[0] is None


# -- which kind of manifest -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "text", "kind"), [
    ("m.jsonl", '{"order_number": "OC-1", "pdf": "a.pdf"}\n', "jsonl"),
    ("m.json", '{"order_number": "OC-1"}\n', "jsonl"),
    ("m.CSV", '{"looks": "like json"}\n', "csv"),  # the name decides first
    ("m.txt", "order_number,pdf\nOC-1,a.pdf\n", "csv"),  # a comma in a first line that is not JSON
    ("m.txt", "order_number\nOC-1\n", "jsonl"),  # no comma: read as JSON Lines (each line then says why not)
    ("m.txt", "order_number\nOC-1, a.pdf\n", "jsonl"),  # a comma after the first line does not count
    ("m.json", '{"uri": "x", "releases": [{"ocid": "ocds-1"}]}', "ocds"),
    ("m.json", '{"uri": "x", "records": []}', "ocds"),
    ("m.jsonl", '{"ocid": "ocds-1", "id": "1"}\n', "ocds"),
    ("m.json", '  [\n{"ocid": "ocds-1"}]', "ocds"),
    ("m.jsonl", '{"notes": ["a text that says \\"ocid\\": here"]}\n', "jsonl"),  # inside a string: not a key
    ("m.jsonl", '{"ocids": 1, "releases_x": 2, "record": 3}\n', "jsonl"),
    ("m.jsonl", '{"ocid" : 1}\n', "ocds"),
])
def test_the_kind_comes_from_the_name_then_the_first_bytes(tmp_path: Path, name: str, text: str, kind: str) -> None:
    (tmp_path / name).write_text(text, encoding="utf-8")
    assert manifest_kind(tmp_path / name) == kind


def test_only_the_first_4096_characters_are_sniffed(tmp_path: Path) -> None:
    late = json.dumps({"padding": "x" * 5000, "ocid": "ocds-1"})
    (tmp_path / "m.jsonl").write_text(late + "\n", encoding="utf-8")
    assert manifest_kind(tmp_path / "m.jsonl") == "jsonl"
    assert is_ocds('{"ocid":1}') and not is_ocds('{"ocid"1}') and not is_ocds('{\\"ocid\\": 1}')


def test_an_unreadable_manifest_is_named(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="cannot read manifest") as caught:
        manifest_kind(tmp_path / "none.jsonl")
    assert str(tmp_path / "none.jsonl") in str(caught.value)
    with pytest.raises(Exception, match="cannot read manifest"):
        list(read_manifest(tmp_path / "none.jsonl"))


# -- rows ---------------------------------------------------------------------------------------------------

def test_json_lines_give_one_row_a_line_each_bad_one_named(folder: Path) -> None:
    lines = [
        json.dumps({"order_number": "OC-1", "pdf": "a.pdf"}),
        "",
        "   ",
        "{not json",
        "[1, 2]",
        json.dumps({"order_number": "OC-5"}),
        json.dumps({"order_number": "OC-6", "pdf": ""}),
        json.dumps({"order_number": "OC-7", "pdf": 7}),
        json.dumps({"order_number": "OC-8", "pdf": "../outside/secret.pdf"}),
        json.dumps({"order_number": "OC-9", "pdf": "sub/b.pdf", "a": 1, "a ": 2}),
    ]
    manifest = folder / "m.jsonl"
    manifest.write_bytes(("\n".join(lines) + "\n").encode() + b'{"order_number": "OC-\xff", "pdf": "a.pdf"}\n')
    rows = list(read_manifest(manifest))
    assert [row.number for row in rows] == [1, 4, 5, 6, 7, 8, 9, 10, 11]
    first = rows[0]
    assert first.record == {"order_number": "OC-1"} and first.pdf == folder / "a.pdf" and first.error is None
    assert rows[1].record is None and rows[1].error is not None and rows[1].error.startswith("line 4: not valid JSON")
    assert (rows[2].record, rows[2].error) == (None, "line 5 is not a JSON object")
    for row in rows[3:6]:  # no usable pdf: the record is kept, for the row's line
        assert row.record is not None and row.pdf is None and row.error == "row has no `pdf` (the PDF's path)"
    assert rows[6].pdf is None and rows[6].error == refusal(folder, "../outside/secret.pdf")
    assert rows[7].record == {"order_number": "OC-9", "a": 1, "a ": 2} and rows[7].pdf == folder / "sub" / "b.pdf"
    assert (rows[8].record, rows[8].error) == (None, "line 11 is not UTF-8 text")


def test_a_repeated_key_or_an_overlong_line_is_its_rows_error(folder: Path) -> None:
    manifest = folder / "m.jsonl"
    manifest.write_text('{"pdf": "a.pdf", "pdf": "../outside/secret.pdf"}\n'
                        + json.dumps({"pdf": "a.pdf", "x": "y" * MAX_LINE}) + "\n"
                        + json.dumps({"order_number": "OC-3", "pdf": "a.pdf"}) + "\n", encoding="utf-8")
    rows = list(read_manifest(manifest))
    assert rows[0].record is None and rows[0].error is not None and "appears twice" in rows[0].error
    assert rows[1].record is None and rows[1].error is not None and str(MAX_LINE) in rows[1].error
    assert rows[2].record == {"order_number": "OC-3"} and rows[2].error is None


def test_a_byte_order_mark_is_not_part_of_the_first_row(folder: Path) -> None:
    manifest = folder / "m.jsonl"
    manifest.write_bytes(b"\xef\xbb\xbf" + json.dumps({"order_number": "OC-1", "pdf": "a.pdf"}).encode() + b"\n")
    (row,) = read_manifest(manifest)
    assert row.error is None and row.record == {"order_number": "OC-1"}


def test_pdf_dir_is_where_the_names_are_looked_for(folder: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "elsewhere.jsonl"
    manifest.write_text(json.dumps({"order_number": "OC-1", "pdf": "b.pdf"}) + "\n"
                        + json.dumps({"order_number": "OC-2", "pdf": "../a.pdf"}) + "\n", encoding="utf-8")
    first, second = read_manifest(manifest, pdf_dir=folder / "sub")
    assert first.pdf == folder / "sub" / "b.pdf" and first.error is None
    assert second.pdf is None and second.error == refusal(folder / "sub", "../a.pdf")


def test_csv_columns_become_the_record(folder: Path) -> None:
    manifest = folder / "m.csv"
    manifest.write_text(
        "order_number,entity_name,entity.ruc,delivery_term_days,delivery.place,items,total_amount,pdf, blank\n"
        'OC-1,Hospital,20131370998,15,Piura,"[{""description"": ""x""}]",10.5,a.pdf,\n'
        "OC-2,Hospital,20131370998,15 días,Piura,,1,sub/b.pdf,\n"
        'OC-3,Hospital,,,,"[{""broken"",",1,a.pdf,\n'
        "OC-4,Hospital,,,,,1,../outside/secret.pdf,\n", encoding="utf-8")
    rows = list(read_manifest(manifest))
    assert rows[0].record == {"order_number": "OC-1", "entity": {"name": "Hospital", "ruc": "20131370998"},
                              "delivery": {"term_days": 15, "place": "Piura"}, "items": [{"description": "x"}],
                              "total": {"amount": "10.5"}}
    assert rows[0].pdf == folder / "a.pdf" and rows[0].number == 1
    assert rows[1].record is not None and rows[1].record["delivery"]["term_days"] == "15 días"  # the rules name it
    assert rows[2].record is None and rows[2].error is not None and rows[2].error.startswith("row 3, column 'items'")
    assert rows[3].pdf is None and rows[3].error == refusal(folder, "../outside/secret.pdf")
    assert count_rows(manifest) == 4


def test_count_rows_counts_lines_without_reading_them(tmp_path: Path) -> None:
    (tmp_path / "m.jsonl").write_bytes(b"{}\n" * 2500 + b"not json\n")
    assert count_rows(tmp_path / "m.jsonl") == 2501
    (tmp_path / "big.jsonl").write_bytes(b"x" * (3 << 20) + b"\n" + b"{}\n" * 3)  # past one read's megabyte
    assert count_rows(tmp_path / "big.jsonl") == 4
    (tmp_path / "h.csv").write_bytes(b"a,b\n")
    assert count_rows(tmp_path / "h.csv") == 0
    (tmp_path / "e.csv").write_bytes(b"")
    assert count_rows(tmp_path / "e.csv") == 0


def test_csv_cells_beyond_or_short_of_the_header_and_numbers_that_stay_text(folder: Path) -> None:
    manifest = folder / "m.csv"
    manifest.write_text(
        "order_number,delivery.term_days,entity,notes,pdf\n"
        "OC-1,123456789,{\"name\": \"Hospital\"},[not parsed],a.pdf,extra,cells\n"  # more cells than columns
        "OC-2,1234567890,Hospital\n"  # fewer: the missing ones are left out
        "OC-3,١٥,,,a.pdf\n", encoding="utf-8")  # Arabic-Indic digits: not a number here
    first, second, third = read_manifest(manifest)
    assert first.error is None and first.record == {
        "order_number": "OC-1", "delivery": {"term_days": 123456789}, "entity": {"name": "Hospital"},
        "notes": "[not parsed]"}
    assert second.record == {"order_number": "OC-2", "delivery": {"term_days": "1234567890"}, "entity": "Hospital"}
    assert second.error == "row has no `pdf` (the PDF's path)"
    assert third.record == {"order_number": "OC-3", "delivery": {"term_days": "١٥"}}


def test_a_csv_row_that_cannot_be_read_does_not_stop_the_next(folder: Path) -> None:
    manifest = folder / "m.csv"
    manifest.write_bytes(b"order_number,pdf\n"
                         + b"OC-1,\"" + b"x" * 200_000 + b"\"\n"  # over the csv module's field limit
                         + b"OC-\xff,a.pdf\n"
                         + b"OC-3,a.pdf\n")
    rows = list(read_manifest(manifest))
    assert rows[0].record is None and rows[0].error is not None and rows[0].error.startswith("row 1 is not CSV")
    assert (rows[1].record, rows[1].error) == (None, "row 2 is not UTF-8 text")
    assert rows[2].record == {"order_number": "OC-3"} and rows[2].pdf == folder / "a.pdf"


def test_a_line_that_is_not_utf8_does_not_stop_the_next(folder: Path) -> None:
    manifest = folder / "m.jsonl"
    manifest.write_bytes(b'{"order_number": "OC-\xff", "pdf": "a.pdf"}\n{"order_number": "OC-2", "pdf": "a.pdf"}\n')
    first, second = read_manifest(manifest)
    assert (first.number, first.error) == (1, "line 1 is not UTF-8 text")
    assert (second.number, second.record, second.error) == (2, {"order_number": "OC-2"}, None)


@pytest.mark.parametrize(("name", "raw", "kind"), [
    ("m.txt", b"\xef\xbb\xbf" + b'{"order_number": "OC-1", "pdf": "a.pdf"}\n', "jsonl"),  # a BOM, then JSON
    ("m.txt", b'   {"order_number": "OC-1", "pdf": "a.pdf"}\n', "jsonl"),  # spaces before the JSON
    ("m.txt", b'[{"order_number": "OC-1"}, 2]\n', "jsonl"),
    ("m.txt", b"order number,pdf\nOC-1 a.pdf\n", "csv"),  # the first line decides; spaces in a column name
    ("m.txt", b'{"order_number": "OC-\xff\xfe", "ocid": 1}\n', "ocds"),  # a byte that is not UTF-8 in the head
])
def test_the_first_line_decides_between_csv_and_json(tmp_path: Path, name: str, raw: bytes, kind: str) -> None:
    (tmp_path / name).write_bytes(raw)
    assert manifest_kind(tmp_path / name) == kind


def test_a_missing_manifest_names_its_path_and_the_next_step(tmp_path: Path) -> None:
    from peru_compras.errors import InvalidInput

    for read in (manifest_kind, lambda path: list(read_manifest(path))):
        with pytest.raises(InvalidInput) as caught:
            read(tmp_path / "none.jsonl")
        assert caught.value.message.startswith(f"cannot read manifest {str(tmp_path / 'none.jsonl')!r}: ")
        assert caught.value.hint == "check the path"


def test_rows_come_as_sniffed_from_the_head_alone(tmp_path: Path) -> None:
    """An "ocid" key past the first 4096 characters does not make a JSON Lines manifest OCDS."""
    (tmp_path / "a.pdf").write_bytes(b"%PDF-1.4")
    late = json.dumps({"order_number": "OC-1", "padding": "x" * 5000, "ocid": "ocds-1", "pdf": "a.pdf"})
    (tmp_path / "m.jsonl").write_text(late + "\n", encoding="utf-8")
    (row,) = read_manifest(tmp_path / "m.jsonl")
    assert row.error is None and row.pdf == tmp_path / "a.pdf" and row.record is not None
    assert row.record["ocid"] == "ocds-1"


def test_an_ocds_pdf_dir_file_that_links_out_is_refused_on_its_row(tmp_path: Path) -> None:
    """OCDS rows find their PDF as <pdf-dir>/<order number>.pdf: a link there that leads out is refused, the
    row keeping its record, number and source (its line names the release); drawn rows are left alone."""
    from .test_ocds import package, simple, write

    pdfs, outside = tmp_path / "pdfs", tmp_path / "outside"
    pdfs.mkdir()
    outside.mkdir()
    (outside / "secret.pdf").write_bytes(b"%PDF-1.4 secret")
    (pdfs / "OC-OUT.pdf").symlink_to(outside / "secret.pdf")
    (pdfs / "OC-IN.pdf").write_bytes(b"%PDF-1.4 in")
    manifest = write(tmp_path / "p.json", package(simple("ocds-x-1", "OC-OUT"), simple("ocds-x-2", "OC-IN"),
                                                  simple("ocds-x-3", "OC-DRAWN")))
    rows = {row.record["order_number"]: row for row in read_manifest(manifest, pdf_dir=pdfs) if row.record}
    out, inside, drawn = rows["OC-OUT"], rows["OC-IN"], rows["OC-DRAWN"]
    assert out.pdf is None and out.error == refusal(pdfs, "OC-OUT.pdf") and not out.render
    assert out.source == {"ocid": "ocds-x-1", "release_id": "ocds-x-1-r1", "contract_id": "OC-OUT"}
    assert out.number < inside.number < drawn.number
    assert inside.pdf == pdfs / "OC-IN.pdf" and inside.error is None
    assert drawn.pdf is None and drawn.render and drawn.error is None


def test_a_quoted_csv_cell_keeps_its_line_break_as_written(folder: Path) -> None:
    """The csv module reads quoted line breaks itself (the file is opened without newline translation): a
    place written on two lines reaches the record's rules as it is, CR LF and all."""
    manifest = folder / "m.csv"
    manifest.write_bytes(b'order_number,delivery_place,pdf\r\nOC-1,"Piura\r\nAlmac\xc3\xa9n 2",a.pdf\r\n')
    (row,) = read_manifest(manifest)
    assert row.record == {"order_number": "OC-1", "delivery": {"place": "Piura\r\nAlmacén 2"}}
    assert row.pdf == folder / "a.pdf"


def test_a_batch_gets_json_lines_unread_and_each_reads_as_read_manifest_reads_it(folder: Path) -> None:
    from peru_compras.manifest import read_line, read_lines
    from peru_compras.rows import Line, Row

    manifest = folder / "m.jsonl"
    manifest.write_bytes(b'{"order_number": "OC-1", "pdf": "a.pdf"}\n\n{not json\n[1]\n{"order_number": "OC-5"}\n'
                         b'{"order_number": "OC-6", "pdf": "../outside/secret.pdf"}\n{"order_number": "OC-\xff"}\n'
                         b'{"order_number": "OC-8", "pdf": "sub/b.pdf", "o": 1, "o": 2}\n')
    lines = list(read_lines(manifest))
    assert all(isinstance(line, Line) for line in lines)  # nothing parsed, no PDF looked for, in this process
    assert [line.number for line in lines] == [1, 3, 4, 5, 6, 7, 8]
    assert [read_line(line) for line in lines if isinstance(line, Line)] == list(read_manifest(manifest))
    assert read_line(Line(9, '{"pdf": "a.pdf"}', folder, None)) == Row(9, {}, folder / "a.pdf")  # root not known
    csv = folder / "m.csv"
    csv.write_text("order_number,pdf\nOC-1,a.pdf\n", encoding="utf-8")
    assert list(read_lines(csv)) == list(read_manifest(csv)) == [Row(1, {"order_number": "OC-1"}, folder / "a.pdf")]


def test_an_overlong_line_is_refused_before_it_goes_to_a_worker(folder: Path) -> None:
    from peru_compras.manifest import read_lines
    from peru_compras.rows import Line, Row

    manifest = folder / "m.jsonl"
    manifest.write_text('{"pdf": "a.pdf"}\n' + json.dumps({"pdf": "a.pdf", "x": "y" * MAX_LINE}) + "\n",
                        encoding="utf-8")
    first, second = read_lines(manifest)
    assert isinstance(first, Line) and isinstance(second, Row)  # nothing of 1 MiB is copied to a worker
    assert second == list(read_manifest(manifest))[1] and str(MAX_LINE) in str(second.error)
