"""Draw a standard Spanish purchase-order PDF for a record (for orders that come without a PDF).

The output is deterministic (ReportLab's invariant mode): the same record and QR give the same bytes.
"""

from __future__ import annotations

import io
from decimal import Decimal

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from xml.sax.saxutils import escape

from .order import Order, Party


def _party(label: str, party: Party) -> str:
    ident = f" — RUC {party.id}" if party.scheme == "PE-RUC" else (f" — {party.scheme} {party.id}" if party.id else "")
    return f"<b>{label}:</b> {escape(party.name)}{escape(ident)}"


def _money(value: str | None) -> str:
    if value is None:
        return ""
    return f"{Decimal(value):,.2f}"


def render_order(order: Order, *, verify_url: str | None = None) -> bytes:
    """The order as an A4 PDF: header, parties, items table (over as many pages as needed), totals,
    delivery term and place, and a line with `verify_url`."""
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=18 * mm, bottomMargin=30 * mm,
        title=f"Orden de compra {order.order_number}", author=order.entity.name, invariant=1,
    )
    styles = getSampleStyleSheet()
    small = ParagraphStyle("small", parent=styles["BodyText"], fontSize=8.5, leading=10.5)
    cell = ParagraphStyle("cell", parent=small, fontSize=8, leading=9.5)
    story: list[object] = [
        Paragraph(f"ORDEN DE COMPRA N° {escape(order.order_number)}", styles["Title"]),
        Paragraph(_party("Entidad contratante", order.entity), small),
        Paragraph(_party("Comprador", order.buyer), small),
        Paragraph(_party("Proveedor", order.supplier), small),
        Paragraph(f"<b>Fecha de emisión:</b> {escape(order.issued_on)}", small),
        Spacer(1, 5 * mm),
    ]
    rows: list[list[object]] = [["#", "Descripción", "Cantidad", "Unidad", "P. unitario", "Subtotal"]]
    for index, item in enumerate(order.items, start=1):
        subtotal = (_money(str(Decimal(item.quantity) * Decimal(item.unit_price)))
                    if item.unit_price is not None else "")
        description = escape(item.description) + (f"<br/><font size=6>CUBSO {item.cubso}</font>" if item.cubso else "")
        rows.append([str(index), Paragraph(description, cell), item.quantity, Paragraph(escape(item.unit), cell),
                     _money(item.unit_price), subtotal])
    table = Table(rows, colWidths=[8 * mm, 78 * mm, 20 * mm, 22 * mm, 22 * mm, 24 * mm], repeatRows=1)
    table.setStyle(TableStyle([
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#1f3b57")),
        ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
        ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("ALIGN", (2, 1), (2, -1), "RIGHT"),
        ("ALIGN", (4, 1), (-1, -1), "RIGHT"),
    ]))
    story += [table, Spacer(1, 4 * mm)]
    story.append(Paragraph(f"<b>Total:</b> {order.currency} {_money(order.total_amount)}", styles["Heading3"]))
    term = (f"{order.delivery.term_days} días calendario" if order.delivery.term_days is not None
            else f"hasta el {order.delivery.deadline}")
    story.append(Paragraph(f"<b>Plazo de entrega:</b> {escape(term)}", small))
    story.append(Paragraph(f"<b>Lugar de entrega:</b> {escape(order.delivery.place)}", small))
    if verify_url:
        story += [Spacer(1, 4 * mm), Paragraph(f"Verifique este documento en {escape(verify_url)}", small)]
    doc.build(story)
    return buffer.getvalue()
