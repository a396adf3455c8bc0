"""`render` draws a Spanish purchase order with its QR already printed; `qr` writes the QR alone.
Read back with pdftotext, pdftoppm + zbarimg and qpdf."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import pikepdf
import pytest

from peru_compras.order import parse_order
from peru_compras.pdf import stamp_pdf
from peru_compras.render import BOTTOM_MARGIN, render_order

from . import conftest, pdfs
from .test_pdf import BASE, decode, page_text, qpdf_check, qr_box, text_boxes

pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in ("pdftoppm", "zbarimg", "qpdf", "pdftotext")),
                                reason="needs poppler-utils, zbar-tools and qpdf (apt-get install)")


def test_render_200_items_spans_pages_with_qr_totals_and_delivery(tmp_path: Path) -> None:
    record = pdfs.big_record()
    order = parse_order(record)
    url = BASE + order.verify_path
    document = render_order(order, verify_url=url)
    with pikepdf.open(io.BytesIO(document)) as pdf:
        pages = len(pdf.pages)
    assert pages >= 5
    assert decode(document) == [url]
    qpdf_check(document, tmp_path)
    first = " ".join(page_text(document, tmp_path, 1).split())
    last = " ".join(page_text(document, tmp_path, pages).split())
    assert "ORDEN DE COMPRA N° OC-2026-009999" in first and "Hospital Regional de Piura" in first
    assert "Fecha de emisión: 2026-11-20" in first and "Distribuidora Andina del Perú S.A.C." in first
    assert f"Página 1 de {pages}" in first and f"Página {pages} de {pages}" in last
    assert "200 " in last and f"{float(record['total']['amount']):,.2f}" in last
    assert "Plazo de entrega: 15 días calendario" in last and "Almacén central" in last
    for page in range(2, pages + 1):  # the items table's header repeats on every page
        assert "Descripción" in page_text(document, tmp_path, page)


def test_render_is_deterministic_and_stamping_it_again_draws_one_qr() -> None:
    order = parse_order(pdfs.record())
    url = BASE + order.verify_path
    document = render_order(order, verify_url=url)
    assert render_order(order, verify_url=url) == document
    again = stamp_pdf(document, url, order=order)  # its markers are not trusted: the stamp is drawn again
    assert decode(again) == [url] and stamp_pdf(document, url, order=order) == again
    with pikepdf.open(io.BytesIO(again)) as pdf:
        assert len(pdf.pages[0].obj.Annots) == 1


def test_render_keeps_the_qr_clear_of_the_text(tmp_path: Path) -> None:
    order = parse_order(pdfs.record(items=30))
    url = BASE + order.verify_path
    plain = render_order(order)
    stamped = render_order(order, verify_url=url)
    x0, y0, x1, y1 = qr_box(stamped)
    assert 842 - y0 < BOTTOM_MARGIN  # the QR sits inside the free bottom margin
    for wx0, wy0, wx1, wy1 in text_boxes(plain, tmp_path):
        assert wx1 <= x0 or wx0 >= x1 or wy1 <= y0 or wy0 >= y1


def test_render_keeps_accents_and_replaces_what_helvetica_cannot_draw(tmp_path: Path) -> None:
    record = pdfs.record(entity="Municipalidad Distrital de Ŝan Martín de Porres — Área Ñ")
    document = render_order(parse_order(record))
    text = " ".join(page_text(document, tmp_path).split())
    assert "Municipalidad Distrital de San Martín de Porres — Área Ñ" in text
    assert "Alcohol etílico 70°" in text


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PERU_COMPRAS_BASE_URL": BASE, "HOME": str(tmp_path)}
    return conftest.run_cli(list(args), cwd=tmp_path, env=env, timeout=60)


def test_render_and_qr_commands(tmp_path: Path) -> None:
    order_file = tmp_path / "orden.json"
    order_file.write_text(json.dumps(pdfs.record("OC-2026-000777"), ensure_ascii=False), encoding="utf-8")
    url = f"{BASE}/o/20131370998/OC-2026-000777"

    rendered = run_cli(tmp_path, "render", str(order_file), "--out", "orden.pdf", "--json")
    assert rendered.returncode == 0, rendered.stderr
    assert json.loads(rendered.stdout) == {"file": "orden.pdf", "verify_url": url,
                                           "bytes": (tmp_path / "orden.pdf").stat().st_size}
    assert decode((tmp_path / "orden.pdf").read_bytes()) == [url]

    png = run_cli(tmp_path, "qr", str(order_file), "--format", "png", "--out", "qr.png", "--json")
    assert png.returncode == 0, png.stderr
    assert json.loads(png.stdout)["verify_url"] == url and json.loads(png.stdout)["file"] == "qr.png"
    read = subprocess.run(["zbarimg", "--raw", "-q", str(tmp_path / "qr.png")], capture_output=True, text=True)
    assert read.stdout.strip() == url

    svg = run_cli(tmp_path, "qr", str(order_file), "--json")
    assert svg.returncode == 0, svg.stderr
    assert json.loads(svg.stdout)["file"] == "qr-OC-2026-000777.svg"
    assert (tmp_path / "qr-OC-2026-000777.svg").read_bytes().startswith(b"<?xml")

    bad = run_cli(tmp_path, "qr", str(order_file), "--format", "gif")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--format 'gif'" in bad.stderr
