"""Test PDFs, made here with ReportLab and pikepdf: realistic Spanish purchase orders as an entity's own
system would print them (not peru-compras' renderer), and every kind of broken input.

Valid inputs: :func:`order_pdf` (one page, letterhead with an embedded TrueType font and a logo image,
about 50 KB, Helvetica body so amounts are plain text in the content stream), :func:`big_order_pdf`
(200 items over exactly 6 pages), :func:`incremental_update` (a visa appended as a PDF incremental update),
:func:`encrypted` with an empty user password, :func:`rotated`.

Broken inputs (:data:`BROKEN`): not a PDF, zero bytes, truncated, damaged cross-reference table,
encrypted with a user password.
"""

from __future__ import annotations

import io
import random
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pikepdf
import reportlab
from PIL import Image
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

ENTITY_RUC = "20131370998"
SUPPLIER_RUC = "20608712411"
_FONTS = Path(reportlab.__file__).parent / "fonts"


def record(order_number: str = "OC-2026-004512", *, items: int = 3, entity: str = "Hospital Regional de Piura",
           ruc: str = ENTITY_RUC) -> dict[str, Any]:
    """A realistic record with Spanish accents (°, —, ñ, tildes); `items` lines."""
    catalogue = [
        ("Guantes de nitrilo talla M, caja × 100", "CAJA", "18.50"),
        ("Mascarilla quirúrgica descartable de tres pliegues", "UNIDAD", "0.35"),
        ("Alcohol etílico 70°, frasco 1 L", "FRASCO", "9.90"),
        ("Jeringa descartable 5 mL con aguja 21G × 1½\"", "UNIDAD", "0.42"),
        ("Algodón hidrófilo, paquete 500 g", "PAQUETE", "12.80"),
        ("Solución de cloruro de sodio 0,9 % — bolsa 1 L", "BOLSA", "3.75"),
        ("Esparadrapo antialérgico 2,5 cm × 9 m", "ROLLO", "4.60"),
        ("Termómetro clínico digital, punta flexible", "UNIDAD", "21.00"),
    ]
    lines = []
    total = Decimal(0)
    for index in range(items):
        description, unit, price = catalogue[index % len(catalogue)]
        if items > len(catalogue):
            description = f"{description} (lote {index // len(catalogue) + 1})"
        quantity = str(10 + (index * 37) % 490)
        total += Decimal(quantity) * Decimal(price)
        lines.append({"description": description, "quantity": quantity, "unit": unit, "unit_price": price})
    return {
        "order_number": order_number,
        "issued_on": "2026-11-20",
        "entity": {"name": entity, "ruc": ruc},
        "buyer": {"name": "Unidad de Logística — Oficina de Abastecimiento", "ruc": ruc},
        "supplier": {"name": "Distribuidora Andina del Perú S.A.C.", "ruc": SUPPLIER_RUC},
        "items": lines,
        "total": {"amount": f"{total:.2f}", "currency": "PEN"},
        "delivery": {"place": "Almacén central, Av. Independencia 1010, Castilla, Piura", "term_days": 15},
    }


def _logo() -> ImageReader:
    """A deterministic 'photographic' logo (noise does not compress: it makes the file realistic in size)."""
    rng = random.Random(2026)
    size = 100
    image = Image.new("RGB", (size, size))
    image.putdata([(rng.randrange(120, 256), rng.randrange(0, 90), rng.randrange(0, 90))
                   for _ in range(size * size)])
    return ImageReader(image)


def _register_font() -> str:
    if "Vera-Bold" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("Vera-Bold", str(_FONTS / "VeraBd.ttf")))
    return "Vera-Bold"


ROWS_FIRST_PAGE = 30
ROWS_PER_PAGE = 38


def order_pdf(data: dict[str, Any], *, logo: bool = True) -> bytes:
    """The order as the entity's back-office system prints it: A4, letterhead (embedded TrueType + logo),
    parties, items table over as many pages as needed, total, delivery. The bottom 35 mm stay free."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, invariant=1, pageCompression=1)
    pdf.setTitle(f"Orden de compra {data['order_number']}")
    pdf.setAuthor(data["entity"]["name"])
    width, height = A4
    title_font = _register_font()
    items = data["items"]
    pages = 1 + max(0, -(-(len(items) - ROWS_FIRST_PAGE) // ROWS_PER_PAGE))
    index = 0
    for page in range(1, pages + 1):
        y = height - 20 * mm
        if page == 1:
            if logo:
                pdf.drawImage(_logo(), 18 * mm, height - 38 * mm, 22 * mm, 22 * mm)
            pdf.setFont(title_font, 14)
            pdf.drawString(45 * mm, height - 24 * mm, data["entity"]["name"])
            pdf.setFont("Helvetica", 9)
            pdf.drawString(45 * mm, height - 30 * mm, f"RUC {data['entity']['ruc']} — Sistema de Abastecimiento")
            pdf.setFont(title_font, 16)
            pdf.drawCentredString(width / 2, height - 50 * mm, f"ORDEN DE COMPRA N° {data['order_number']}")
            pdf.setFont("Helvetica", 9)
            y = height - 60 * mm
            for label, value in (("Fecha de emisión", data["issued_on"]),
                                 ("Comprador", data["buyer"]["name"]),
                                 ("Proveedor", f"{data['supplier']['name']} — RUC {data['supplier']['ruc']}")):
                pdf.drawString(18 * mm, y, f"{label}: {value}")
                y -= 5 * mm
            y -= 3 * mm
            rows = ROWS_FIRST_PAGE
        else:
            pdf.setFont("Helvetica", 8)
            pdf.drawString(18 * mm, y, f"Orden de compra N° {data['order_number']} (continuación)")
            y -= 8 * mm
            rows = ROWS_PER_PAGE
        pdf.setFillColor(colors.HexColor("#1f3b57"))
        pdf.rect(18 * mm, y - 1.5 * mm, width - 36 * mm, 6 * mm, stroke=0, fill=1)
        pdf.setFillColor(colors.white)
        pdf.setFont("Helvetica-Bold", 8)
        for x, text in ((20, "Ítem"), (30, "Descripción"), (113, "Cantidad"), (132, "Unidad"), (153, "P. unit.")):
            pdf.drawString(x * mm, y, text)
        pdf.drawRightString(width - 20 * mm, y, "Subtotal")
        pdf.setFillColor(colors.black)
        pdf.setFont("Helvetica", 8)
        y -= 6 * mm
        for _ in range(rows):
            if index >= len(items):
                break
            item = items[index]
            subtotal = Decimal(item["quantity"]) * Decimal(item["unit_price"])
            pdf.drawString(20 * mm, y, str(index + 1))
            pdf.drawString(30 * mm, y, item["description"][:58])
            pdf.drawRightString(127 * mm, y, item["quantity"])
            pdf.drawString(132 * mm, y, item["unit"])
            pdf.drawRightString(166 * mm, y, item["unit_price"])
            pdf.drawRightString(width - 20 * mm, y, f"{subtotal:,.2f}")
            y -= 5.5 * mm
            index += 1
        if page == pages:
            y -= 4 * mm
            pdf.setFont("Helvetica-Bold", 10)
            pdf.drawRightString(width - 20 * mm, y, f"Total: {data['total']['currency']} {data['total']['amount']}")
            pdf.setFont("Helvetica", 9)
            delivery = data["delivery"]
            term = (f"{delivery['term_days']} días calendario" if "term_days" in delivery
                    else f"hasta el {delivery['deadline']}")
            pdf.drawString(18 * mm, y - 8 * mm, f"Plazo de entrega: {term}")
            pdf.drawString(18 * mm, y - 13 * mm, f"Lugar de entrega: {delivery['place']}")
        pdf.setFont("Helvetica", 7)
        pdf.drawString(18 * mm, 40 * mm, f"Página {page} de {pages}")
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def big_record() -> dict[str, Any]:
    """200 items: six pages with :func:`order_pdf`."""
    return record("OC-2026-009999", items=200)


def big_order_pdf() -> bytes:
    return order_pdf(big_record())


def alter_amount(document: bytes, old: str, new: str) -> bytes:
    """A forged copy: `old` replaced by `new` in page 1's text (the rest, QR included, untouched);
    still a valid PDF."""
    with pikepdf.open(io.BytesIO(document)) as pdf:
        page = pdf.pages[0]
        for stream in page.obj.Contents if isinstance(page.obj.Contents, pikepdf.Array) else [page.obj.Contents]:
            raw = stream.read_bytes()
            if f"({old})".encode() in raw:
                stream.write(raw.replace(f"({old})".encode(), f"({new})".encode()))
                break
        else:
            raise AssertionError(f"{old!r} not found on page 1")
        out = io.BytesIO()
        pdf.save(out)
        return out.getvalue()


def strip_docinfo(document: bytes) -> bytes:
    """The same PDF without its document information dictionary (as some tools save it)."""
    with pikepdf.open(io.BytesIO(document)) as pdf:
        if "/Info" in pdf.trailer:
            del pdf.trailer["/Info"]
        out = io.BytesIO()
        pdf.save(out)
        return out.getvalue()


def strip_markers(document: bytes) -> bytes:
    """Docinfo gone and every annotation and extra stream key dropped: only the printed QR remains,
    as after printing and scanning or a 'print to PDF'."""
    with pikepdf.open(io.BytesIO(document)) as pdf:
        if "/Info" in pdf.trailer:
            del pdf.trailer["/Info"]
        for page in pdf.pages:
            if "/Annots" in page.obj:
                del page.obj["/Annots"]
            contents = page.obj.Contents
            streams = list(contents) if isinstance(contents, pikepdf.Array) else [contents]
            data = b"\n".join(stream.read_bytes() for stream in streams)
            page.obj.Contents = pdf.make_stream(data)
        out = io.BytesIO()
        pdf.save(out)
        return out.getvalue()


def incremental_update(document: bytes) -> bytes:
    """`document` plus a classic incremental update (new Info dictionary and a visa line drawn on page 1
    through a new page object), with ``/Prev`` pointing at the original cross-reference section."""
    with pikepdf.open(io.BytesIO(document)) as pdf:
        size = int(pdf.trailer.Size)
        root = pdf.trailer.Root.objgen
        page = pdf.pages[0].obj
        page_number, page_gen = page.objgen
        contents = page.Contents
        old_contents = ([c.objgen for c in contents] if isinstance(contents, pikepdf.Array) else [contents.objgen])
        page_dict = {key: value for key, value in page.items() if key != "/Contents"}
        page_text = pikepdf.Dictionary(page_dict).unparse(resolved=False)
    start = int(re.findall(rb"startxref\s+(\d+)", document)[-1])
    visa = b"BT /F1 9 Tf 400 80 Td (Visado: Abastecimiento) Tj ET"
    body = bytearray(document if document.endswith(b"\n") else document + b"\n")
    offsets: dict[int, int] = {}
    stream_number, info_number = size, size + 1
    offsets[stream_number] = len(body)
    body += (f"{stream_number} 0 obj\n<< /Length {len(visa)} >>\nstream\n".encode() + visa
             + b"\nendstream\nendobj\n")
    offsets[info_number] = len(body)
    body += (f"{info_number} 0 obj\n<< /Title (Orden de compra \\(visada\\)) /Producer (Visador 1.0) >>\n"
             f"endobj\n").encode()
    refs = " ".join(f"{n} {g} R" for n, g in old_contents) + f" {stream_number} 0 R"
    page_body = page_text.decode("latin-1").rstrip()[:-2] + f" /Contents [ {refs} ] >>"
    offsets[page_number] = len(body)
    body += f"{page_number} {page_gen} obj\n{page_body}\nendobj\n".encode("latin-1")
    xref = len(body)
    body += b"xref\n"
    for number in sorted(offsets):
        gen = page_gen if number == page_number else 0
        body += f"{number} 1\n{offsets[number]:010d} {gen:05d} n \n".encode()
    body += (f"trailer\n<< /Size {size + 2} /Root {root[0]} {root[1]} R /Info {info_number} 0 R "
             f"/Prev {start} >>\nstartxref\n{xref}\n%%EOF\n").encode()
    return bytes(body)


def encrypted(document: bytes, *, user: str) -> bytes:
    """`document` encrypted (AES-256) with this user password (and an owner password)."""
    with pikepdf.open(io.BytesIO(document)) as pdf:
        out = io.BytesIO()
        pdf.save(out, encryption=pikepdf.Encryption(user=user, owner="dueño-2026", R=6,
                                                     allow=pikepdf.Permissions(modify_other=False)))
        return out.getvalue()


def rotated(document: bytes, angle: int = 90) -> bytes:
    """`document` with page 1 shown rotated by `angle` degrees (/Rotate)."""
    with pikepdf.open(io.BytesIO(document)) as pdf:
        pdf.pages[0].obj.Rotate = angle
        out = io.BytesIO()
        pdf.save(out)
        return out.getvalue()


def many_pages(count: int) -> bytes:
    """A valid PDF with `count` blank A4 pages."""
    pdf = pikepdf.new()
    for _ in range(count):
        pdf.add_blank_page(page_size=(595, 842))
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


# -- broken kinds -----------------------------------------------------------------------------------

def not_a_pdf(_: bytes) -> bytes:
    return "Orden de compra N° OC-2026-004512 — esto es texto, no un PDF\n".encode() * 20


def zero_bytes(_: bytes) -> bytes:
    return b""


def truncated(document: bytes) -> bytes:
    """Cut in the middle (an interrupted download)."""
    return document[: len(document) // 2]


def damaged_xref(document: bytes) -> bytes:
    """Every offset in the cross-reference table moved by 7 bytes (the file's objects are intact)."""
    head, sep, tail = document.rpartition(b"\nxref\n")
    assert sep, "expected a classic cross-reference table"

    def shift(match: re.Match[bytes]) -> bytes:
        return b"%010d %s n" % (int(match.group(1)) + 7, match.group(2))

    return head + sep + re.sub(rb"(\d{10}) (\d{5}) n", shift, tail)


def password_protected(document: bytes) -> bytes:
    return encrypted(document, user="clave-secreta")


#: name → (maker from a valid PDF, words the one-line error must contain)
BROKEN: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "not_pdf": (not_a_pdf, "not a PDF"),
    "zero_bytes": (zero_bytes, "empty"),
    "truncated": (truncated, "truncated"),
    "damaged_xref": (damaged_xref, "cross-reference"),
    "encrypted": (password_protected, "password"),
}
