"""Draw a standard Spanish purchase-order PDF for a record (for orders that come without a PDF).

A4: the entity and the order number as a heading, the parties (entity, buyer, supplier), the items table
over as many pages as needed (its header repeated on each page), the total, the delivery term and place,
and "Página N de M" on every page. The bottom 36 mm of every page are kept free: when a ``verify_url`` is
given, the order's QR is printed in page 1's bottom-right corner by :func:`peru_compras.pdf.stamp_pdf` (the
very stamp ``register`` would add: ``register --no-stamp`` and ``register-batch --no-stamp`` hash such a PDF
as it is; ``register`` without ``--no-stamp`` trusts no marker and draws the stamp again).

The output is deterministic (ReportLab's invariant mode, a deterministic stamp): the same record and URL
give the same bytes. Text uses the PDF standard fonts (Helvetica, WinAnsi): Spanish is drawn as written;
letters outside that set lose their accents rather than print as boxes.
"""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from .order import Order, Party
from .pdf.text import fit_text, winansi

#: kept free at the bottom of every page: the QR stamp (14 pt + 78 pt) and the page footer
BOTTOM_MARGIN = 36 * mm


def _t(text: str) -> str:
    return escape(winansi(text))


def _party(label: str, party: Party) -> str:
    if party.scheme == "PE-RUC":
        ident = f" — RUC {party.id}"
    elif party.id:
        ident = f" — {party.scheme} {party.id}"
    else:
        ident = ""
    return f"<b>{label}:</b> {_t(party.name)}{_t(ident)}"


def _money(value: Decimal | str | None) -> str:
    if value is None:
        return ""
    return f"{Decimal(value):,.2f}"


def _quantity(value: str) -> str:
    number = Decimal(value)
    return f"{number:,}" if number == number.to_integral_value() else f"{number:,.6f}".rstrip("0")


class _NumberedCanvas(canvas.Canvas):  # type: ignore[misc]  # ReportLab is untyped
    """A canvas that writes "Página N de M" once it knows M."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []
        self.footer = ""

    def showPage(self) -> None:  # noqa: N802 — ReportLab's name
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for state in self._pages:
            self.__dict__.update(state)
            self.setFont("Helvetica", 7)
            self.setFillColor(colors.HexColor("#555555"))
            self.drawString(18 * mm, 12 * mm, f"Página {self._pageNumber} de {total}")
            if self.footer:
                self.drawString(18 * mm, 8.5 * mm, fit_text(self.footer, 7, 80 * mm))
            super().showPage()
        super().save()


def _plain_pdf(order: Order) -> bytes:
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm, bottomMargin=BOTTOM_MARGIN,
        title=winansi(f"Orden de compra {order.order_number}"), author=winansi(order.entity.name),
        subject=winansi(f"Orden de compra {order.order_number} — {order.supplier.name}"),
        creator="peru-compras", invariant=1,
    )
    styles = getSampleStyleSheet()
    small = ParagraphStyle("small", parent=styles["BodyText"], fontSize=8.5, leading=11)
    cell = ParagraphStyle("cell", parent=small, fontSize=8, leading=9.5)
    heading = ParagraphStyle("entity", parent=styles["Heading2"], fontSize=13, leading=16, spaceAfter=2)
    title = ParagraphStyle("title", parent=styles["Title"], fontSize=15, leading=19, spaceBefore=4, spaceAfter=6)
    story: list[Any] = [
        Paragraph(_t(order.entity.name), heading),
        Paragraph(_t(f"RUC {order.entity.id}" if order.entity.scheme == "PE-RUC"
                     else f"{order.entity.scheme} {order.entity.id}"), small),
        Paragraph(f"ORDEN DE COMPRA N° {_t(order.order_number)}", title),
        Paragraph(f"<b>Fecha de emisión:</b> {_t(order.issued_on)}", small),
        Paragraph(_party("Entidad contratante", order.entity), small),
        Paragraph(_party("Área usuaria / comprador", order.buyer), small),
        Paragraph(_party("Proveedor", order.supplier), small),
        Spacer(1, 5 * mm),
    ]
    rows: list[list[Any]] = [["N°", "Descripción", "Cantidad", "Unidad", "P. unitario", "Subtotal"]]
    items_total = Decimal(0)
    priced = True
    for index, item in enumerate(order.items, start=1):
        if item.unit_price is not None:
            subtotal = Decimal(item.quantity) * Decimal(item.unit_price)
            items_total += subtotal
            shown = _money(subtotal)
        else:
            priced, shown = False, ""
        description = _t(item.description) + (f"<br/><font size=6.5>CUBSO {item.cubso}</font>" if item.cubso else "")
        rows.append([str(index), Paragraph(description, cell), _quantity(item.quantity), Paragraph(_t(item.unit), cell),
                     _money(item.unit_price), shown])
    table = Table(rows, colWidths=[9 * mm, 76 * mm, 20 * mm, 22 * mm, 22 * mm, 25 * mm], repeatRows=1)
    table.setStyle(TableStyle([
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#1f3b57")),
        ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
        ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
        ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("ALIGN", (2, 1), (2, -1), "RIGHT"),
        ("ALIGN", (4, 1), (-1, -1), "RIGHT"),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f3f6f9")]),
    ]))
    story += [table, Spacer(1, 4 * mm)]
    totals = [[f"Total ({order.currency})", _money(order.total_amount)]]
    if priced and items_total != Decimal(order.total_amount):
        totals.insert(0, ["Suma de ítems", _money(items_total)])
    totals_table = Table(totals, colWidths=[40 * mm, 30 * mm], hAlign="RIGHT")
    totals_table.setStyle(TableStyle([
        ("FONTNAME", (0, -1), (-1, -1), "Helvetica-Bold"), ("FONTSIZE", (0, 0), (-1, -1), 9),
        ("ALIGN", (1, 0), (1, -1), "RIGHT"), ("LINEABOVE", (0, -1), (-1, -1), 0.6, colors.black),
    ]))
    term = (f"{order.delivery.term_days} días calendario, contados desde el día siguiente de la notificación"
            if order.delivery.term_days is not None else f"hasta el {order.delivery.deadline}")
    story.append(KeepTogether([
        totals_table, Spacer(1, 4 * mm),
        Paragraph(f"<b>Plazo de entrega:</b> {_t(term)}", small),
        Paragraph(f"<b>Lugar de entrega:</b> {_t(order.delivery.place)}", small),
    ]))

    def maker(*args: Any, **kwargs: Any) -> _NumberedCanvas:
        made = _NumberedCanvas(*args, **kwargs)
        made.footer = winansi(f"Orden de compra N° {order.order_number} — {order.entity.name}")
        return made

    doc.build(story, canvasmaker=maker)
    return buffer.getvalue()


def render_order(order: Order, *, verify_url: str | None = None, placement: str = "bottom-right") -> bytes:
    """The order as an A4 PDF (see the module docstring); with `verify_url`, its QR printed on it."""
    document = _plain_pdf(order)
    if verify_url is None:
        return document
    from .pdf import stamp_pdf

    return stamp_pdf(document, verify_url, order=order, placement=placement, name=f"{order.order_number}.pdf")
