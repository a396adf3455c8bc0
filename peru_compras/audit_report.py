"""The audit's report, from the mirror's ``audit`` table: a self-contained HTML page in Spanish (no external
resource, no script: inline CSS and SVG, a Content-Security-Policy that forbids loading anything), and the
same verdicts as CSV and JSON. Every string from the chain or from a server is escaped (HTML by Jinja's
autoescape, SVG text by :func:`html.escape`, CSV cells that a spreadsheet would run as a formula prefixed
with ``'``); links only for ``http``/``https`` URLs."""

from __future__ import annotations

import csv
import html
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from markupsafe import Markup

from .audit import STATUSES, AuditSummary, summarize
from .mirror_schema import Database
from .store import write_atomic

LABELS = {"original": "Original", "altered": "Alterado", "missing": "Desaparecido",
          "unreachable": "Inaccesible", "refused": "No descargado", "unchecked": "Sin revisar"}
EXPLAINED = {"original": "el PDF publicado es el registrado en la cadena",
             "altered": "el archivo publicado no es el registrado",
             "missing": "el servidor responde 404 o 410",
             "unreachable": "sin respuesta, demasiado lento o error HTTP",
             "refused": "las reglas de descarga lo impiden (servidor no permitido, dirección privada, tamaño)",
             "unchecked": "aún no revisado"}
COLORS = {"original": "#2e7d32", "altered": "#c62828", "missing": "#ef6c00", "unreachable": "#6a1b9a",
          "refused": "#455a64", "unchecked": "#bdbdbd"}
_TOP_ENTITIES = 15
_CSV_COLUMNS = ("token_id", "order_number", "entity_id", "entity_name", "supplier_id", "supplier_name", "status",
                "checked_at", "url", "final_url", "sha256", "expected_sha256", "size", "detail")


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    counts: dict[str, int]


def _bars(db: Database, group: str, *, limit: int | None = None, order: str = "total DESC") -> list[Bar]:
    """Verdict counts per `group` (an SQL expression over orders `o`)."""
    sql = (f"SELECT {group} AS label, coalesce(a.status, 'unchecked') AS verdict, count(*) AS n FROM orders o "
           "LEFT JOIN audit a ON a.token_id = o.token_id WHERE o.published_url IS NOT NULL GROUP BY label, verdict")
    groups: dict[str, dict[str, int]] = {}
    for label, status, count in db.execute(sql).fetchall():
        groups.setdefault(str(label or "—"), {})[str(status)] = int(count)
    items = [Bar(label, counts) for label, counts in groups.items()]
    if order == "label":
        items.sort(key=lambda bar: bar.label)
    else:  # the groups with most problems first, then the largest
        items.sort(key=lambda bar: (-sum(n for s, n in bar.counts.items() if s != "original"),
                                    -sum(bar.counts.values()), bar.label))
    return items[:limit] if limit else items


def svg_chart(bars: list[Bar], *, title: str, label_width: int = 260) -> Markup:
    """A horizontal stacked bar chart: one bar per group, one colour per verdict (inline SVG)."""
    row, width = 22, 460
    height = 30 + row * len(bars) + 30
    peak = max((sum(bar.counts.values()) for bar in bars), default=1) or 1
    legend = [(status, 10 + sum(26 + 7 * len(LABELS[s]) for s in (*STATUSES, "unchecked")[:index]))
              for index, status in enumerate((*STATUSES, "unchecked"))]
    total_width = max(label_width + width + 70, legend[-1][1] + 26 + 7 * len(LABELS["unchecked"]))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {total_width} {height}" '
             f'width="100%" aria-label="{html.escape(title)}"><title>{html.escape(title)}</title>']
    for index, bar in enumerate(bars):
        y = 24 + index * row
        name = bar.label if len(bar.label) <= 40 else bar.label[:39] + "…"
        parts.append(f'<text x="{label_width - 6}" y="{y + 14}" text-anchor="end" font-size="12">'
                     f'{html.escape(name)}</text>')
        x = float(label_width)
        for status in (*STATUSES, "unchecked"):
            count = bar.counts.get(status, 0)
            if count:
                w = count / peak * width
                parts.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{max(w, 0.5):.1f}" height="{row - 6}" '
                             f'fill="{COLORS[status]}"><title>{LABELS[status]}: {count}</title></rect>')
                x += w
        parts.append(f'<text x="{x + 4:.1f}" y="{y + 14}" font-size="11">{sum(bar.counts.values())}</text>')
    legend_y = height - 12
    for status, at in legend:
        parts.append(f'<rect x="{at}" y="{legend_y - 9}" width="10" height="10" fill="{COLORS[status]}"/>'
                     f'<text x="{at + 14}" y="{legend_y}" font-size="11">{LABELS[status]}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 — every outside string above went through html.escape


def _safe_link(url: str | None) -> str | None:
    return url if url and url.lower().startswith(("https://", "http://")) else None


def _verify_link(base_url: str | None, entity_id: str | None, number: str | None) -> str | None:
    """The order's verification page (``/o/<entity>/<order number>``) when the page's base URL is known."""
    if not (base_url and entity_id and number):
        return None
    scheme, _, ident = entity_id.partition(":")
    entity = ident if scheme == "PE-RUC" else entity_id
    return _safe_link(base_url.rstrip("/") + "/o/" + quote(entity, safe=":") + "/" + quote(number, safe=""))


def _rows(db: Database, *, problems_only: bool) -> list[dict[str, Any]]:
    where = "WHERE a.status IS NOT NULL AND a.status != 'original'" if problems_only else ""
    sql = ("SELECT o.token_id, o.order_number, o.entity_id, o.entity_name, o.supplier_id, o.supplier_name, "
           "a.status, a.checked_at, coalesce(a.url, o.published_url) AS url, a.final_url, a.sha256, "
           "o.document_sha256 AS expected_sha256, a.size, a.detail FROM orders o "
           f"JOIN audit a ON a.token_id = o.token_id {where} ORDER BY o.entity_name, o.order_number")
    cursor = db.execute(sql)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


def _cell(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def write_reports(db: Database, html_path: Path, *, base_url: str | None = None,
                  summary: AuditSummary | None = None) -> tuple[Path, Path, Path]:
    """Write the HTML report at `html_path` and the CSV and JSON beside it (same name, .csv / .json)."""
    import jinja2

    summary = summary or summarize(db)
    found = db.execute("SELECT chain_id, registry, last_block, updated_at FROM mirror WHERE id = 1").fetchone()
    state = dict(zip(("chain_id", "registry", "last_block", "updated_at"), found or (None,) * 4, strict=True))
    problems = _rows(db, problems_only=True)
    for row in problems:
        row["link"] = _safe_link(row["final_url"] or row["url"])
        row["verify"] = _verify_link(base_url, row["entity_id"], row["order_number"])
        row["label"] = LABELS.get(row["status"], row["status"])
    entities = _bars(db, "o.entity_name", limit=_TOP_ENTITIES)
    months = _bars(db, "substr(o.issued_on, 1, 7)", order="label")
    totals = {**{status: summary.totals.get(status, 0) for status in STATUSES}, "unchecked": summary.unchecked}
    template = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
        resources.files("peru_compras").joinpath("data/informe-auditoria.html").read_text(encoding="utf-8"))
    page = template.render(
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), mirror=state, totals=totals,
        labels=LABELS, explained=EXPLAINED, colors=COLORS, problems=problems, orders=sum(totals.values()),
        by_entity=svg_chart(entities, title="Resultados por entidad"),
        by_month=svg_chart(months, title="Resultados por mes de emisión", label_width=90),
        top=_TOP_ENTITIES, all_original=summary.all_original)
    write_atomic(html_path, page.encode("utf-8"))
    everything = _rows(db, problems_only=False)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=_CSV_COLUMNS, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in everything:
        writer.writerow({key: _cell(value) for key, value in row.items()})
    csv_path, json_path = html_path.with_suffix(".csv"), html_path.with_suffix(".json")
    write_atomic(csv_path, text.getvalue().encode("utf-8"))
    body = {"summary": summary.to_json(), "mirror": state,
            "by_entity": [{"entity": bar.label, **bar.counts} for bar in _bars(db, "o.entity_name")],
            "by_month": [{"month": bar.label, **bar.counts} for bar in months],
            "not_original": [{key: row[key] for key in _CSV_COLUMNS} for row in problems]}
    write_atomic(json_path, json.dumps(body, ensure_ascii=False, indent=1).encode("utf-8"))
    return html_path, csv_path, json_path
