"""The stamp on real PDFs, read back by real tools: Poppler renders page 1 at 150 dpi, ZBar decodes the QR,
qpdf --check passes; and every broken kind of untrusted PDF is refused with one clear line."""

from __future__ import annotations

import io
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pikepdf
import pytest
import segno

from peru_compras import qr
from peru_compras.errors import InvalidDocument, InvalidInput
from peru_compras.order import Order, parse_order
from peru_compras.pdf import (
    INFO_KEY,
    PLACEMENTS,
    Limits,
    check_pdf,
    check_registrable,
    claimed_order_key,
    claimed_verify_url,
    read_pdf,
    stamp_pdf,
)
from peru_compras.settings import load_settings

from . import pdfs
from .conftest import Runner, write_json

BASE = "https://oc.example.pe"
TOOLS = ("pdftoppm", "zbarimg", "qpdf", "pdftotext")
pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS),
                                reason="needs poppler-utils, zbar-tools and qpdf (apt-get install)")


def order_of(record: dict[str, object]) -> tuple[Order, str]:
    order = parse_order(record)
    return order, BASE + order.verify_path


def decode(document: bytes, page: int = 1) -> list[str]:
    """What zbarimg reads from `page` rendered by pdftoppm at 150 dpi."""
    return qr.decode_page(document, page, dpi=150)


def qpdf_check(document: bytes, tmp_path: Path) -> None:
    path = tmp_path / "check.pdf"
    path.write_bytes(document)
    result = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def text_boxes(document: bytes, tmp_path: Path, page: int = 1) -> list[tuple[float, float, float, float]]:
    """Word boxes of a page in PDF points (origin top left), from pdftotext -bbox."""
    import re

    source = tmp_path / "boxes.pdf"
    source.write_bytes(document)
    html = subprocess.run(["pdftotext", "-bbox", "-f", str(page), "-l", str(page), str(source), "-"],
                          capture_output=True, text=True, check=True).stdout
    return [tuple(float(v) for v in m.groups()) for m in re.finditer(  # type: ignore[misc]
        r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)"', html)]


def page_text(document: bytes, tmp_path: Path, page: int = 1) -> str:
    source = tmp_path / "text.pdf"
    source.write_bytes(document)
    return subprocess.run(["pdftotext", "-f", str(page), "-l", str(page), str(source), "-"],
                          capture_output=True, text=True, check=True).stdout


def qr_box(document: bytes, page: int = 0) -> tuple[float, float, float, float]:
    """The stamp's QR rectangle (its link annotation) in pdftotext's coordinates (origin top left)."""
    with pikepdf.open(io.BytesIO(document)) as pdf:
        target = pdf.pages[page]
        height = float(target.mediabox[3])
        x0, y0, x1, y1 = (float(v) for v in target.obj.Annots[-1].Rect)
    return x0, height - y1, x1, height - y0


# -- the QR itself --------------------------------------------------------------------------------------

def test_qr_matrix_is_segnos_symbol_module_for_module() -> None:
    rng = random.Random(4)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789%."
    urls = [f"{BASE}/o/20131370998/OC-2026-{n:06d}" for n in range(40)]
    urls += [("http://127.0.0.1:8000/o/PY-RUC:80012345-6/" + "".join(rng.choice(alphabet) for _ in range(60)))
             [: rng.randint(12, 80)] for _ in range(160)]
    urls += [f"{BASE}/o/" + "ab1-" * (n // 4) for n in (150, 400, 700, 1000, 1400, 2000)]  # versions 9..38
    versions = set()
    for url in urls:
        expected = segno.make(url, error="m", micro=False)
        versions.add(expected.version)
        assert qr.qr_matrix(url) == tuple(bytes(row) for row in expected.matrix), url
    assert versions >= {2, 3, 4, 5, 9, 16, 22, 26, 31, 38}


def test_qr_svg_and_png_carry_the_url(tmp_path: Path) -> None:
    url = f"{BASE}/o/20131370998/OC-2026-004512"
    png = tmp_path / "qr.png"
    png.write_bytes(qr.png(url))
    out = subprocess.run(["zbarimg", "--raw", "-q", str(png)], capture_output=True, text=True)
    assert out.stdout.strip() == url
    assert qr.svg(url).startswith(b"<?xml") and b"<svg" in qr.svg(url)


# -- stamping ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["one_page", "six_pages_200_items", "incremental_update", "rotated_90",
                                  "rotated_270"])
def test_stamped_pdf_decodes_to_verify_url_and_passes_qpdf(kind: str, tmp_path: Path) -> None:
    record = pdfs.big_record() if kind == "six_pages_200_items" else pdfs.record()
    order, url = order_of(record)
    source = pdfs.order_pdf(record)
    if kind == "six_pages_200_items":
        assert len(pikepdf.open(io.BytesIO(source)).pages) == 6
    elif kind == "incremental_update":
        source = pdfs.incremental_update(source)
        assert source.count(b"%%EOF") == 2 and b"/Prev" in source
    elif kind.startswith("rotated"):
        source = pdfs.rotated(source, int(kind.rsplit("_", 1)[1]))
    check_pdf(source, name=kind)
    stamped = stamp_pdf(source, url, order=order)
    assert decode(stamped) == [url]
    qpdf_check(stamped, tmp_path)
    with pikepdf.open(io.BytesIO(stamped)) as pdf:
        assert str(pdf.docinfo[INFO_KEY]) == url
        assert len(pdf.pages) == (6 if kind == "six_pages_200_items" else 1)
    if kind == "incremental_update":
        assert "Visado: Abastecimiento" in page_text(stamped, tmp_path)


@pytest.mark.parametrize("placement", [p for p in PLACEMENTS if p != "last-page"])
def test_corner_stamp_hides_no_text(placement: str, tmp_path: Path) -> None:
    order, url = order_of(pdfs.record())
    source = pdfs.order_pdf(pdfs.record())
    stamped = stamp_pdf(source, url, order=order, placement=placement)
    assert decode(stamped) == [url]
    x0, y0, x1, y1 = qr_box(stamped)
    for wx0, wy0, wx1, wy1 in text_boxes(source, tmp_path):
        assert wx1 <= x0 or wx0 >= x1 or wy1 <= y0 or wy0 >= y1, f"the QR at {placement} covers a word"


def test_caption_names_order_and_entity_beside_the_qr(tmp_path: Path) -> None:
    record = pdfs.record("OC-2026-004512", entity="Municipalidad Provincial del Cusco — Sub Gerencia de Logística",
                         ruc="20546292658")
    order, url = order_of(record)
    stamped = stamp_pdf(pdfs.order_pdf(record), url, order=order)
    text = " ".join(page_text(stamped, tmp_path).split())
    assert "Orden de compra N° OC-2026-004512" in text
    assert "Municipalidad Provincial del Cusco" in text
    assert "Registrada en blockchain — verifique con el QR" in text


def test_last_page_constancia_carries_qr_and_summary(tmp_path: Path) -> None:
    order, url = order_of(pdfs.record())
    stamped = stamp_pdf(pdfs.order_pdf(pdfs.record()), url, order=order, placement="last-page")
    with pikepdf.open(io.BytesIO(stamped)) as pdf:
        assert len(pdf.pages) == 2
    assert decode(stamped, 1) == []  # page 1 untouched
    assert decode(stamped, 2) == [url]
    text = " ".join(page_text(stamped, tmp_path, 2).split())
    assert "Constancia de registro en blockchain" in text
    assert order.order_number in text and "Hospital Regional de Piura" in text and "PEN" in text
    qpdf_check(stamped, tmp_path)
    assert claimed_verify_url(pdfs.strip_docinfo(stamped)) == url


def test_stamp_is_deterministic_and_replaces_an_earlier_stamp(tmp_path: Path) -> None:
    order, url = order_of(pdfs.record())
    source = pdfs.order_pdf(pdfs.record())
    stamped = stamp_pdf(source, url, order=order)
    assert stamp_pdf(source, url, order=order) == stamped
    check_pdf(source)  # as read_pdf does before register stamps: the stamp reuses what the check opened
    assert stamp_pdf(source, url, order=order) == stamped
    again_same = stamp_pdf(stamped, url, order=order)  # markers are not trusted: drawn again, still one QR
    assert stamp_pdf(stamped, url, order=order) == again_same
    assert decode(again_same) == [url]
    with pikepdf.open(io.BytesIO(again_same)) as pdf:
        assert len(pdf.pages[0].obj.Annots) == 1
    other = f"{BASE}/o/20131370998/OC-2026-999999"
    again = stamp_pdf(stamped, other, order=order)
    assert decode(again) == [other]  # one QR, the new one; not two drawn over each other
    qpdf_check(again, tmp_path)
    with pikepdf.open(io.BytesIO(again)) as pdf:
        assert len(pdf.pages[0].obj.Annots) == 1


def test_claimed_url_survives_stripped_metadata_and_markers() -> None:
    order, url = order_of(pdfs.record())
    stamped = stamp_pdf(pdfs.order_pdf(pdfs.record()), url, order=order)
    assert claimed_verify_url(stamped) == url
    assert claimed_verify_url(pdfs.strip_docinfo(stamped)) == url
    bare = pdfs.strip_markers(stamped)
    assert claimed_verify_url(bare, decode=False) is None
    assert claimed_verify_url(bare) == url  # decoded from the printed QR
    assert claimed_order_key(bare) == "20131370998/OC-2026-004512"
    assert claimed_verify_url(pdfs.order_pdf(pdfs.record())) is None


# -- untrusted input --------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(pdfs.BROKEN))
def test_broken_pdfs_are_refused_with_one_line(kind: str, tmp_path: Path) -> None:
    maker, words = pdfs.BROKEN[kind]
    path = tmp_path / f"{kind}.pdf"
    path.write_bytes(maker(pdfs.order_pdf(pdfs.record())))
    with pytest.raises(InvalidDocument) as caught:
        read_pdf(path)
    message = str(caught.value)
    assert words in message and str(path) in message and "\n" not in message
    assert caught.value.exit_code == 2 and caught.value.hint
    with pytest.raises(InvalidDocument):
        stamp_pdf(path.read_bytes() if path.stat().st_size else b"", f"{BASE}/o/20131370998/X")


def test_size_and_page_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "grande.pdf"
    with big.open("wb") as handle:  # 50 MB + 1 byte, sparse: refused from its size alone
        handle.write(b"%PDF-1.4\n")
        handle.truncate(50 * 1024 * 1024 + 1)
    with pytest.raises(InvalidDocument, match="over the 52,428,800-byte limit"):
        read_pdf(big)
    six = tmp_path / "seis.pdf"
    six.write_bytes(pdfs.big_order_pdf())
    assert read_pdf(six)
    monkeypatch.setenv("PERU_COMPRAS_MAX_PDF_PAGES", "5")  # the library reads no environment: the defaults hold
    assert read_pdf(six)
    with pytest.raises(InvalidDocument, match="6 pages, over the 5-page limit"):
        read_pdf(six, limits=Limits.from_settings(load_settings({}, read_file=False)))
    monkeypatch.delenv("PERU_COMPRAS_MAX_PDF_PAGES")
    forty = Limits.from_settings(load_settings({}, env={"PERU_COMPRAS_MAX_PDF_BYTES": "40KB"}, read_file=False))
    with pytest.raises(InvalidDocument, match="over the 40,960-byte limit"):
        read_pdf(six, limits=forty)
    with pytest.raises(InvalidDocument, match="over the 40,960-byte limit"):
        stamp_pdf(six.read_bytes(), f"{BASE}/o/20131370998/X", limits=forty)
    many = tmp_path / "muchas.pdf"
    many.write_bytes(pdfs.many_pages(1001))
    with pytest.raises(InvalidDocument, match="1,001 pages, over the 1,000-page limit"):
        read_pdf(many)


# -- damaged files: our verdict is qpdf --check's ----------------------------------------------------------

def qpdf_check_code(document: bytes, tmp_path: Path) -> int:
    """The exit code of the real `qpdf --check` (0 clean, 2 errors, 3 warnings: it had to repair)."""
    path = tmp_path / "qpdf-check.pdf"
    path.write_bytes(document)
    return subprocess.run(["qpdf", "--check", str(path)], capture_output=True).returncode


@pytest.mark.parametrize("kind", sorted(pdfs.DAMAGED))
def test_damaged_pdfs_are_refused_where_qpdf_check_complains(kind: str, tmp_path: Path) -> None:
    source = pdfs.order_pdf(pdfs.record())
    damaged = pdfs.DAMAGED[kind](source)
    assert qpdf_check_code(source, tmp_path) == 0
    assert qpdf_check_code(damaged, tmp_path) in (2, 3)  # the damage is real, for qpdf too
    if kind != "xref_loop":  # why a strict open alone is not enough: it succeeds, the damage is read later
        with pikepdf.open(io.BytesIO(damaged), attempt_recovery=False) as lazily:
            assert len(lazily.pages) in (0, 1)
    path = tmp_path / f"{kind}.pdf"
    path.write_bytes(damaged)
    with pytest.raises(InvalidDocument) as caught:
        read_pdf(path)  # what register, register-batch (with or without --no-stamp) and verify read through
    message = str(caught.value)
    assert str(path) in message and "damaged" in message and "\n" not in message
    assert "0x" not in message and "BytesIO" not in message  # no memory address
    assert caught.value.exit_code == 2 and "qpdf" in (caught.value.hint or "")
    with pytest.raises(InvalidDocument, match="damaged"):
        stamp_pdf(damaged, f"{BASE}/o/20131370998/OC-2026-004512")  # even when called on its own


@pytest.mark.parametrize("kind", ["one_page", "six_pages", "incremental_update", "stamped", "free_entry",
                                  "runlength_image"])
def test_files_qpdf_check_passes_are_accepted(kind: str, tmp_path: Path) -> None:
    order, url = order_of(pdfs.record())
    source = pdfs.order_pdf(pdfs.big_record() if kind == "six_pages" else pdfs.record())
    if kind == "incremental_update":
        source = pdfs.incremental_update(source)
    elif kind == "stamped":
        source = stamp_pdf(source, url, order=order)
    elif kind == "runlength_image":
        source = pdfs.with_runlength_image(source)
    elif kind == "free_entry":  # a content stream whose table entry is free: null, valid for qpdf and us
        _, content = pdfs._page_and_content(source)
        source = pdfs._xref_entry(source, content, lambda entry: entry[:17] + b"f" + entry[18:])
    assert qpdf_check_code(source, tmp_path) == 0
    assert check_pdf(source, name=kind) >= 1


def test_many_files_read_at_once_get_qpdf_checks_verdict_each(tmp_path: Path) -> None:
    """read_checked_many (a batch's workers read a chunk of PDFs step by step) against the real qpdf --check,
    on files written by other programs: qpdf's own writer (object streams, linearized, QDF) and cairo's
    (pdftocairo), beside every damaged kind."""
    from peru_compras.pdf import CheckedPdf, read_checked_many

    source = pdfs.order_pdf(pdfs.record())
    (tmp_path / "plain.pdf").write_bytes(source)
    files = [tmp_path / "plain.pdf"]
    for name, flags in (("objstm", ["--object-streams=generate"]), ("linear", ["--linearize"]), ("qdf", ["--qdf"])):
        files.append(tmp_path / f"{name}.pdf")
        subprocess.run(["qpdf", *flags, str(files[0]), str(files[-1])], check=True)
    if shutil.which("pdftocairo"):
        files.append(tmp_path / "cairo.pdf")
        subprocess.run(["pdftocairo", "-pdf", str(files[0]), str(files[-1])], check=True)
    for kind in sorted(pdfs.DAMAGED):
        files.append(tmp_path / f"damaged-{kind}.pdf")
        files[-1].write_bytes(pdfs.DAMAGED[kind](source))
    verdicts = {path.name: subprocess.run(["qpdf", "--check", str(path)], capture_output=True).returncode == 0
                for path in files}
    outcomes = read_checked_many(files)
    try:
        assert {path.name: isinstance(outcome, CheckedPdf) for path, outcome in zip(files, outcomes, strict=True)
                } == verdicts
    finally:
        for outcome in outcomes:
            if isinstance(outcome, CheckedPdf):
                outcome.close()
    assert sum(verdicts.values()) >= 4  # the files other programs wrote are among those accepted


# -- encrypted files --------------------------------------------------------------------------------------

def test_encrypted_pdfs_are_refused_even_without_a_password(tmp_path: Path) -> None:
    source = pdfs.encrypted(pdfs.order_pdf(pdfs.record()), user="")
    path = tmp_path / "cifrado.pdf"
    path.write_bytes(source)
    with pytest.raises(InvalidDocument) as caught:
        read_pdf(path)
    assert "is encrypted (its owner's restrictions: no modify)" in str(caught.value)
    assert "qpdf --decrypt" in (caught.value.hint or "")
    with pytest.raises(InvalidDocument, match="encrypted"):
        stamp_pdf(source, f"{BASE}/o/20131370998/OC-2026-004512")


# -- bombs: refused quickly, by name -------------------------------------------------------------------------

def _in_child(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`code` in a fresh interpreter, bounded: a regression fails the test instead of hanging it."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          cwd=Path(__file__).resolve().parent.parent)


@pytest.mark.parametrize(("maker", "words"), [
    ("huge_page", "over the page-size limit"),
    ("flate_bomb", "decompresses to more than 268,435,456 bytes"),
    ("ascii85_flate_bomb", "decompresses to more than 268,435,456 bytes"),
])
def test_bombs_are_refused_by_name(maker: str, words: str) -> None:
    code = (f"from tests import pdfs\nfrom peru_compras.pdf import check_pdf\ndata = pdfs.{maker}()\n"
            f"assert len(data) < {3_000_000 if 'ascii85' in maker else 5000}, len(data)\n"
            "try:\n    check_pdf(data, name='bomba.pdf')\n"
            "except Exception as exc:\n    print(type(exc).__name__, exc)\n")
    result = _in_child(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("InvalidDocument PDF 'bomba.pdf'") and words in result.stdout


def test_rendering_for_the_qr_is_bounded_in_pixels_and_time() -> None:
    """Past check_pdf (e.g. a library caller): a 10,000-point page is drawn at most 1,754 pixels a side,
    and a renderer stuck in a bomb is stopped at the time limit with a named error."""
    code = ("from tests import pdfs\nfrom peru_compras import qr\n"
            "print(qr.decode_page(pdfs.huge_page(), 1))\n"
            "try:\n    qr.decode_page(pdfs.flate_bomb(), 1, timeout=2)\n"
            "except qr.RenderError as exc:\n    print('RenderError', exc, exc.exit_code)\n")
    result = _in_child(code, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "[]"
    assert lines[1].startswith("RenderError page 1 of the PDF could not be rendered within 2 s")
    assert lines[1].endswith(" 2")  # exit code: bad input


# -- active content -----------------------------------------------------------------------------------------

URL = f"{BASE}/o/20131370998/OC-2026-004512"


@pytest.mark.parametrize("kind", sorted(pdfs.ACTIVE))
def test_active_content_is_refused_naming_what_was_found(kind: str) -> None:
    document = pdfs.active(pdfs.order_pdf(pdfs.record()), kind)
    assert check_pdf(document, name=kind) == 1  # a well-formed PDF: refused for what it carries, not damage
    with pytest.raises(InvalidDocument) as caught:
        check_registrable(document, URL, name=f"{kind}.pdf")
    message = str(caught.value)
    assert message.startswith(f"PDF '{kind}.pdf' carries active content: ") and pdfs.ACTIVE[kind][1] in message
    assert "\n" not in message and "print it to PDF again" in (caught.value.hint or "")


def test_plain_and_stamped_pdfs_are_registrable() -> None:
    order, url = order_of(pdfs.record())
    source = pdfs.order_pdf(pdfs.record())
    check_registrable(source, url)
    check_registrable(stamp_pdf(source, url, order=order), url)  # our own QR and link, for this URL


# -- other addresses: links, markers, printed QR codes ------------------------------------------------------

def test_a_link_to_another_host_is_refused_or_warned_with_the_flag() -> None:
    document = pdfs.with_link(pdfs.order_pdf(pdfs.record()), "https://evil.example/pago")
    with pytest.raises(InvalidDocument, match=r"another address .*https://evil\.example/pago \(page 1 link\)"):
        check_registrable(document, URL)
    warnings: list[str] = []
    check_registrable(document, URL, allow_other_urls=True, warn=warnings.append)
    assert len(warnings) == 1 and "https://evil.example/pago (page 1 link)" in warnings[0]


@pytest.mark.parametrize("marked_qr", [True, False], ids=["qr_in_marked_stream", "qr_beside_a_marker"])
def test_fake_stamp_with_markers_and_a_printed_evil_qr(marked_qr: bool, tmp_path: Path) -> None:
    order, url = order_of(pdfs.record())
    evil = "https://evil.example/o/20131370998/OC-2026-004512"
    fake = pdfs.fake_stamp(pdfs.order_pdf(pdfs.record()), url, evil, marked_qr=marked_qr)
    assert decode(fake) == [evil]  # what a clerk's phone would open
    assert claimed_verify_url(fake, decode=False) == url  # the markers lie
    with pytest.raises(InvalidDocument, match=r"https://evil\.example/\S+ \(QR printed on page 1\)"):
        check_registrable(fake, url)  # refused as is (--no-stamp) and before stamping
    stamped = stamp_pdf(fake, url, order=order)  # the stamp itself trusts no marker: it draws again
    if marked_qr:  # what carried our marker is taken off: only our QR remains
        assert decode(stamped) == [url]
        check_registrable(stamped, url)
    else:  # the unmarked QR stays on the page, so registering the result is refused too
        assert set(decode(stamped)) == {url, evil}
        with pytest.raises(InvalidDocument, match="evil.example"):
            check_registrable(stamped, url)


# -- the attacks through the CLI, on a real chain ---------------------------------------------------------

def test_fake_stamp_and_another_orders_qr_are_refused_by_register_and_batches(cli: Runner, tmp_path: Path) -> None:
    assert cli("deploy", "--json").code == 0
    genuine = pdfs.record("OC-2026-710001")
    other = pdfs.record("OC-2026-710002")
    url = "https://oc.example.pe/o/20131370998/OC-2026-710001"
    evil = "https://evil.example/o/20131370998/OC-2026-710001"
    genuine_file = write_json(tmp_path / "genuina.json", genuine)
    other_file = write_json(tmp_path / "otra.json", other)
    # the genuine order, registered and stamped as it should be: the fake claims to be it
    plain = tmp_path / "genuina.pdf"
    plain.write_bytes(pdfs.order_pdf(genuine))
    assert cli("register", str(genuine_file), str(plain), "--json").code == 0
    fake = tmp_path / "falsa.pdf"
    fake.write_bytes(pdfs.fake_stamp(pdfs.order_pdf(other), url.replace("710001", "710002"), evil,
                                     marked_qr=False))
    for extra in ((), ("--no-stamp",)):
        refused = cli("register", str(other_file), str(fake), *extra, "--json")
        assert refused.code == 2, refused.stdout + refused.stderr
        assert "evil.example" in refused.stderr and "QR printed on page 1" in refused.stderr
    # the QR of order 710001 (drawn by render) on the PDF of order 710002, hashed as it is: refused
    rendered = tmp_path / "de-otra.pdf"
    made = cli("render", str(genuine_file), "--out", str(rendered), "--json")
    assert made.code == 0, made.stderr
    folder = tmp_path / "lote"
    folder.mkdir()
    (folder / "a.pdf").write_bytes(rendered.read_bytes())
    (folder / "b.pdf").write_bytes(pdfs.order_pdf(pdfs.record("OC-2026-710003")))
    rows = [dict(other, pdf="a.pdf"), dict(pdfs.record("OC-2026-710003"), pdf="b.pdf")]
    (folder / "lote.jsonl").write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    batch = cli("register-batch", str(folder / "lote.jsonl"), "--no-stamp", "--json")
    lines = [json.loads(line) for line in batch.stdout.splitlines()]
    errors = {line.get("order_number"): line.get("error", "") for line in lines if "error" in line}
    assert url in errors["OC-2026-710002"] and "another address" in errors["OC-2026-710002"]
    assert lines[-1]["summary"]["registered"] == 1  # the clean row went on
    # registered only with the explicit flag, and a warning naming the other address
    allowed = cli("register", str(other_file), str(rendered), "--no-stamp", "--allow-other-urls", "--json")
    assert allowed.code == 0, allowed.stderr
    assert "warning:" in allowed.stderr and url in allowed.stderr
    # verify never calls the fake authentic
    for document in (fake, pdfs_path(tmp_path, pdfs.fake_stamp(pdfs.order_pdf(genuine), url, evil))):
        verdict = cli("verify", str(document), "--json")
        assert verdict.code == 1 and verdict.json()["status"] in ("altered", "not_registered"), verdict.stdout


def pdfs_path(folder: Path, data: bytes) -> Path:
    path = folder / f"doc-{len(data)}.pdf"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("maker", ["huge_page", "flate_bomb"])
def test_verify_refuses_bombs_quickly_by_name(maker: str, cli: Runner, tmp_path: Path) -> None:
    path = pdfs_path(tmp_path, getattr(pdfs, maker)())
    result = cli("verify", str(path), timeout=60)  # a regression fails here instead of hanging
    assert result.code == 2, result.stdout + result.stderr
    assert ("over the page-size limit" if maker == "huge_page" else "decompresses to more than") in result.stderr


# -- signed QR codes: verify URL + "#" + payload --------------------------------------------------------------

def signed_text(order: Order, url: str) -> str:
    """The QR text registration stamps with a signer (peru_compras.signed_qr): `url` + "#" + payload."""
    from peru_compras.signed_qr import QrSigner, qr_text

    text, warning = qr_text(url, order, QrSigner(bytes.fromhex("11" * 32), 31337, "0x" + "22" * 20))
    assert warning is None and text.startswith(url + "#") and len(text) <= 200
    return text


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_signed_qr_is_stamped_whole_and_the_claim_ignores_its_fragment(placement: str, tmp_path: Path) -> None:
    order, url = order_of(pdfs.record())
    text = signed_text(order, url)
    stamped = stamp_pdf(pdfs.order_pdf(pdfs.record()), text, order=order, placement=placement)
    page = 2 if placement == "last-page" else 1
    assert decode(stamped, page) == [text]  # 197 characters, QR version 10, read at 150 dpi
    qpdf_check(stamped, tmp_path)
    with pikepdf.open(io.BytesIO(stamped)) as pdf:
        assert str(pdf.docinfo[INFO_KEY]) == url  # the markers name the order, never the payload
        assert str(pdf.pages[page - 1].obj.Annots[-1].A.URI) == text  # the link opens the page with it
    for copy in (stamped, pdfs.strip_docinfo(stamped), pdfs.strip_markers(stamped)):
        assert claimed_verify_url(copy) == url
        assert claimed_order_key(copy) == "20131370998/OC-2026-004512"
    check_registrable(stamped, url)  # our own signed QR is this order's address
    check_registrable(stamped, text)


def test_signed_and_plain_stamps_replace_each_other() -> None:
    order, url = order_of(pdfs.record())
    text = signed_text(order, url)
    plain = stamp_pdf(pdfs.order_pdf(pdfs.record()), url, order=order)
    signed = stamp_pdf(plain, text, order=order)
    assert decode(signed) == [text]
    again = stamp_pdf(signed, url, order=order)
    assert decode(again) == [url]  # one QR, the new one
    fragment = text.split("#", 1)[1].encode()
    assert fragment in signed and fragment not in again  # the signed stamp's link is gone with it
    with pikepdf.open(io.BytesIO(again)) as pdf:
        assert len(pdf.pages[0].obj.Annots) == 1
    assert claimed_order_key(plain) == claimed_order_key(signed) == "20131370998/OC-2026-004512"


def test_another_orders_signed_qr_is_still_another_address() -> None:
    order, url = order_of(pdfs.record())
    other_order, other = order_of(pdfs.record("OC-2026-999999"))
    stamped = stamp_pdf(pdfs.order_pdf(pdfs.record()), signed_text(other_order, other), order=other_order)
    with pytest.raises(InvalidDocument, match=r"another address .*OC-2026-999999"):
        check_registrable(stamped, url)


def test_a_qr_text_over_200_characters_is_refused() -> None:
    order, url = order_of(pdfs.record())
    with pytest.raises(InvalidInput, match="201 characters, over 200"):
        stamp_pdf(pdfs.order_pdf(pdfs.record()), url + "#" + "A" * (200 - len(url)), order=order)
