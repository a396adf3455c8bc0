"""The stamp on real PDFs, read back by real tools: Poppler renders page 1 at 150 dpi, ZBar decodes the QR,
qpdf --check passes; and every broken kind of untrusted PDF is refused with one clear line."""

from __future__ import annotations

import io
import random
import shutil
import subprocess
from pathlib import Path

import pikepdf
import pytest
import segno

from peru_compras import qr
from peru_compras.errors import InvalidDocument
from peru_compras.order import Order, parse_order
from peru_compras.pdf import (
    INFO_KEY,
    PLACEMENTS,
    check_pdf,
    claimed_order_key,
    claimed_verify_url,
    read_pdf,
    stamp_pdf,
)

from . import pdfs

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

@pytest.mark.parametrize("kind", ["one_page", "six_pages_200_items", "incremental_update",
                                  "empty_user_password", "rotated_90", "rotated_270"])
def test_stamped_pdf_decodes_to_verify_url_and_passes_qpdf(kind: str, tmp_path: Path) -> None:
    record = pdfs.big_record() if kind == "six_pages_200_items" else pdfs.record()
    order, url = order_of(record)
    source = pdfs.order_pdf(record)
    if kind == "six_pages_200_items":
        assert len(pikepdf.open(io.BytesIO(source)).pages) == 6
    elif kind == "incremental_update":
        source = pdfs.incremental_update(source)
        assert source.count(b"%%EOF") == 2 and b"/Prev" in source
    elif kind == "empty_user_password":
        source = pdfs.encrypted(source, user="")
    elif kind.startswith("rotated"):
        source = pdfs.rotated(source, int(kind.rsplit("_", 1)[1]))
    check_pdf(source, name=kind)
    stamped = stamp_pdf(source, url, order=order)
    assert decode(stamped) == [url]
    qpdf_check(stamped, tmp_path)
    with pikepdf.open(io.BytesIO(stamped)) as pdf:
        assert str(pdf.docinfo[INFO_KEY]) == url
        assert pdf.is_encrypted == (kind == "empty_user_password")
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


def test_stamp_is_deterministic_idempotent_and_replaces_an_earlier_stamp(tmp_path: Path) -> None:
    order, url = order_of(pdfs.record())
    source = pdfs.order_pdf(pdfs.record())
    stamped = stamp_pdf(source, url, order=order)
    assert stamp_pdf(source, url, order=order) == stamped
    assert stamp_pdf(stamped, url, order=order) == stamped  # already carries this stamp
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
    monkeypatch.setenv("PERU_COMPRAS_MAX_PDF_PAGES", "5")
    with pytest.raises(InvalidDocument, match="6 pages, over the 5-page limit"):
        read_pdf(six)
    monkeypatch.delenv("PERU_COMPRAS_MAX_PDF_PAGES")
    monkeypatch.setenv("PERU_COMPRAS_MAX_PDF_BYTES", "40KB")
    with pytest.raises(InvalidDocument, match="over the 40,960-byte limit"):
        read_pdf(six)
    monkeypatch.delenv("PERU_COMPRAS_MAX_PDF_BYTES")
    many = tmp_path / "muchas.pdf"
    many.write_bytes(pdfs.many_pages(1001))
    with pytest.raises(InvalidDocument, match="1,001 pages, over the 1,000-page limit"):
        read_pdf(many)
