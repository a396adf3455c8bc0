"""The PDF acceptance rules, one by one, on small PDFs built here (peru_compras.pdf.open and .checks).

Fast unit tests (no CLI, no chain; the printed-QR reader is replaced by a recorder except in one test) so
that the mutation benchmark (benchmarks/mutation.py) can run them for every mutant of these two modules.
Each rule at its edge: the size, page and page-area limits exactly at and one past the limit, every kind of
active content, every place another address can hide, the damage a strict reader must refuse.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import io
import os
import shutil
import zlib
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pikepdf
import pytest

from peru_compras import qr
from peru_compras.errors import InvalidDocument
from peru_compras.pdf import checks
from peru_compras.pdf import open as pdf_open
from peru_compras.pdf.checked import check_pdf, open_checked, read_checked, read_pdf
from peru_compras.pdf.checks import check_registrable
from peru_compras.pdf.markers import INFO_KEY, STAMP_KEY
from peru_compras.pdf.open import (
    MAX_DECODED_BYTES,
    MAX_PAGE_AREA,
    MAX_PAGES,
    MAX_PDF_BYTES,
    CheckedPdf,
    Limits,
    damaged,
    visible_box,
)
from peru_compras.settings import load_settings

URL = "https://oc.example.pe/o/20131370998/OC-1"
OTHER = "https://evil.example/o/20131370998/OC-1"


def build(pages: int = 1, *, edit: Callable[[pikepdf.Pdf], None] | None = None, size: tuple[float, float] = (595, 842),
          encryption: pikepdf.Encryption | None = None) -> bytes:
    """A small PDF: `pages` blank pages with a short content stream each, then `edit`."""
    pdf = pikepdf.new()
    for number in range(pages):
        page = pdf.add_blank_page(page_size=size)
        page.obj.Contents = pdf.make_stream(f"BT /F1 12 Tf 72 720 Td (p{number}) Tj ET".encode())
    if edit is not None:
        edit(pdf)
    out = io.BytesIO()
    if encryption is not None:
        pdf.save(out, encryption=encryption)
    else:  # every stream exactly as made here
        pdf.save(out, compress_streams=False, stream_decode_level=pikepdf.StreamDecodeLevel.none)
    return out.getvalue()


@cache
def plain() -> bytes:
    return build()


def stream(pdf: pikepdf.Pdf, raw: bytes, filters: Iterable[str], **extra: Any) -> pikepdf.Stream:
    """A stream holding `raw` as it is (already encoded) under `filters`, reachable from page 1."""
    made = pikepdf.Stream(pdf, raw)
    names = [pikepdf.Name(f) for f in filters]
    if names:
        made.Filter = names[0] if len(names) == 1 else pikepdf.Array(names)
    for key, value in extra.items():
        made[f"/{key}"] = value
    page = pdf.pages[0].obj
    page.Resources = page.get("/Resources", pikepdf.Dictionary())
    page.Resources.Extra = pikepdf.Array([*page.Resources.get("/Extra", pikepdf.Array()), made])
    return made


def with_streams(*specs: tuple[bytes, list[str]]) -> bytes:
    def edit(pdf: pikepdf.Pdf) -> None:
        for raw, filters in specs:
            stream(pdf, raw, filters)
    return build(edit=edit)


def refused(data: bytes, words: str, *, limits: Limits | None = None, name: str = "orden.pdf") -> str:
    with pytest.raises(InvalidDocument) as caught:
        check_pdf(data, name=name, limits=limits)
    message = str(caught.value)
    assert words in message, message
    assert f"{name!r}" in message and "\n" not in message and caught.value.exit_code == 2
    return message


# -- limits ---------------------------------------------------------------------------------------------------

def test_default_limits_and_limits_from_settings() -> None:
    assert (Limits().max_bytes, Limits().max_pages, Limits().max_decoded) == (50 * 2**20, 1000, 256 * 2**20)
    assert (MAX_PDF_BYTES, MAX_PAGES, MAX_DECODED_BYTES) == (50 * 2**20, 1000, 256 * 2**20)
    settings = load_settings({}, env={"PERU_COMPRAS_MAX_PDF_BYTES": "3KB", "PERU_COMPRAS_MAX_PDF_PAGES": "7",
                                      "PERU_COMPRAS_MAX_PDF_DECODED_BYTES": "9000"}, read_file=False)
    assert Limits.from_settings(settings) == Limits(3072, 7, 9000)


def test_the_library_reads_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERU_COMPRAS_MAX_PDF_BYTES", "10")
    monkeypatch.setenv("PERU_COMPRAS_MAX_PDF_PAGES", "0")
    assert check_pdf(plain()) == 1


def test_size_limit_at_the_byte() -> None:
    data = plain()
    assert check_pdf(data, limits=Limits(max_bytes=len(data))) == 1
    message = refused(data, f"has {len(data):,} bytes, over the {len(data) - 1:,}-byte limit",
                      limits=Limits(max_bytes=len(data) - 1))
    assert message.startswith("PDF 'orden.pdf' has")
    assert check_pdf(data, max_bytes=len(data)) == 1
    with pytest.raises(InvalidDocument, match="-byte limit"):
        check_pdf(data, max_bytes=len(data) - 1)
    with pytest.raises(InvalidDocument, match="-byte limit"):  # the argument wins over the limits given
        check_pdf(data, limits=Limits(max_bytes=10**9), max_bytes=len(data) - 1)


def test_page_limit_at_the_page() -> None:
    three = build(3)
    assert check_pdf(three, limits=Limits(max_pages=3)) == 3
    refused(three, "has 3 pages, over the 2-page limit", limits=Limits(max_pages=2))
    assert check_pdf(three, max_pages=3) == 3
    with pytest.raises(InvalidDocument, match="over the 2-page limit"):
        check_pdf(three, max_pages=2)
    with pytest.raises(InvalidDocument, match="over the 2-page limit"):
        check_pdf(three, limits=Limits(max_pages=50), max_pages=2)
    many = build(1001)
    refused(many, "has 1,001 pages, over the 1,000-page limit")


def test_no_pages_is_refused() -> None:
    def drop(pdf: pikepdf.Pdf) -> None:
        del pdf.pages[0]
    refused(build(edit=drop), "has no pages")


def test_page_area_at_twice_a0() -> None:
    side = MAX_PAGE_AREA ** 0.5
    assert MAX_PAGE_AREA == 2 * 2384.0 * 3370.0
    assert check_pdf(build(size=(2 * 2384.0, 3370.0))) == 1
    message = refused(build(size=(2 * 2384.0, 3371.0)), "page 1 is 4,768 × 3,371 pt, over the page-size limit")
    assert "twice A0" in message
    assert check_pdf(build(size=(side, side))) == 1

    def small_crop(pdf: pikepdf.Pdf) -> None:
        pdf.pages[0].obj.CropBox = pikepdf.Array([0, 0, 595, 842])
    assert check_pdf(build(size=(10_000, 10_000), edit=small_crop)) == 1  # only the crop box is seen

    def second_page_huge(pdf: pikepdf.Pdf) -> None:
        pdf.pages[1].obj.MediaBox = pikepdf.Array([0, 0, 10_000, 10_000])
    refused(build(2, edit=second_page_huge), "page 2 is 10,000 × 10,000 pt")

    def bad_box(pdf: pikepdf.Pdf) -> None:
        pdf.pages[0].obj.MediaBox = pikepdf.Array([0, 0, pikepdf.Name.X, 842])
    refused(build(edit=bad_box), "damaged")


def test_the_visible_box_is_the_crop_box_inside_the_media_box() -> None:
    kept: list[pikepdf.Pdf] = []

    def page(media: list[float], crop: list[float] | None = None) -> pikepdf.Page:
        pdf = pikepdf.new()
        kept.append(pdf)
        made = pdf.add_blank_page()
        made.obj.MediaBox = pikepdf.Array(media)
        if crop is not None:
            made.obj.CropBox = pikepdf.Array(crop)
        return made

    assert visible_box(page([0, 0, 600, 800])) == (0, 0, 600, 800)
    assert visible_box(page([600, 800, 0, 0])) == (0, 0, 600, 800)
    assert visible_box(page([0, 0, 600, 800], [50, 60, 450, 560])) == (50, 60, 450, 560)
    assert visible_box(page([0, 0, 600, 800], [450, 560, 50, 60])) == (50, 60, 450, 560)
    assert visible_box(page([0, 0, 600, 800], [-50, -60, 700, 900])) == (0, 0, 600, 800)  # clamped
    assert visible_box(page([0, 0, 600, 800], [10, 10, 109, 500])) == (0, 0, 600, 800)  # under 100 pt: ignored
    assert visible_box(page([0, 0, 600, 800], [10, 10, 500, 109])) == (0, 0, 600, 800)
    assert visible_box(page([0, 0, 600, 800], [10, 10, 110, 110])) == (10, 10, 110, 110)
    pdf = pikepdf.new()
    bare = pdf.add_blank_page()
    del bare.obj["/MediaBox"]
    assert visible_box(bare) == (0, 0, 612, 792)  # letter, the PDF default


# -- opening: not a PDF, empty, truncated, encrypted -----------------------------------------------------------

def test_empty_not_a_pdf_and_truncated() -> None:
    refused(b"", "is empty (0 bytes)")
    refused(b"hello" * 300, "is not a PDF (no %PDF- header)")
    data = plain()
    late = b" " * 1019 + data  # the header within the first 1,024 bytes
    assert check_pdf(late) == 1
    refused(b" " * 1020 + data, "no %PDF- header")
    assert data.endswith(b"%%EOF\n")
    assert check_pdf(data + b" " * 1018) == 1  # %%EOF within the last 1,024 bytes
    refused(data + b" " * 1019, "is truncated (no %%EOF end marker)")
    refused(data[:-10], "truncated")


def test_encrypted_files_are_refused_with_their_restrictions() -> None:
    locked = build(encryption=pikepdf.Encryption(owner="dueño", user="clave"))
    refused(locked, "is encrypted with a password")
    for allow, shown in (
        (pikepdf.Permissions(modify_other=False), "no modify"),
        (pikepdf.Permissions(modify_annotation=False), "no annotate"),
        (pikepdf.Permissions(print_highres=False, print_lowres=False), "no print"),
        (pikepdf.Permissions(extract=False), "no copy"),
        (pikepdf.Permissions(modify_other=False, extract=False), "no modify, no copy"),
        (pikepdf.Permissions(), "none"),
    ):
        data = build(encryption=pikepdf.Encryption(owner="dueño", user="", allow=allow))
        message = refused(data, f"is encrypted (its owner's restrictions: {shown}); peru-compras does not stamp")
        if shown == "none":
            assert "no " not in message.split("restrictions: ")[1].split(")")[0]


def test_a_catalog_without_a_page_tree_is_damaged() -> None:
    def no_pages(pdf: pikepdf.Pdf) -> None:
        pdf.Root.Pages = pikepdf.Array([1])
    refused(build(edit=no_pages), "it is damaged")


def test_damaged_names_the_cross_reference_table_only_when_it_is_at_fault() -> None:
    assert "its cross-reference table is damaged (xref stream broken)" in str(
        damaged("a.pdf", RuntimeError("xref stream broken\nsecond line")))
    for words in ("cross-reference", "expected n n obj", "not found", "loop detected", "XREF"):
        assert "cross-reference table is damaged" in str(damaged("a.pdf", RuntimeError(f"object {words} here")))
    plainly = damaged("a.pdf", RuntimeError("bad stream")).message
    assert plainly == "PDF 'a.pdf' cannot be read: it is damaged (bad stream)"
    assert damaged("a.pdf", KeyError()).message.endswith("it is damaged (KeyError)")
    cut = str(damaged("a.pdf", RuntimeError("x" * 300)))
    assert "x" * 160 + ")" in cut and "x" * 161 not in cut
    address = damaged("a.pdf", RuntimeError("<_io.BytesIO object at 0x7f00aa>: bad token")).message
    assert address.endswith("it is damaged (bad token)") and "0x" not in address
    stream_address = damaged("a.pdf", RuntimeError("stream <_io.BytesIO object at 0xABCDEF> bad")).message
    assert stream_address.endswith("(bad)")
    assert "cross-reference table" in str(damaged("a.pdf", RuntimeError("odd"), plain()))  # qpdf rebuilds it
    assert "it is damaged" in str(damaged("a.pdf", RuntimeError("odd"), b"%PDF-1.4 nothing"))
    error = damaged("a.pdf", RuntimeError("odd"))
    assert error.exit_code == 2 and "qpdf in.pdf out.pdf" in (error.hint or "")


def test_a_broken_cross_reference_table_is_refused_not_rebuilt() -> None:
    data = plain()
    start = data.rindex(b"startxref")
    broken = data[:start] + b"startxref\n9\n%%EOF\n"
    message = refused(broken, "cross-reference table is damaged")
    assert "0x" not in message and "BytesIO" not in message


# -- the damage check: every stream decoded, bounded ------------------------------------------------------------

def test_streams_are_decoded_and_counted_to_the_limit() -> None:
    zeros = zlib.compress(b"\0" * 6000)
    one = with_streams((zeros, ["/FlateDecode"]))
    base = check_decoded(one)
    assert check_pdf(one, limits=Limits(max_decoded=base)) == 1
    refused(one, f"decompresses to more than {base - 1:,} bytes (the limit)", limits=Limits(max_decoded=base - 1))
    two = with_streams((zeros, ["/FlateDecode"]), (zeros, ["/Fl"]))  # the sum counts, and short names decode
    assert check_decoded(two) == base + 6000
    refused(two, "a compression bomb", limits=Limits(max_decoded=base + 5999))


def check_decoded(data: bytes) -> int:
    """The decoded total check_objects counts for `data`: the smallest max_decoded it accepts."""
    low, high = 0, 10**7
    while low < high:
        middle = (low + high) // 2
        try:
            check_pdf(data, limits=Limits(max_decoded=middle))
            high = middle
        except InvalidDocument:
            low = middle + 1
    return low


@pytest.mark.parametrize("filters", [["/ASCIIHexDecode"], ["/AHx"], ["/ASCII85Decode"], ["/A85"], ["/LZWDecode"],
                                     ["/LZW"]])
def test_every_generic_filter_is_decoded(filters: list[str]) -> None:
    raw = {"/ASCIIHexDecode": b"zz>", "/AHx": b"zz>", "/RunLengthDecode": b"\x05", "/RL": b"\x05",
           "/ASCII85Decode": b"\xff~>", "/A85": b"\xff~>", "/LZWDecode": b"\xff\xff\xff\xff\xff",
           "/LZW": b"\xff\xff\xff\xff\xff"}[filters[0]]
    refused(with_streams((raw, filters)), "damaged")  # its data was decoded: the broken data was seen


def test_image_codecs_and_unknown_filters_stay_encoded() -> None:
    for filters in (["/DCTDecode"], ["/JPXDecode"], ["/FlateDecode", "/DCTDecode"], ["/Crypt"], ["/Nonsense"]):
        assert check_pdf(with_streams((b"\x00 not an image", filters))) == 1, filters


def test_runlength_counts_what_it_decodes() -> None:
    big = with_streams((b"\x81A" * 500 + b"\x80", ["/RunLengthDecode"]))  # 500 runs of 128 bytes
    refused(big, "decompresses to more than", limits=Limits(max_decoded=60_000))
    assert check_pdf(big, limits=Limits(max_decoded=70_000)) == 1


def a85_flate(data: bytes) -> bytes:
    return base64.a85encode(zlib.compress(data)) + b"~>"


def test_ascii85_flate_streams_are_decoded_fast_and_bounded() -> None:
    one = with_streams((a85_flate(b"\0" * 50_000), ["/ASCII85Decode", "/FlateDecode"]))
    base = check_decoded(one)
    assert 50_000 <= base < 51_000
    refused(one, "decompresses to more than", limits=Limits(max_decoded=base - 1))
    short = with_streams((a85_flate(b"\0" * 50_000)[:-40] + b"~>", ["/ASCII85Decode", "/FlateDecode"]))
    message = refused(short, "damaged")
    assert "error decoding stream data for object" in message and "ends early" in message
    garbage = with_streams((base64.a85encode(b"not zlib at all") + b"~>", ["/ASCII85Decode", "/FlateDecode"]))
    message = refused(garbage, "damaged")
    assert "error decoding stream data for object" in message and "0x" not in message
    bad85 = with_streams((b"\x7f\x7f not ascii85", ["/ASCII85Decode", "/FlateDecode"]))
    refused(bad85, "damaged")


def test_ascii85_flate_with_predictor_parameters_goes_through_qpdf() -> None:
    def edit(pdf: pikepdf.Pdf) -> None:
        stream(pdf, a85_flate(b"\0" * 1000), ["/ASCII85Decode", "/FlateDecode"],
               DecodeParms=pikepdf.Array([None, None]))
    assert check_pdf(build(edit=edit)) == 1


def test_broken_flate_data_is_damage() -> None:
    message = refused(with_streams((b"definitely not deflate", ["/FlateDecode"])), "damaged")
    assert "0x" not in message


def test_one_huge_stream_is_a_bomb_by_qpdfs_own_limit() -> None:
    bomb = with_streams((zlib.compress(b"\0" * 3_000_000), ["/FlateDecode"]))
    refused(bomb, "decompresses to more than 100,000 bytes (the limit): a compression bomb",
            limits=Limits(max_decoded=100_000))
    assert check_pdf(bomb) == 1  # the defaults (256 MiB) for the next test too


def test_the_check_is_bounded_in_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdf_open, "CHECK_SECONDS", -1.0)
    message = refused(with_streams((zlib.compress(b"x"), ["/FlateDecode"])), "takes over -1 s to read")
    assert message.endswith("takes over -1 s to read — export or print it to PDF again from its source")
    monkeypatch.setattr(pdf_open, "CHECK_SECONDS", 20.0)
    assert check_pdf(plain()) == 1


def test_a_wrong_stream_length_is_refused_as_qpdf_warns() -> None:
    data = plain()
    marker = b"/Length "
    at = data.index(marker) + len(marker)
    end = data.index(b">>", at)
    length = int(data[at:end].split()[0])
    wrong = data[:at] + str(length + 3).encode() + data[end:]
    refused(wrong, "damaged")


def test_a_missing_object_is_refused() -> None:
    def dangling(pdf: pikepdf.Pdf) -> None:
        pdf.pages[0].obj.Contents = pdf.make_indirect(pikepdf.Dictionary())
    data = build(edit=dangling)
    number = data.rindex(b" 0 obj", 0, data.rindex(b"endobj"))
    start = data.rindex(b"\n", 0, number) + 1
    end = data.index(b"endobj", number) + len(b"endobj")
    blanked = data[:start] + b" " * (end - start) + data[end:]
    refused(blanked, "damaged")


# -- CheckedPdf, read_checked, read_pdf ---------------------------------------------------------------------

def test_checked_pdf_is_open_until_taken_or_closed() -> None:
    data = build(2)
    with open_checked(data, name="dos.pdf", limits=Limits(max_pages=5)) as checked:
        assert (checked.data, checked.name, checked.pages, checked.limits) == (data, "dos.pdf", 2, Limits(max_pages=5))
        assert len(checked.pdf.pages) == 2
        taken = checked.take()
        with pytest.raises(ValueError, match="'dos.pdf' was closed"):
            checked.pdf  # noqa: B018 — the property raises
        checked.close()  # nothing left to close
    assert len(taken.pages) == 2
    taken.close()
    closed = open_checked(data)
    closed.close()
    with pytest.raises(ValueError):
        closed.pdf  # noqa: B018
    with open_checked(data) as context:
        assert len(context.pdf.pages) == 2
    with pytest.raises(ValueError):
        context.pdf  # noqa: B018 — closed on leaving the block
    assert isinstance(context, CheckedPdf) and context.limits == Limits()


def test_read_checked_and_read_pdf(tmp_path: Path) -> None:
    path = tmp_path / "orden.pdf"
    path.write_bytes(build(2))
    assert read_pdf(path) == path.read_bytes()
    with read_checked(path) as checked:
        assert checked.pages == 2 and checked.name == str(path) and checked.data == path.read_bytes()
    with pytest.raises(InvalidDocument, match="over the 1-page limit"):
        read_pdf(path, max_pages=1)
    with pytest.raises(InvalidDocument, match="over the 1-page limit"):
        read_pdf(path, limits=Limits(max_pages=1))
    size = path.stat().st_size
    assert read_pdf(path, max_bytes=size)
    with pytest.raises(InvalidDocument, match=f"has {size:,} bytes, over the {size - 1:,}-byte limit"):
        read_pdf(path, max_bytes=size - 1)
    with pytest.raises(InvalidDocument, match="-byte limit"):
        read_checked(path, limits=Limits(max_bytes=size - 1))
    with pytest.raises(InvalidDocument) as folder:
        read_pdf(tmp_path)
    assert "is a folder, not a PDF" in str(folder.value) and folder.value.hint == "give the order's PDF file"
    with pytest.raises(InvalidDocument) as missing:
        read_pdf(tmp_path / "no-existe.pdf")
    assert "cannot read PDF" in str(missing.value) and missing.value.hint == "check the path"


def test_read_stops_at_the_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "crece.pdf"
    path.write_bytes(plain())
    real = Path.stat

    def shrunk(self: Path, **kwargs: Any) -> Any:  # the file grows after it was measured
        result = real(self, **kwargs)
        return type("Stat", (), {"st_size": 10, "st_mode": result.st_mode})() if self == path else result
    monkeypatch.setattr(Path, "stat", shrunk)
    with pytest.raises(InvalidDocument, match="over the 100-byte limit"):
        read_pdf(path, max_bytes=100)


def test_an_unreadable_file_names_its_permissions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "cerrado.pdf"
    path.write_bytes(plain())

    def denied(self: Path, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(Path, "open", denied)  # (chmod 0 does not stop root, who runs CI containers)
    with pytest.raises(InvalidDocument) as caught:
        read_pdf(path)
    assert caught.value.message == f"cannot read PDF {str(path)!r}: Permission denied"
    assert caught.value.hint == "check the file's permissions"


# -- check_registrable: active content ------------------------------------------------------------------------

class Decoded:
    """Stands in for qr.decode_pages: records which pages were asked for and answers `texts` per page."""

    def __init__(self, texts: dict[int, list[str]] | None = None) -> None:
        self.texts = texts or {}
        self.asked: list[list[int]] = []

    def __call__(self, document: bytes, pages: Iterable[int]) -> Iterator[tuple[int, list[str]]]:
        asked = list(pages)
        self.asked.append(asked)
        for page in asked:
            yield page, self.texts.get(page, [])


def pages_read(decoded: Decoded, data: bytes) -> list[int]:
    """The pages check_registrable renders to read printed QR codes in `data` (none: not even started), the
    same from the bytes (every content decoded there) and, where the damage check accepts it, from a checked
    PDF (what that check kept)."""
    documents: list[bytes | CheckedPdf] = [data]
    with contextlib.suppress(InvalidDocument):
        documents.append(open_checked(data))
    read: list[list[int]] = []
    for document in documents:
        decoded.asked.clear()
        check_registrable(document, URL)
        assert len(decoded.asked) <= 1
        read.append(decoded.asked[0] if decoded.asked else [])
        if isinstance(document, CheckedPdf):
            document.close()
    assert read == read[:1] * len(read)
    return read[0]


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> Decoded:
    fake = Decoded()
    monkeypatch.setattr(checks.qr, "decode_pages", fake)
    return fake


def js(code: str = "app.alert(1)") -> pikepdf.Dictionary:
    return pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String(code))


def link(pdf: pikepdf.Pdf, action: pikepdf.Object, page: int = 0, **extra: Any) -> None:
    annot = pikepdf.Dictionary(Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link,
                               Rect=pikepdf.Array([0, 0, 10, 10]), A=action, **extra)
    target = pdf.pages[page].obj
    target.Annots = pikepdf.Array([*target.get("/Annots", pikepdf.Array()), pdf.make_indirect(annot)])


def uri(address: str) -> pikepdf.Dictionary:
    return pikepdf.Dictionary(S=pikepdf.Name.URI, URI=pikepdf.String(address))


def active(edit: Callable[[pikepdf.Pdf], None], pages: int = 1) -> str:
    """The active-content refusal of a PDF made by `edit`."""
    with pytest.raises(InvalidDocument) as caught:
        check_registrable(build(pages, edit=edit), URL, name="activo.pdf")
    message = caught.value.message
    assert message.startswith("PDF 'activo.pdf' carries active content: ")
    assert message.endswith(" — peru-compras registers no PDF that runs code or carries files")
    assert "print it to PDF again" in (caught.value.hint or "") and caught.value.exit_code == 2
    return message


#: what the rule refuses, written here (not read from the module: a dropped entry must fail a test)
ACTIVE_ACTIONS = {"/JavaScript": "JavaScript", "/Launch": "a Launch action (opens a program or file)",
                  "/SubmitForm": "a form submission", "/ImportData": "a data import",
                  "/GoToR": "a link into another file", "/GoToE": "a link into an embedded file",
                  "/Rendition": "a media action", "/RichMediaExecute": "a rich-media script"}
ACTIVE_ANNOTATIONS = {"/FileAttachment": "an attached file", "/Sound": "a sound", "/Movie": "a movie",
                      "/Screen": "a media screen", "/RichMedia": "rich media", "/3D": "3D content"}


@pytest.mark.parametrize(("kind", "shown"), sorted(ACTIVE_ACTIONS.items()))
def test_every_active_action_in_a_link_is_refused(kind: str, shown: str, decoded: Decoded) -> None:
    message = active(lambda pdf: link(pdf, pikepdf.Dictionary(S=pikepdf.Name(kind))))
    assert f"{shown} (page 1 link)" in message


@pytest.mark.parametrize(("subtype", "shown"), sorted(ACTIVE_ANNOTATIONS.items()))
def test_every_active_annotation_is_refused(subtype: str, shown: str, decoded: Decoded) -> None:
    def edit(pdf: pikepdf.Pdf) -> None:
        annot = pikepdf.Dictionary(Type=pikepdf.Name.Annot, Subtype=pikepdf.Name(subtype),
                                   Rect=pikepdf.Array([0, 0, 10, 10]))
        pdf.pages[-1].obj.Annots = pikepdf.Array([pdf.make_indirect(annot)])
    assert f"{shown} (page 2)" in active(edit, pages=2)


def test_document_level_active_content(decoded: Decoded) -> None:
    def open_action(pdf: pikepdf.Pdf) -> None:
        pdf.Root.OpenAction = js()
    assert "JavaScript (run on opening, /OpenAction)" in active(open_action)

    def catalog_aa(pdf: pikepdf.Pdf) -> None:
        pdf.Root.AA = pikepdf.Dictionary(WC=js())
    assert "document actions (/AA)" in active(catalog_aa)

    def names_js(pdf: pikepdf.Pdf) -> None:
        pdf.Root.Names = pikepdf.Dictionary(JavaScript=pikepdf.Dictionary(Names=pikepdf.Array()))
    assert "document JavaScript (/Names /JavaScript)" in active(names_js)

    def embedded(pdf: pikepdf.Pdf) -> None:
        pdf.Root.Names = pikepdf.Dictionary(EmbeddedFiles=pikepdf.Dictionary(Names=pikepdf.Array()))
    assert "attached files (/Names /EmbeddedFiles)" in active(embedded)

    def xfa(pdf: pikepdf.Pdf) -> None:
        pdf.Root.AcroForm = pikepdf.Dictionary(Fields=pikepdf.Array(), XFA=pikepdf.Array())
    assert "an XFA form (/AcroForm /XFA)" in active(xfa)

    def page_aa(pdf: pikepdf.Pdf) -> None:
        pdf.pages[1].obj.AA = pikepdf.Dictionary(O=js())
    assert "page actions (page 2 /AA)" in active(page_aa, pages=2)

    def annot_aa(pdf: pikepdf.Pdf) -> None:
        link(pdf, uri(URL), AA=pikepdf.Dictionary(E=js()))
    assert "annotation actions (page 1 /AA)" in active(annot_aa)


def test_harmless_shapes_of_those_keys_pass(decoded: Decoded) -> None:
    def edit(pdf: pikepdf.Pdf) -> None:
        pdf.Root.AA = pikepdf.Array()  # not a dictionary: no actions
        pdf.Root.Names = pikepdf.Dictionary(Dests=pikepdf.Dictionary())
        pdf.Root.AcroForm = pikepdf.Dictionary(Fields=pikepdf.Array())
        pdf.Root.OpenAction = pikepdf.Array([pdf.pages[0].obj, pikepdf.Name.Fit])  # a destination
        pdf.pages[0].obj.AA = pikepdf.Array()
        pdf.pages[0].obj.Annots = pikepdf.Array([pikepdf.Integer(3)])  # not an annotation
        annot = pikepdf.Dictionary(Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Text,
                                   Rect=pikepdf.Array([0, 0, 1, 1]), AA=pikepdf.Array())
        pdf.pages[0].obj.Annots.append(pdf.make_indirect(annot))
        link(pdf, pikepdf.Dictionary(S=pikepdf.Name.GoTo, D=pikepdf.Array([pdf.pages[0].obj, pikepdf.Name.Fit])))
        link(pdf, pikepdf.Dictionary(S=pikepdf.Name.URI))  # a URI action without its URI
    check_registrable(build(edit=edit), URL)

    def names_not_a_dictionary(pdf: pikepdf.Pdf) -> None:
        pdf.Root.Names = pikepdf.Array([pikepdf.Name.JavaScript])
        pdf.Root.AcroForm = pikepdf.Array([pikepdf.Name.XFA])
    check_registrable(build(edit=names_not_a_dictionary), URL)


def test_actions_hidden_behind_next_and_in_arrays(decoded: Decoded) -> None:
    def chained(pdf: pikepdf.Pdf) -> None:
        first = uri(URL)
        first.Next = pikepdf.Array([pikepdf.Dictionary(S=pikepdf.Name.GoTo), pikepdf.Dictionary(Next=js())])
        link(pdf, first)
    assert "JavaScript (page 1 link)" in active(chained)

    def listed(pdf: pikepdf.Pdf) -> None:
        pdf.Root.OpenAction = pikepdf.Array([pikepdf.Integer(1), js()])
    assert "JavaScript (run on opening, /OpenAction)" in active(listed)

    def listed_last(pdf: pikepdf.Pdf) -> None:  # what is not an action is skipped, not the end of the walk
        pdf.Root.OpenAction = pikepdf.Array([js(), pikepdf.Integer(1)])
    assert "JavaScript (run on opening, /OpenAction)" in active(listed_last)


def chain(length: int) -> Callable[[pikepdf.Pdf], None]:
    """A link whose action chain has `length` harmless actions, then JavaScript."""
    def edit(pdf: pikepdf.Pdf) -> None:
        action = js()
        for _ in range(length):
            action = pikepdf.Dictionary(S=pikepdf.Name.GoTo, Next=action)
        link(pdf, action)
    return edit


def test_the_action_chain_is_followed_to_its_bound(decoded: Decoded) -> None:
    assert "JavaScript (page 1 link)" in active(chain(63))  # the 64th action is still read
    check_registrable(build(edit=chain(64)), URL)  # the 65th is not: the walk is bounded


def test_each_finding_is_listed_once_and_the_list_is_bounded(decoded: Decoded) -> None:
    def many(pdf: pikepdf.Pdf) -> None:
        for _ in range(3):
            link(pdf, js())
        for number in range(2, 40):
            link(pdf, js(), page=number - 1)
    message = active(many, pages=40)
    assert message.count("JavaScript (page 1 link)") == 1
    listed = message.removeprefix("PDF 'activo.pdf' carries active content: ").split(" — peru-compras")[0]
    assert len(listed) == 400


# -- check_registrable: other addresses -------------------------------------------------------------------

def other_address(data: bytes, *, verify_url: str = URL) -> str:
    with pytest.raises(InvalidDocument) as caught:
        check_registrable(data, verify_url, name="otra.pdf")
    message = caught.value.message
    assert message.startswith(f"PDF 'otra.pdf' already carries another address than this order's {URL}: ")
    assert "--allow-other-urls" in (caught.value.hint or "") and caught.value.exit_code == 2
    return message


def test_links_markers_and_information_naming_another_address(decoded: Decoded) -> None:
    assert f"{OTHER} (page 1 link)" in other_address(build(edit=lambda pdf: link(pdf, uri(OTHER))))

    def info(pdf: pikepdf.Pdf) -> None:
        pdf.docinfo[INFO_KEY] = pikepdf.String(OTHER)
    assert f"{OTHER} (document information)" in other_address(build(edit=info))

    def page_marker(pdf: pikepdf.Pdf) -> None:
        pdf.pages[1].obj[STAMP_KEY] = pikepdf.String(OTHER)
    assert f"{OTHER} (page 2 stamp marker)" in other_address(build(2, edit=page_marker))

    def stream_marker(pdf: pikepdf.Pdf) -> None:
        pdf.pages[0].obj.Contents[STAMP_KEY] = pikepdf.String(OTHER)
    assert f"{OTHER} (page 1 stamp marker)" in other_address(build(edit=stream_marker))

    def in_array(pdf: pikepdf.Pdf) -> None:
        page = pdf.pages[0].obj
        marked = pdf.make_stream(b"")
        marked[STAMP_KEY] = pikepdf.String(OTHER)
        page.Contents = pikepdf.Array([page.Contents, marked])
    assert f"{OTHER} (page 1 stamp marker)" in other_address(build(edit=in_array))
    assert decoded.asked == []  # refused already: no page was rendered


def test_own_address_with_or_without_a_fragment_passes(decoded: Decoded) -> None:
    def own(pdf: pikepdf.Pdf) -> None:
        link(pdf, uri(URL + "#AbC-_9"))
        pdf.docinfo[INFO_KEY] = pikepdf.String(URL)
        pdf.pages[0].obj[STAMP_KEY] = pikepdf.String(URL)
    data = build(edit=own)
    check_registrable(data, URL)
    check_registrable(data, URL + "#another-payload")
    message = other_address(build(edit=lambda pdf: link(pdf, uri(OTHER + "#x"))), verify_url=URL + "#y")
    assert f"{OTHER}#x (page 1 link)" in message


def test_allow_other_urls_warns_once_per_address_with_every_place(decoded: Decoded) -> None:
    def edit(pdf: pikepdf.Pdf) -> None:
        link(pdf, uri(OTHER))
        link(pdf, uri(OTHER))
        link(pdf, uri(URL))
        pdf.docinfo[INFO_KEY] = pikepdf.String(OTHER)
        link(pdf, uri("https://b.example/x"), page=1)
        pdf.pages[0].obj.Contents = pdf.make_stream(drawing(40))
    decoded.texts = {1: ["https://qr.example/y"]}
    warnings: list[str] = []
    check_registrable(build(2, edit=edit), URL, name="otra.pdf", allow_other_urls=True, warn=warnings.append)
    assert warnings == [f"warning: PDF 'otra.pdf' carries another address than {URL}: {OTHER} (document "
                        "information, page 1 link); https://b.example/x (page 2 link); https://qr.example/y "
                        "(QR printed on page 1)"]
    check_registrable(build(2, edit=edit), URL, allow_other_urls=True)  # no warn: nothing to call


def test_the_listing_is_bounded_and_escaped(decoded: Decoded) -> None:
    def edit(pdf: pikepdf.Pdf) -> None:
        for number in range(30):
            link(pdf, uri(f"https://{number}.example/" + "a" * 300))
        link(pdf, uri("https://x.example/\x1b[31mrojo"))
    message = other_address(build(edit=edit))
    listed = message.split(f"this order's {URL}: ", 1)[1]
    assert len(listed) == 400 and "a" * 201 not in listed
    warnings: list[str] = []
    check_registrable(build(edit=lambda pdf: link(pdf, uri("https://x.example/\x1b[31mrojo"))), URL,
                      allow_other_urls=True, warn=warnings.append)
    assert "\x1b" not in warnings[0]


# -- check_registrable: printed QR codes ----------------------------------------------------------------------

def drawing(segments: int) -> bytes:
    return b"".join(b"%d 0 1 1 re\n" % n for n in range(segments)) + b"f\n"


def with_content(data_by_page: dict[int, bytes], pages: int = 1) -> bytes:
    def edit(pdf: pikepdf.Pdf) -> None:
        for index, content in data_by_page.items():
            pdf.pages[index].obj.Contents = pdf.make_stream(content)
    return build(pages, edit=edit)


def test_pages_that_may_show_a_qr_are_read(decoded: Decoded) -> None:
    check_registrable(with_content({0: drawing(40)}), URL)
    assert decoded.asked == [[1]]
    assert pages_read(decoded, with_content({0: drawing(39)})) == []  # too few paths for a QR: not rendered
    assert pages_read(decoded, with_content({0: drawing(40), 2: drawing(40)}, pages=3)) == [1, 3]  # first and last
    assert pages_read(decoded, with_content({1: drawing(400)}, pages=3)) == []  # a middle page is not read
    assert pages_read(decoded, with_content({2: drawing(40)}, pages=3)) == [3]
    every_op = b"".join(b"0 0 m 1 1 %s\n" % op for op in (b"l", b"c", b"v", b"y")) * 10
    assert pages_read(decoded, with_content({0: every_op})) == [1]
    words = b"(free lyre cave yy ll) Tj " * 40  # operators only as whole words count
    assert pages_read(decoded, with_content({0: words})) == []
    assert pages_read(decoded, with_content({0: b"BI /W 1 /H 1 /BPC 8 /CS /G ID \x00 EI"})) == [1]  # an inline image
    assert pages_read(decoded, with_content({0: b"(BIG) Tj /BIx 1"})) == []


def test_images_and_forms_may_show_a_qr(decoded: Decoded) -> None:
    def image(pdf: pikepdf.Pdf) -> None:
        picture = pikepdf.Stream(pdf, b"\x00")
        picture.Type, picture.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
        picture.Width, picture.Height, picture.BitsPerComponent = 1, 1, 8
        picture.ColorSpace = pikepdf.Name.DeviceGray
        pdf.pages[0].obj.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=picture))
    assert pages_read(decoded, build(edit=image)) == [1]

    def form(segments: int) -> Callable[[pikepdf.Pdf], None]:
        def edit(pdf: pikepdf.Pdf) -> None:
            drawn = pikepdf.Stream(pdf, drawing(segments))
            drawn.Type, drawn.Subtype = pikepdf.Name.XObject, pikepdf.Name.Form
            drawn.BBox = pikepdf.Array([0, 0, 100, 100])
            pdf.pages[0].obj.Resources = pikepdf.Dictionary(  # a non-stream entry first: skipped, not the end
                XObject=pikepdf.Dictionary(Bad=pdf.make_indirect(pikepdf.Dictionary()), Fm0=drawn))
        return edit
    assert pages_read(decoded, build(edit=form(40))) == [1]
    assert pages_read(decoded, build(edit=form(39))) == []

    def many_streams(pdf: pikepdf.Pdf) -> None:  # only the first 64 streams are looked at
        page = pdf.pages[0].obj
        page.Contents = pikepdf.Array([pdf.make_stream(b"") for _ in range(64)] + [pdf.make_stream(drawing(99))])
    assert pages_read(decoded, build(edit=many_streams)) == []

    def resources_not_a_dictionary(pdf: pikepdf.Pdf) -> None:
        pdf.pages[0].obj.Resources = pikepdf.Array()
        pdf.pages[0].obj.Contents = pdf.make_stream(drawing(45))
    assert pages_read(decoded, build(edit=resources_not_a_dictionary)) == [1]


def test_a_printed_qr_for_another_address_is_refused(decoded: Decoded) -> None:
    decoded.texts = {1: [URL, OTHER], 2: [OTHER]}
    message = other_address(with_content({0: drawing(50), 1: drawing(50)}, pages=2))
    assert f"{OTHER} (QR printed on page 1, QR printed on page 2)" in message
    decoded.texts = {1: [URL + "#signed-payload"]}
    check_registrable(with_content({0: drawing(50)}), URL)


@pytest.mark.skipif(not qr.tools_available(), reason="needs pdftoppm and zbarimg")
def test_the_real_reader_finds_a_printed_qr() -> None:
    def edit(pdf: pikepdf.Pdf) -> None:
        pdf.pages[0].obj.Contents = pdf.make_stream(qr.pdf_operators(qr.qr_matrix(OTHER), 72, 72, 144))
    message = other_address(build(edit=edit))
    assert f"{OTHER} (QR printed on page 1)" in message


# -- check_registrable: its input ------------------------------------------------------------------------------

def test_a_checked_pdf_is_read_without_a_second_parse(decoded: Decoded, monkeypatch: pytest.MonkeyPatch) -> None:
    data = build(edit=lambda pdf: link(pdf, uri(OTHER)))
    with open_checked(data, name="abierto.pdf") as checked:
        monkeypatch.setattr(checks, "open_strict", lambda *_: pytest.fail("parsed again"))
        with pytest.raises(InvalidDocument, match="'abierto.pdf' already carries another address"):
            check_registrable(checked, URL, name="ignored")
        assert len(checked.pdf.pages) == 1  # still open for the stamp


def test_damage_found_while_scanning_is_named(decoded: Decoded) -> None:
    def broken_tree(pdf: pikepdf.Pdf) -> None:
        pdf.Root.Pages.Kids = pikepdf.Array([pikepdf.Integer(5)])
        pdf.Root.Pages.Count = 1
    with pytest.raises(InvalidDocument, match="'x.pdf' cannot be read"):
        check_registrable(build(edit=broken_tree), URL, name="x.pdf")
    with pytest.raises(InvalidDocument, match="is not a PDF"):
        check_registrable(b"plain text", URL, name="x.pdf")


def test_no_active_content_and_no_other_address_passes_silently(decoded: Decoded) -> None:
    warnings: list[str] = []
    check_registrable(build(edit=lambda pdf: link(pdf, uri(URL))), URL, warn=warnings.append)
    check_registrable(plain(), URL, allow_other_urls=True, warn=warnings.append)
    assert warnings == []


def test_the_reader_of_printed_codes_is_optional(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    assert list(qr.decode_pages(plain(), [1])) == [] and qr.decode_page(plain()) == []
    check_registrable(with_content({0: drawing(50)}), URL)


# -- every refusal's next step, and the names in it -------------------------------------------------------------

def hint_of(data: bytes, **kwargs: Any) -> str:
    with pytest.raises(InvalidDocument) as caught:
        check_pdf(data, **kwargs)
    assert caught.value.hint
    return caught.value.hint


def test_each_refusal_names_its_next_step() -> None:
    assert hint_of(b"") == "give the real file; the copy may have failed"
    assert hint_of(b"text " * 300) == "give the order's PDF file"
    assert hint_of(plain()[:-10]) == "download or copy the file again"
    assert hint_of(build(encryption=pikepdf.Encryption(owner="o", user="u"))) == \
        "give a copy without an opening password"
    assert "qpdf --decrypt in.pdf out.pdf" in hint_of(build(encryption=pikepdf.Encryption(owner="o", user="")))
    assert hint_of(plain(), max_bytes=10) == "compress it, or raise PERU_COMPRAS_MAX_PDF_BYTES" or \
        hint_of(plain(), max_bytes=10).startswith("compress it, or raise ")
    assert "max-pdf-bytes" in hint_of(plain(), max_bytes=10) or "MAX_PDF_BYTES" in hint_of(plain(), max_bytes=10)
    assert hint_of(build(2), max_pages=1).startswith("split it, or raise ")
    assert "pdf-pages" in hint_of(build(2), max_pages=1).lower().replace("_", "-")

    def drop(pdf: pikepdf.Pdf) -> None:
        del pdf.pages[0]
    assert hint_of(build(edit=drop)) == "give the order's PDF file"
    assert hint_of(build(size=(10_000, 10_000))) == "give the order as printed on paper (A4, letter, legal, up to A0)"
    bomb = hint_of(with_streams((zlib.compress(b"\0" * 20_000), ["/FlateDecode"])), limits=Limits(max_decoded=1000))
    assert bomb.startswith("export it to PDF again from its source, or raise ") and "decoded" in bomb.lower()


def test_default_names_and_damage_details() -> None:
    with pytest.raises(InvalidDocument, match="^PDF 'document' is empty"):
        check_pdf(b"")
    with pytest.raises(InvalidDocument, match="^PDF 'document' is empty"):
        open_checked(b"")
    with pytest.raises(InvalidDocument, match="^PDF 'document' is empty"):
        check_registrable(b"", URL)
    with pytest.raises(InvalidDocument, match="^'x.pdf' is not a PDF"):
        check_registrable(b"plain text", URL, name="x.pdf")

    def loop(pdf: pikepdf.Pdf) -> None:
        pdf.Root.Pages.Kids = pikepdf.Array([pdf.Root.Pages])
    assert "Loop detected in /Pages structure" in refused(build(edit=loop), "cannot be read")

    def broken_tree(pdf: pikepdf.Pdf) -> None:
        pdf.Root.Pages.Kids = pikepdf.Array([pikepdf.Integer(5)])
        pdf.Root.Pages.Count = 1
    assert "Pages tree includes non-dictionary object" in refused(build(edit=broken_tree), "it is damaged")
    with pytest.raises(InvalidDocument) as scanned:
        check_registrable(build(edit=broken_tree), URL, name="x.pdf")
    assert scanned.value.message == "PDF 'x.pdf' cannot be read: it is damaged (Accessing nonexistent PDF page number)"
    flate = refused(with_streams((b"definitely not deflate", ["/FlateDecode"])), "it is damaged")
    assert "incorrect header check" in flate
    truncated_xref = plain()[: plain().rindex(b"startxref")] + b"startxref\n9\n%%EOF\n"
    assert "(offset 9): xref not found" in refused(truncated_xref, "its cross-reference table is damaged")
    with pytest.raises(InvalidDocument, match="'grande.pdf' has"):
        check_pdf(plain(), name="grande.pdf", max_bytes=10)


def test_damaged_tries_qpdfs_repair_only_to_name_the_fault() -> None:
    broken = plain()[: plain().rindex(b"startxref")] + b"startxref\n9\n%%EOF\n"
    assert "cross-reference table" in damaged("a.pdf", RuntimeError("odd"), broken).message  # qpdf rebuilds it
    assert "cross-reference table" in damaged("a.pdf", RuntimeError("xref odd"), b"%PDF-1.4 junk").message
    assert "it is damaged" in damaged("a.pdf", RuntimeError("odd"), b"%PDF-1.4 junk").message


def test_warnings_refuse_the_file() -> None:
    class Warned:
        def __init__(self, warnings: list[str]) -> None:
            self.warnings = warnings

        def get_warnings(self) -> list[str]:
            return self.warnings

    pdf_open.refuse_warnings(Warned([]), "a.pdf", Limits())  # type: ignore[arg-type]
    with pytest.raises(InvalidDocument) as first:
        pdf_open.refuse_warnings(Warned(["first one", "second"]), "a.pdf")  # type: ignore[arg-type]
    assert first.value.message == "PDF 'a.pdf' cannot be read: it is damaged (first one)"
    memory = ["stream: memory limit exceeded"]
    with pytest.raises(InvalidDocument) as bomb:
        pdf_open.refuse_warnings(Warned(["other", *memory]), "a.pdf", Limits(max_decoded=5))  # type: ignore[arg-type]
    assert bomb.value.message.startswith("PDF 'a.pdf' decompresses to more than 5 bytes (the limit)")
    with pytest.raises(InvalidDocument, match="damaged"):
        pdf_open.refuse_warnings(Warned(memory), "a.pdf")  # type: ignore[arg-type]


def test_decoded_bytes_are_counted_exactly() -> None:
    content = len(b"BT /F1 12 Tf 72 720 Td (p0) Tj ET")  # the page's own content stream counts too
    assert check_decoded(plain()) == content
    assert check_decoded(with_streams((zlib.compress(b"\0" * 6000), ["/FlateDecode"]))) == content + 6000
    assert check_decoded(with_streams((a85_flate(b"\0" * 6000), ["/ASCII85Decode", "/FlateDecode"]))) == content + 6000
    rows = b"".join(b"\x00" + bytes(range(9)) for _ in range(100))  # PNG predictor rows: 1 tag + 9 bytes

    def predicted(pdf: pikepdf.Pdf) -> None:
        stream(pdf, a85_flate(rows), ["/ASCII85Decode", "/FlateDecode"],
               DecodeParms=pikepdf.Array([None, pikepdf.Dictionary(Predictor=12, Columns=9)]))
    # qpdf applies the predictor: 900 bytes out, not the 1,000 that inflate gives (the fast path would count)
    assert check_pdf(build(edit=predicted), limits=Limits(max_decoded=content + 999)) == 1


def test_page_area_of_a_crop_box_away_from_the_origin() -> None:
    def crop(x: float, y: float, width: float, height: float) -> Callable[[pikepdf.Pdf], None]:
        def edit(pdf: pikepdf.Pdf) -> None:
            pdf.pages[0].obj.CropBox = pikepdf.Array([x, y, x + width, y + height])
        return edit
    assert check_pdf(build(size=(10_000, 10_000), edit=crop(5000, 4000, 2 * 2384.0, 3370.0))) == 1  # exactly
    refused(build(size=(10_000, 10_000), edit=crop(5000, 4000, 2 * 2384.0, 3371.0)), "page 1 is 4,768 × 3,371 pt")

    def first_cropped_second_huge(pdf: pikepdf.Pdf) -> None:
        pdf.pages[0].obj.CropBox = pikepdf.Array([0, 0, 595, 842])
    refused(build(2, size=(10_000, 10_000), edit=first_cropped_second_huge), "page 2 is 10,000 × 10,000 pt")
    kept: list[pikepdf.Pdf] = []

    def media(box: list[float]) -> pikepdf.Page:
        pdf = pikepdf.new()
        kept.append(pdf)
        page = pdf.add_blank_page()
        page.obj.MediaBox = pikepdf.Array(box)
        return page
    assert visible_box(media([10, 20, 600, 800])) == (10, 20, 600, 800)
    assert visible_box(media([600, 20, 10, 800])) == (10, 20, 600, 800)


def test_read_never_takes_more_than_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "orden.pdf"
    path.write_bytes(plain())
    asked: list[int | None] = []
    real_open = Path.open

    def recording(self: Path, *args: Any, **kwargs: Any) -> Any:
        handle = real_open(self, *args, **kwargs)
        real_read = handle.read

        def read(size: int | None = None) -> bytes:
            asked.append(size)
            return real_read(size)
        handle.read = read
        return handle
    monkeypatch.setattr(Path, "open", recording)
    read_pdf(path, max_bytes=5000)
    assert asked == [len(plain()) + 1]  # its size and one more (a read of the limit would allocate the limit)
    asked.clear()
    real_stat = Path.stat

    def shrunk(self: Path, **kwargs: Any) -> Any:  # the file grows after it was measured
        result = real_stat(self, **kwargs)
        return type("Stat", (), {"st_size": 10, "st_mode": result.st_mode})() if self == path else result
    monkeypatch.setattr(Path, "stat", shrunk)
    with pytest.raises(InvalidDocument) as grown:
        read_pdf(path, max_bytes=100)
    assert asked == [11, 90]  # on to the limit and one more, no further
    assert grown.value.message == f"PDF {str(path)!r} has 101 bytes, over the 100-byte limit"
    monkeypatch.setattr(Path, "stat", real_stat)
    asked.clear()
    big = tmp_path / "grande.pdf"
    with big.open("wb") as handle:
        handle.write(b"%PDF-1.4\n")
        handle.truncate(5001)
    with pytest.raises(InvalidDocument) as caught:
        read_pdf(big, max_bytes=5000)
    assert caught.value.message == f"PDF {str(big)!r} has 5,001 bytes, over the 5,000-byte limit"
    assert asked == []  # refused from its size alone: not read


def test_more_places_of_another_address(decoded: Decoded) -> None:
    def opening(pdf: pikepdf.Pdf) -> None:
        pdf.Root.OpenAction = uri(OTHER)
    assert f"{OTHER} (run on opening, /OpenAction)" in other_address(build(edit=opening))

    def after_a_stray_entry(pdf: pikepdf.Pdf) -> None:
        pdf.pages[0].obj.Annots = pikepdf.Array([pikepdf.Integer(3)])
        link(pdf, uri(OTHER))
    assert f"{OTHER} (page 1 link)" in other_address(build(edit=after_a_stray_entry))
    long = "https://evil.example/" + "b" * 400
    cut = other_address(build(edit=lambda pdf: link(pdf, uri(long))))
    assert f"{long[:200]} (page 1 link)" in cut


def test_path_segments_add_up_over_the_page_streams(decoded: Decoded) -> None:
    def split(pdf: pikepdf.Pdf) -> None:
        pdf.pages[0].obj.Contents = pikepdf.Array([pdf.make_stream(drawing(20)), pdf.make_stream(drawing(20))])
    assert pages_read(decoded, build(edit=split)) == [1]


def test_pages_are_rendered_only_while_no_other_address_was_found(decoded: Decoded) -> None:
    def own_link(pdf: pikepdf.Pdf) -> None:
        pdf.pages[0].obj.Contents = pdf.make_stream(drawing(50))
        link(pdf, uri(URL + "#payload"))
    assert pages_read(decoded, build(edit=own_link)) == [1]  # its own address: the printed codes are read

    def other_link(pdf: pikepdf.Pdf) -> None:
        pdf.pages[0].obj.Contents = pdf.make_stream(drawing(50))
        link(pdf, uri(OTHER))
    decoded.asked.clear()
    other_address(build(edit=other_link))
    assert decoded.asked == []  # refused already: nothing rendered
    check_registrable(build(edit=other_link), URL, allow_other_urls=True, warn=lambda _: None)
    assert decoded.asked == [[1]]  # with the flag every address is listed, printed ones too


def test_a85_damage_names_zlibs_reason() -> None:
    garbage = with_streams((base64.a85encode(b"not zlib at all") + b"~>", ["/ASCII85Decode", "/FlateDecode"]))
    message = refused(garbage, "it is damaged (error decoding stream data for object ")
    assert "incorrect header check" in message
    short = with_streams((a85_flate(b"\0" * 50_000)[:-40] + b"~>", ["/ASCII85Decode", "/FlateDecode"]))
    assert refused(short, "it is damaged").split("(", 1)[1].startswith("error decoding stream data for object ")
    assert ": the compressed data ends early)" in refused(short, "damaged")


# -- what the checks spare, deciding the same ---------------------------------------------------------------

def test_qpdfs_limits_are_set_once_for_a_value(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, int]] = []
    real = pikepdf.settings.set_qpdf_limits

    def recording(**limits: int) -> Any:
        calls.append(limits)
        return real(**limits)
    monkeypatch.setattr(pikepdf.settings, "set_qpdf_limits", recording)
    monkeypatch.setattr(pdf_open, "_QPDF_LIMIT", [])  # as in a new process
    each = ("flate_max_memory", "run_length_max_memory", "png_max_memory", "tiff_max_memory", "dct_max_memory")
    try:
        for _ in range(3):
            check_pdf(plain())
        assert calls == [dict.fromkeys(each, MAX_DECODED_BYTES)]  # once, not once a file
        check_pdf(plain(), limits=Limits(max_decoded=70_000))
        check_pdf(plain(), limits=Limits(max_decoded=70_000))
        assert calls[1:] == [dict.fromkeys(each, 70_000)]
        assert {key: pikepdf.settings.get_qpdf_limits()[key] for key in each} == dict.fromkeys(each, 70_000)
    finally:
        check_pdf(plain())  # qpdf's limits are process-wide: the default again for the other tests
    assert {key: pikepdf.settings.get_qpdf_limits()[key] for key in each} == dict.fromkeys(each, MAX_DECODED_BYTES)


def kept(data: bytes) -> dict[tuple[int, int], bytes]:
    with open_checked(data) as checked:
        return dict(checked.decoded)


def objgens(data: bytes) -> list[tuple[int, int]]:
    """The object numbers of the streams `stream` added, in order."""
    with pikepdf.open(io.BytesIO(data)) as pdf:
        return [made.objgen for made in pdf.pages[0].Resources.Extra]


def test_the_damage_check_keeps_what_it_decoded_as_read_bytes_would() -> None:
    content = b"BT /F1 12 Tf 72 720 Td (p0) Tj ET"
    data = with_streams((zlib.compress(b"flate"), ["/FlateDecode"]), (b"\x81A\x80", ["/RunLengthDecode"]),
                        (b"\x81A\x80", ["/RL"]), (zlib.compress(b"\x81A\x80"), ["/FlateDecode", "/RL"]),
                        (a85_flate(b"ascii85"), ["/ASCII85Decode", "/FlateDecode"]), (b"jpeg", ["/DCTDecode"]),
                        (b"7a>", ["/AHx"]))
    flate, *_, hexed = objgens(data)
    with pikepdf.open(io.BytesIO(data)) as pdf:
        page = pdf.pages[0].obj.Contents.objgen
    # RunLength (read_bytes() leaves it encoded), ASCII85 + Flate (decoded apart) and images are not kept
    assert kept(data) == {page: content, flate: b"flate", hexed: b"z"}


def test_what_the_damage_check_keeps_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    data = with_streams((b"a" * 10, []), (b"b" * 20, []), (b"c" * 5, []))
    first, second, third = objgens(data)
    everything = kept(data)
    assert [everything[made] for made in (first, second, third)] == [b"a" * 10, b"b" * 20, b"c" * 5]
    content = len(b"BT /F1 12 Tf 72 720 Td (p0) Tj ET")
    monkeypatch.setattr(pdf_open, "KEEP_DECODED_BYTES", content + 30)  # the page's content is walked first
    assert sorted(kept(data)) == sorted([*(set(everything) - {third})])  # to the byte, then no further
    monkeypatch.setattr(pdf_open, "KEEP_DECODED_BYTES", content + 29)
    assert third in kept(data) and second not in kept(data)
    assert check_pdf(data) == 1


def test_many_files_share_what_they_keep_decoded(tmp_path: Path) -> None:
    from peru_compras.pdf.checked import read_checked_many

    data = with_streams((b"a" * 10, []), (b"b" * 20, []))
    sizes = sum(map(len, kept(data).values()))  # one file's content and both streams
    paths = []
    for number in range(3):
        paths.append(tmp_path / f"{number}.pdf")
        paths[-1].write_bytes(data)

    def shared(keep_total: int | None) -> list[int]:
        outcomes = read_checked_many(paths, keep_total=keep_total)
        try:
            return [sum(map(len, checked.decoded.values())) for checked in outcomes if isinstance(checked, CheckedPdf)]
        finally:
            for checked in outcomes:
                if isinstance(checked, CheckedPdf):
                    checked.close()

    assert shared(None) == [sizes] * 3  # unbounded together: each keeps what it would alone
    assert shared(2 * sizes) == [sizes, sizes, 0]  # the third finds the budget used up
    assert shared(sizes + 10) == [sizes, 10, 0]  # the second keeps the 10-byte stream only, to the byte
    assert shared(0) == [0, 0, 0]


def test_the_qr_precheck_reads_the_kept_content_not_the_stream() -> None:
    with open_checked(with_content({0: b"(text only) Tj"})) as checked:
        page = checked.pdf.pages[0]
        content = page.obj.Contents.objgen
        assert checks._may_show_qr(page, checked.decoded) is False
        assert checks._may_show_qr(page, {content: drawing(40)}) is True
        assert checks._may_show_qr(page, {content: b"BI /W 1 ID \x00 EI"}) is True
        assert checks._may_show_qr(page, {(content[0] + 1, 0): drawing(40)}) is False  # another object's


@pytest.mark.parametrize("filters", [["/RunLengthDecode"], ["/RL"]])
def test_a_runlength_page_content_is_refused_as_before(filters: list[str], decoded: Decoded) -> None:
    def edit(pdf: pikepdf.Pdf) -> None:
        made = pikepdf.Stream(pdf, b"\x05(text)\x80")
        made.Filter = pikepdf.Array([pikepdf.Name(f) for f in filters])
        pdf.pages[0].obj.Contents = made
    data = build(edit=edit)
    assert check_pdf(data) == 1  # the damage check decodes RunLength; read_bytes() does not
    messages = []
    for document in (data, open_checked(data, name="document")):
        with pytest.raises(InvalidDocument) as caught:
            check_registrable(document, URL)
        messages.append(caught.value.message)
    assert messages[0] == messages[1] and "cannot be read: it is damaged" in messages[0]


def test_markers_on_anything_a_content_array_holds(decoded: Decoded) -> None:
    def edit(pdf: pikepdf.Pdf) -> None:
        marked = pdf.make_stream(b"")
        marked[STAMP_KEY] = pikepdf.String(OTHER)
        pdf.pages[0].obj.Contents = pikepdf.Array([
            pdf.make_stream(b""), 5, pikepdf.Name.X, pikepdf.String(OTHER), pikepdf.Array([pikepdf.String(OTHER)]),
            pdf.make_indirect(pikepdf.Dictionary({STAMP_KEY: pikepdf.String(OTHER + "/d")})), marked])
    data = build(edit=edit)
    assert f"{OTHER}/d (page 1 stamp marker)" in other_address(data)
    assert f"{OTHER} (page 1 stamp marker)" in other_address(data)


def open_descriptors() -> dict[str, str]:
    """This process's open file descriptors and what each is (PDFs other tests left to the collector closed)."""
    gc.collect()
    found = {}
    for number in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            found[number.name] = str(number.readlink())
    return found


def verdicts() -> list[str]:
    """What the checks say of a valid file and of files damaged three ways (the exact messages)."""
    data = plain()
    start = data.rindex(b"startxref")
    at = data.index(b"/Length ") + len(b"/Length ")
    end = data.index(b">>", at)
    wrong_length = data[:at] + str(int(data[at:end].split()[0]) + 3).encode() + data[end:]
    said = [str(check_pdf(data))]
    for bad in (data[:start] + b"startxref\n9\n%%EOF\n", wrong_length, with_streams((b"zz>", ["/AHx"]))):
        with pytest.raises(InvalidDocument) as caught:
            check_pdf(bad, name="orden.pdf")
        said.append(caught.value.message)
    return said


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="Linux's /proc")
def test_pdfs_are_read_from_a_private_in_memory_copy() -> None:
    before = open_descriptors()
    with open_checked(plain()) as checked:
        assert checked.pages == 1
        opened = open_descriptors()
        assert [opened[number] for number in set(opened) - set(before)] == ["/memfd:peru-compras-pdf (deleted)"]
    assert open_descriptors() == before  # closed with the PDF


@pytest.mark.parametrize("without", ["memfd", "/proc", "memory"])
def test_without_an_in_memory_copy_a_bytesio_says_the_same(without: str, monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    said = verdicts()
    assert not any(word in line for line in said for word in ("proc", "BytesIO", "0x", "memfd"))
    assert "cross-reference table is damaged ((offset 9): xref not found)" in said[1]
    if without == "memfd":  # not Linux
        monkeypatch.delattr(pdf_open.os, "memfd_create")
    elif without == "/proc":
        monkeypatch.setattr(pdf_open, "PROC_FD", str(tmp_path / "none-{}"))
    else:  # the copy cannot be written
        (tmp_path / "read-only").write_bytes(b"")
        monkeypatch.setattr(pdf_open.os, "memfd_create", lambda *_: os.open(tmp_path / "read-only", os.O_RDONLY))
    before = open_descriptors()
    assert verdicts() == said
    with open_checked(plain()) as checked:
        assert checked.pages == 1 and open_descriptors() == before  # a BytesIO: no descriptor
    assert open_descriptors() == before  # nothing left open


def test_path_operators_glued_to_delimiters_count_and_non_streams_are_skipped(decoded: Decoded) -> None:
    glued = b"".join(b"[%d]0 d 0 0 1 1 re%%hidden\n" % n for n in range(40))  # a delimiter, not a space
    assert pages_read(decoded, with_content({0: glued})) == [1]
    assert pages_read(decoded, with_content({0: glued.replace(b"re%", b"rex%")})) == []

    def after_a_marker(pdf: pikepdf.Pdf) -> None:  # a dictionary (a marker's shape) first, then the drawing
        marker = pdf.make_indirect(pikepdf.Dictionary({STAMP_KEY: pikepdf.String(URL)}))
        pdf.pages[0].obj.Contents = pikepdf.Array([marker, pdf.make_stream(drawing(45))])
    assert pages_read(decoded, build(edit=after_a_marker)) == [1]
