"""Test PDFs, made here with ReportLab and pikepdf: realistic Spanish purchase orders as an entity's own
system would print them (not peru-compras' renderer), and every kind of broken input.

Valid inputs: :func:`order_pdf` (one page, letterhead with an embedded TrueType font and a logo image,
about 50 KB, Helvetica body so amounts are plain text in the content stream), :func:`big_order_pdf`
(200 items over exactly 6 pages), :func:`incremental_update` (a visa appended as a PDF incremental update),
:func:`rotated`.

Broken inputs (:data:`BROKEN`): not a PDF, zero bytes, truncated, damaged cross-reference table,
encrypted (with or without a user password). Damaged files of each kind qpdf --check reports
(:data:`DAMAGED`), bombs (:func:`huge_page`, :func:`flate_bomb`), active content (:data:`ACTIVE`) and a
forged stamp (:func:`fake_stamp`).
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
    "encrypted_without_password": (lambda document: encrypted(document, user=""), "is encrypted (its owner's"),
}


# -- damaged files: each kind qpdf --check reports (it would have to repair them) ----------------------

def _objects(document: bytes) -> dict[int, tuple[int, int]]:
    """Object number → (start, end) of its ``N G obj … endobj`` in a classic (uncompressed) file."""
    spans = {}
    for match in re.finditer(rb"(?m)^(\d+) (\d+) obj\b", document):
        spans[int(match.group(1))] = (match.start(), document.index(b"endobj", match.end()) + len(b"endobj"))
    return spans


def _page_and_content(document: bytes) -> tuple[int, int]:
    with pikepdf.open(io.BytesIO(document)) as pdf:
        page = pdf.pages[0].obj
        contents = page.Contents
        first = contents[0] if isinstance(contents, pikepdf.Array) else contents
        return page.objgen[0], first.objgen[0]


def _blank(document: bytes, start: int, end: int) -> bytes:
    """Bytes start..end replaced by spaces: every other offset stays right."""
    return document[:start] + b" " * (end - start) + document[end:]


def _xref_entry(document: bytes, number: int, change: Callable[[bytes], bytes]) -> bytes:
    """`document` with the cross-reference entry of object `number` (of its single ``0 N`` subsection)
    rewritten by `change` (same length)."""
    start = int(re.findall(rb"startxref\s+(\d+)", document)[-1])
    head, tail = document[:start], document[start:]
    lines = tail.split(b"\n")
    index = lines.index(b"xref") + 2 + number
    lines[index] = change(lines[index])
    return head + b"\n".join(lines)


def bad_xref_offset(document: bytes) -> bytes:
    """Page 1's entry in the cross-reference table points 7 bytes into its object (one wrong offset; the
    rest of the file, and the page count read lazily, look fine)."""
    page, _ = _page_and_content(document)
    return _xref_entry(document, page, lambda entry: b"%010d" % (int(entry[:10]) + 7) + entry[10:])


def xref_loop(document: bytes) -> bytes:
    """The trailer's /Prev points at its own cross-reference table: a loop."""
    start = int(re.findall(rb"startxref\s+(\d+)", document)[-1])
    at = document.index(b"<<", document.rindex(b"trailer")) + 2
    return document[:at] + b" /Prev %d" % start + document[at:]


def missing_object(document: bytes) -> bytes:
    """Page 1's content stream is gone (blanked): the table points at nothing."""
    _, content = _page_and_content(document)
    return _blank(document, *_objects(document)[content])


def bad_stream_length(document: bytes) -> bytes:
    """Page 1's content stream says it is 10 bytes shorter than it is (same number of digits)."""
    _, content = _page_and_content(document)
    start, end = _objects(document)[content]
    body = document[start:end]
    match = re.search(rb"/Length (\d+)", body)
    assert match and int(match.group(1)) > 20
    length = str(int(match.group(1)) - 10).rjust(len(match.group(1))).encode()
    return document[:start] + body[:match.start(1)] + length + body[match.end(1):] + document[end:]


def truncated_object(document: bytes) -> bytes:
    """Page 1's object cut in its middle (the rest blanked, the file still ends in %%EOF)."""
    page, _ = _page_and_content(document)
    start, end = _objects(document)[page]
    return _blank(document, start + (end - start) // 2, end)


def corrupt_stream_data(document: bytes) -> bytes:
    """30 bytes of page 1's compressed content stream overwritten: the data no longer decodes."""
    _, content = _page_and_content(document)
    start, _ = _objects(document)[content]
    at = document.index(b"stream", start) + 7 + 40
    return document[:at] + b"\x00" * 30 + document[at + 30:]


#: name → maker from a valid classic-xref PDF (ReportLab's); each is a file qpdf --check warns about
DAMAGED: dict[str, Callable[[bytes], bytes]] = {
    "bad_xref_offset": bad_xref_offset,
    "xref_loop": xref_loop,
    "missing_object": missing_object,
    "bad_stream_length": bad_stream_length,
    "truncated_object": truncated_object,
    "corrupt_stream_data": corrupt_stream_data,
}


# -- bombs ------------------------------------------------------------------------------------------

def huge_page(points: float = 10_000) -> bytes:
    """A tiny PDF whose one page is `points` × `points` (10,000 pt: 3.5 m a side), drawn full of grey."""
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(points, points))
    pdf.pages[0].obj.Contents = pdf.make_stream(f"0.5 g 0 0 {points} {points} re f".encode())
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def flate_bomb(gib: int = 2, *, ascii85: bool = False) -> bytes:
    """A PDF of about 4 KB whose page content is Flate inside Flate and inflates to `gib` GiB of zeros
    (with `ascii85`, one Flate layer inside ASCII85 instead)."""
    import base64
    import zlib

    # one 16 MiB block of zeros, deflated once and repeated (a full flush makes the blocks independent),
    # with the zlib header and the Adler-32 of that many zeros (a = 1, b = length mod 65521): instant
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = raw.compress(b"\0" * (1 << 24)) + raw.flush(zlib.Z_FULL_FLUSH)
    count = 64 * gib
    adler = (((count << 24) % 65521) << 16) | 1
    layer = b"\x78\xda" + block * count + b"\x03\x00" + adler.to_bytes(4, "big")
    pdf = pikepdf.new()
    pdf.add_blank_page()
    if ascii85:  # one Flate layer in ASCII85, as ReportLab writes streams (about 2.6 MB)
        stream = pikepdf.Stream(pdf, base64.a85encode(layer) + b"~>")
        stream.Filter = pikepdf.Array([pikepdf.Name.ASCII85Decode, pikepdf.Name.FlateDecode])
    else:
        stream = pikepdf.Stream(pdf, zlib.compress(layer, 9))
        stream.Filter = pikepdf.Array([pikepdf.Name.FlateDecode, pikepdf.Name.FlateDecode])
    pdf.pages[0].obj.Contents = pdf.make_indirect(stream)
    out = io.BytesIO()
    pdf.save(out, compress_streams=False, stream_decode_level=pikepdf.StreamDecodeLevel.none)
    return out.getvalue()


# -- active content -----------------------------------------------------------------------------------

def _edit(document: bytes, change: Callable[[pikepdf.Pdf], None]) -> bytes:
    with pikepdf.open(io.BytesIO(document)) as pdf:
        change(pdf)
        out = io.BytesIO()
        pdf.save(out)
        return out.getvalue()


def _js(code: str) -> pikepdf.Dictionary:
    return pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String(code))


def _link(pdf: pikepdf.Pdf, action: pikepdf.Dictionary, **extra: Any) -> pikepdf.Object:
    return pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link,
                                                Rect=pikepdf.Array([50, 700, 200, 720]), A=action, **extra))


def _add_annot(pdf: pikepdf.Pdf, annot: pikepdf.Object) -> None:
    page = pdf.pages[0].obj
    if "/Annots" not in page:
        page.Annots = pikepdf.Array()
    page.Annots.append(annot)


def _open_action_js(pdf: pikepdf.Pdf) -> None:
    pdf.Root.OpenAction = _js("app.alert('abierto')")


def _document_js(pdf: pikepdf.Pdf) -> None:
    tree = pikepdf.NameTree.new(pdf)
    tree["inicio"] = pdf.make_indirect(_js("app.alert('documento')"))
    pdf.Root.Names = pikepdf.Dictionary(JavaScript=tree.obj)


def _page_aa(pdf: pikepdf.Pdf) -> None:
    pdf.pages[0].obj.AA = pikepdf.Dictionary(O=_js("app.alert('página')"))


def _catalog_aa(pdf: pikepdf.Pdf) -> None:
    pdf.Root.AA = pikepdf.Dictionary(WC=_js("app.alert('cerrar')"))


def _annotation_aa(pdf: pikepdf.Pdf) -> None:
    _add_annot(pdf, _link(pdf, pikepdf.Dictionary(S=pikepdf.Name.URI, URI=pikepdf.String("https://oc.example.pe/")),
                          AA=pikepdf.Dictionary(E=_js("app.alert('encima')"))))


def _launch(pdf: pikepdf.Pdf) -> None:
    _add_annot(pdf, _link(pdf, pikepdf.Dictionary(S=pikepdf.Name.Launch, F=pikepdf.String("calc.exe"))))


def _js_link_chain(pdf: pikepdf.Pdf) -> None:  # the JavaScript hides behind a harmless first action
    first = pikepdf.Dictionary(S=pikepdf.Name.GoTo, D=pikepdf.Array([pdf.pages[0].obj, pikepdf.Name.Fit]),
                               Next=_js("app.alert('después')"))
    _add_annot(pdf, _link(pdf, first))


def _embedded_file(pdf: pikepdf.Pdf) -> None:
    pdf.attachments["factura.exe"] = pikepdf.AttachedFileSpec(pdf, b"MZ\x90\x00 no es una factura")


def _file_attachment_annot(pdf: pikepdf.Pdf) -> None:
    spec = pikepdf.AttachedFileSpec(pdf, b"contenido adjunto", filename="anexo.txt")
    _add_annot(pdf, pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.FileAttachment, Rect=pikepdf.Array([50, 650, 70, 670]),
        FS=spec.obj, Contents=pikepdf.String("anexo"))))


def _xfa(pdf: pikepdf.Pdf) -> None:
    pdf.Root.AcroForm = pikepdf.Dictionary(Fields=pikepdf.Array(), XFA=pdf.make_stream(
        b"<xdp:xdp xmlns:xdp='http://ns.adobe.com/xdp/'><script>app.alert(1)</script></xdp:xdp>"))


#: name → (change, words the refusal names)
ACTIVE: dict[str, tuple[Callable[[pikepdf.Pdf], None], str]] = {
    "open_action_javascript": (_open_action_js, "JavaScript (run on opening"),
    "document_javascript": (_document_js, "document JavaScript"),
    "page_additional_actions": (_page_aa, "page actions (page 1 /AA)"),
    "catalog_additional_actions": (_catalog_aa, "document actions (/AA)"),
    "annotation_additional_actions": (_annotation_aa, "annotation actions (page 1 /AA)"),
    "launch_action": (_launch, "Launch action"),
    "javascript_after_goto": (_js_link_chain, "JavaScript (page 1 link)"),
    "embedded_file": (_embedded_file, "attached files"),
    "file_attachment_annotation": (_file_attachment_annot, "an attached file (page 1)"),
    "xfa_form": (_xfa, "XFA form"),
}


def active(document: bytes, kind: str) -> bytes:
    """`document` with the active content `kind` of :data:`ACTIVE` added."""
    return _edit(document, ACTIVE[kind][0])


def with_link(document: bytes, url: str) -> bytes:
    """`document` with a plain link (URI action) to `url` on page 1."""
    return _edit(document, lambda pdf: _add_annot(pdf, _link(pdf, pikepdf.Dictionary(
        S=pikepdf.Name.URI, URI=pikepdf.String(url)))))


# -- forged stamps ------------------------------------------------------------------------------------

def fake_stamp(document: bytes, claimed_url: str, printed_url: str, *, marked_qr: bool = True) -> bytes:
    """The attack on markers: `document` with peru-compras' markers for `claimed_url` (the information
    dictionary's /PeruComprasVerify and /PeruComprasStamp on a content stream) and a real QR code — drawn
    from segno's symbol, so zbarimg reads it — that leads to `printed_url`. With `marked_qr` the QR is in
    the marked stream (it looks like our stamp); else the marker sits on an empty stream and the QR in an
    unmarked one."""
    import segno

    from peru_compras import qr

    symbol = tuple(bytes(row) for row in segno.make(printed_url, error="m", micro=False).matrix)
    drawing = qr.pdf_operators(symbol, 250, 14, 78)  # bottom middle: beside where our stamp goes

    def change(pdf: pikepdf.Pdf) -> None:
        page = pdf.pages[0]
        qr_stream = pdf.make_stream(drawing)
        if marked_qr:
            qr_stream.PeruComprasStamp = pikepdf.String(claimed_url)
        else:
            marker = pdf.make_stream(b"")
            marker.PeruComprasStamp = pikepdf.String(claimed_url)
            page.contents_add(marker, prepend=False)
        page.contents_add(qr_stream, prepend=False)
        pdf.docinfo["/PeruComprasVerify"] = pikepdf.String(claimed_url)

    return _edit(document, change)


def with_runlength_image(document: bytes) -> bytes:
    """`document` with a small CMYK image stored RunLength-encoded (a shape qpdf's own tests carry; valid,
    and decoded only at qpdf's "specialized" level)."""
    pixels = bytes((x * 7 + y * 3) % 256 for y in range(48) for x in range(40 * 4))
    encoded = bytearray()
    for start in range(0, len(pixels), 128):  # literal runs: a length byte n-1, then n bytes
        run = pixels[start:start + 128]
        encoded += bytes([len(run) - 1]) + run
    encoded += b"\x80"  # end of data

    def change(pdf: pikepdf.Pdf) -> None:
        image = pikepdf.Stream(pdf, bytes(encoded))
        image.Type, image.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
        image.Width, image.Height, image.BitsPerComponent = 40, 48, 8
        image.ColorSpace, image.Filter = pikepdf.Name.DeviceCMYK, pikepdf.Name.RunLengthDecode
        page = pdf.pages[0]
        page.add_resource(pdf.make_indirect(image), pikepdf.Name.XObject, pikepdf.Name("/ImRL"))
        page.contents_add(pdf.make_stream(b"q 40 0 0 48 500 700 cm /ImRL Do Q"), prepend=False)

    return _edit(document, change)


def ascii85_flate_bomb() -> bytes:
    return flate_bomb(ascii85=True)
