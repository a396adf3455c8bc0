"""Stamping throughput: stamp the QR on an order's PDF, hash it, store it — orders per second.

    .venv/bin/python benchmarks/stamp.py [--orders 2000] [--workers 2]

The input is a realistic one-page order as an entity's system prints it (tests/pdfs.py: letterhead with an
embedded TrueType font and a logo, about 58 KB); each order gets its own verify URL, so every QR differs.
Each worker process runs the whole path register takes before minting: open and check the PDF, stamp
(:func:`peru_compras.pdf.stamp_pdf`), SHA-256, and :meth:`peru_compras.store.LocalStore.put` (temporary
file, fsync, rename) into a fresh store. Measured:

- ``baseline``: the earlier stamp (ReportLab draws an overlay PDF per order, pikepdf ``add_overlay``, full
  save), one process;
- ``one_process``: the current stamp, one process;
- ``workers``: the current stamp in `--workers` processes (the figure compared with the goal).

Writes benchmarks/results/stamp.json and prints the figure. Goal: >= 400 orders/s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from peru_compras.hashing import sha256  # noqa: E402
from peru_compras.order import Order, parse_order  # noqa: E402
from peru_compras.pdf import stamp_pdf  # noqa: E402
from peru_compras.store import LocalStore  # noqa: E402
from tests import pdfs  # noqa: E402

BASE_URL = "https://oc.example.pe"
GOAL = 400.0


def _orders(start: int, count: int) -> list[tuple[Order, str]]:
    base = parse_order(pdfs.record())
    out = []
    for number in range(start, start + count):
        order = parse_order({**base.to_json(), "order_number": f"OC-2026-{number:06d}"})
        out.append((order, BASE_URL + order.verify_path))
    return out


def baseline_stamp(document: bytes, verify_url: str, order: Order) -> bytes:
    """The stamp as it was before: a ReportLab overlay PDF per order, merged by pikepdf's add_overlay."""
    import pikepdf
    import segno
    from reportlab.pdfgen import canvas

    size = 78.0
    with pikepdf.open(io.BytesIO(document)) as pdf:
        page = pdf.pages[0]
        box = page.mediabox
        width, height = float(box[2]) - float(box[0]), float(box[3]) - float(box[1])
        matrix = list(segno.make(verify_url, error="m", micro=False).matrix)
        unit = size / (len(matrix) + 8)
        x0, y0 = width - size - 18, 14
        buffer = io.BytesIO()
        drawing = canvas.Canvas(buffer, pagesize=(width, height), invariant=1)
        drawing.setFillColorRGB(1, 1, 1)
        drawing.rect(x0, y0, size, size, stroke=0, fill=1)
        drawing.setFillColorRGB(0, 0, 0)
        for row_index, row in enumerate(matrix):
            y = y0 + size - (row_index + 5) * unit
            for col_index, dark in enumerate(row):
                if dark:
                    drawing.rect(x0 + (col_index + 4) * unit, y, unit + 0.01, unit + 0.01, stroke=0, fill=1)
        drawing.setFont("Helvetica", 6.5)
        drawing.drawRightString(x0 - 4, y0 + size - 16, f"Orden {order.order_number}")
        drawing.save()
        with pikepdf.open(io.BytesIO(buffer.getvalue())) as stamp:
            page.add_overlay(stamp.pages[0], pikepdf.Rectangle(*[float(v) for v in box]))
        pdf.docinfo["/PeruComprasVerify"] = verify_url
        out = io.BytesIO()
        pdf.save(out, deterministic_id=True)
        return out.getvalue()


def _work(args: tuple[bytes, int, int, str, bool]) -> tuple[int, float]:
    """Stamp, hash and store orders start..start+count; returns (count, seconds of work)."""
    document, start, count, store_dir, baseline = args
    store = LocalStore(Path(store_dir), BASE_URL)
    orders = _orders(start, count)
    began = time.perf_counter()
    for order, verify_url in orders:
        stamped = (baseline_stamp(document, verify_url, order) if baseline
                   else stamp_pdf(document, verify_url, order=order))
        sha256(stamped)
        store.put(stamped)
    return count, time.perf_counter() - began


def _run(document: bytes, orders: int, workers: int, *, baseline: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="stamp-bench-", dir=ROOT / "benchmarks") as store_dir:
        chunk = -(-orders // workers)
        jobs = [(document, 10_000 + i * chunk, min(chunk, orders - i * chunk), store_dir, baseline)
                for i in range(workers)]
        if workers == 1:
            _work((document, 0, 20, store_dir, baseline))  # warm up imports and caches
            began = time.perf_counter()
            results = [_work(jobs[0])]
        else:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                pool.map(_work, [(document, 0, 20, store_dir, baseline)] * workers)  # warm up each worker
                began = time.perf_counter()
                results = pool.map(_work, jobs)
        elapsed = time.perf_counter() - began
        stored = sum(1 for _ in Path(store_dir).rglob("*.pdf"))
    done = sum(count for count, _ in results)
    return {"orders": done, "workers": workers, "seconds": round(elapsed, 3),
            "orders_per_second": round(done / elapsed, 1), "stored_files": stored}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "stamp.json")
    args = parser.parse_args()
    document = pdfs.order_pdf(pdfs.record())
    load_before = os.getloadavg()[0]
    baseline = _run(document, max(100, args.orders // 10), 1, baseline=True)
    one = _run(document, max(200, args.orders // 4), 1)
    many = _run(document, args.orders, args.workers)
    result = {
        "benchmark": "stamp + sha256 + store (LocalStore, fsync) per order",
        "command": "python benchmarks/stamp.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_1min_before": round(load_before, 2),
                    "load_average_1min_after": round(os.getloadavg()[0], 2)},
        "input_pdf_bytes": len(document),
        "baseline_reportlab_overlay": baseline,
        "one_process": one,
        "workers": many,
        "goal_orders_per_second": GOAL,
        "meets_goal": many["orders_per_second"] >= GOAL,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"stamp + hash + store: {many['orders_per_second']:.0f} orders/s with {many['workers']} processes "
          f"({one['orders_per_second']:.0f}/s in one; the earlier ReportLab overlay: "
          f"{baseline['orders_per_second']:.0f}/s in one) — goal {GOAL:.0f}/s: "
          f"{'met' if result['meets_goal'] else 'NOT met'}; {args.out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
