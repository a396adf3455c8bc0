"""Stamping throughput: stamp the QR on an order's PDF, hash it, store it — orders per second.

    .venv/bin/python benchmarks/stamp.py [--orders 2000] [--workers 2]

The input is a realistic one-page order as an entity's system prints it (tests/pdfs.py: letterhead with an
embedded TrueType font and a logo, about 58 KB); each order gets its own verify URL, so every QR differs.
Each worker process runs the whole path register takes before minting: open and check the PDF
(:func:`peru_compras.pdf.check_pdf`, as ``read_pdf`` does), stamp (:func:`peru_compras.pdf.stamp_pdf`),
SHA-256, and :meth:`peru_compras.store.LocalStore.put` (temporary file, fsync, rename) into a fresh store;
not the scan for other addresses (``registrable_scan_ms``, measured on its own). Measured:

- ``baseline``: the earlier stamp (ReportLab draws an overlay PDF per order, pikepdf ``add_overlay``, full
  save), one process;
- ``one_process``: the current stamp, one process;
- ``workers``: the current stamp in `--workers` processes (the figure compared with the goal);
- ``workers_without_damage_check``: the same with the damage check (:func:`peru_compras.pdf.open.check_objects`:
  the whole file read strictly, every stream decoded) switched off, to show what the check costs;
- ``damage_check``: on the one-page order and on a 200-page order (the same generator, 7,592 items; and
  that one with its streams re-stored as Flate alone, as most PDF writers store them), the milliseconds
  of the check before this one (strict open and page count), of the damage check, of a stamp, and the
  stamped throughput in one process with and without the damage check (goal: not halved);
- ``registrable_scan_ms``: :func:`peru_compras.pdf.check_registrable` (active content, other addresses,
  the printed QR codes read back by pdftoppm and zbarimg) on the one-page order, which has a logo image.

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
from peru_compras.pdf import check_pdf, check_registrable, stamp_pdf  # noqa: E402
from peru_compras.pdf import open as pdf_module  # noqa: E402 — where the damage check lives
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


_CHECK_OBJECTS = pdf_module.check_objects


def _damage_check(on: bool) -> None:
    """Switch the damage check on or off in this process (off: only for the comparison)."""
    pdf_module.check_objects = _CHECK_OBJECTS if on else (lambda *args: None)  # type: ignore[assignment]


def _work(args: tuple[bytes, int, int, str, bool, bool]) -> tuple[int, float, float]:
    """Stamp, hash and store orders start..start+count; returns (count, seconds of work, CPU seconds)."""
    document, start, count, store_dir, baseline, check = args
    _damage_check(check)
    store = LocalStore(Path(store_dir), BASE_URL)
    orders = _orders(start, count)
    began, cpu = time.perf_counter(), time.process_time()
    for order, verify_url in orders:
        if baseline:
            stamped = baseline_stamp(document, verify_url, order)
        else:  # as register does: read_pdf's check, then the stamp (which does not decode it all again)
            check_pdf(document)
            stamped = stamp_pdf(document, verify_url, order=order)
        sha256(stamped)
        store.put(stamped)
    return count, time.perf_counter() - began, time.process_time() - cpu


def _run(document: bytes, orders: int, workers: int, *, baseline: bool = False, check: bool = True) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="stamp-bench-", dir=ROOT / "benchmarks") as store_dir:
        chunk = -(-orders // workers)
        jobs = [(document, 10_000 + i * chunk, min(chunk, orders - i * chunk), store_dir, baseline, check)
                for i in range(workers)]
        warm = min(20, orders)
        if workers == 1:
            _work((document, 0, warm, store_dir, baseline, check))  # warm up imports and caches
            began = time.perf_counter()
            results = [_work(jobs[0])]
        else:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                pool.map(_work, [(document, 0, warm, store_dir, baseline, check)] * workers)  # warm up each
                began = time.perf_counter()
                results = pool.map(_work, jobs)
        elapsed = time.perf_counter() - began
        stored = sum(1 for _ in Path(store_dir).rglob("*.pdf"))
    done = sum(count for count, _, _ in results)
    cpu = sum(seconds for _, _, seconds in results)
    _damage_check(True)
    return {"orders": done, "workers": workers, "seconds": round(elapsed, 3),
            "orders_per_second": round(done / elapsed, 1), "cpu_ms_per_order": round(cpu / done * 1000, 3),
            "stored_files": stored}


def _ms(function: Any, repeat: int) -> float:
    """Median milliseconds of `function()` over `repeat` calls (after one warm-up call)."""
    function()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        function()
        times.append(time.perf_counter() - began)
    return round(sorted(times)[len(times) // 2] * 1000, 3)


def _old_check(document: bytes) -> None:
    """The check before the damage check: strict open, the page count."""
    with pdf_module.open_strict(document, "bench") as pdf:
        len(pdf.pages)


def _flate_only(document: bytes) -> bytes:
    """The same PDF with its streams stored as most PDF writers store them: Flate alone (ReportLab adds
    ASCII85 around it, which qpdf decodes at about 30 MB/s: the worst case for the damage check)."""
    import pikepdf

    with pikepdf.open(io.BytesIO(document)) as pdf:
        out = io.BytesIO()
        pdf.save(out, stream_decode_level=pikepdf.StreamDecodeLevel.generalized, compress_streams=True)
        return out.getvalue()


def damage_check(orders_one: int, orders_many: int) -> dict[str, Any]:
    """The damage check's cost on a one-page and a 200-page order (see the module docstring)."""
    out: dict[str, Any] = {}
    url = BASE_URL + "/o/20131370998/OC-2026-000001"
    many = pdfs.order_pdf(pdfs.record("OC-2026-000200", items=30 + 199 * 38))
    cases = (("one_page", pdfs.order_pdf(pdfs.record()), orders_one, 50),
             ("two_hundred_pages", many, orders_many, 7),
             ("two_hundred_pages_flate_only", _flate_only(many), orders_many, 7))
    for name, document, orders, repeat in cases:
        assert check_pdf(document) == (1 if name == "one_page" else 200)
        with_check = _run(document, orders, 1)
        without = _run(document, orders, 1, check=False)
        out[name] = {
            "input_pdf_bytes": len(document),
            "old_check_ms": _ms(lambda d=document: _old_check(d), repeat),
            "damage_check_ms": _ms(lambda d=document: check_pdf(d), repeat),
            "stamp_ms": _ms(lambda d=document: stamp_pdf(bytes(bytearray(d)), url), repeat),  # checks it too
            "stamped_one_process_with_check": with_check,
            "stamped_one_process_without_check": without,
            "throughput_ratio": round(with_check["orders_per_second"] / without["orders_per_second"], 3),
            # CPU time is what the check adds; wall time on a shared machine also carries others' load
            "cpu_throughput_ratio": round(without["cpu_ms_per_order"] / with_check["cpu_ms_per_order"], 3),
        }
    return out


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
    unchecked = _run(document, args.orders, args.workers, check=False)
    damage = damage_check(max(100, args.orders // 10), max(20, args.orders // 100))
    scan_url = BASE_URL + "/o/20131370998/OC-2026-004512"
    scan = _ms(lambda: check_registrable(document, scan_url), 9)
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
        "workers_without_damage_check": unchecked,
        "damage_check": damage,
        "damage_check_halves_throughput": any(case["cpu_throughput_ratio"] < 0.5 for case in damage.values()),
        "registrable_scan_ms": scan,
        "goal_orders_per_second": GOAL,
        "meets_goal": many["orders_per_second"] >= GOAL,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"stamp + hash + store: {many['orders_per_second']:.0f} orders/s with {many['workers']} processes "
          f"({one['orders_per_second']:.0f}/s in one; the earlier ReportLab overlay: "
          f"{baseline['orders_per_second']:.0f}/s in one) — goal {GOAL:.0f}/s: "
          f"{'met' if result['meets_goal'] else 'NOT met'}; without the damage check "
          f"{unchecked['orders_per_second']:.0f}/s; damage check "
          + ", ".join(f"{name}: {case['damage_check_ms']} ms, throughput x{case['cpu_throughput_ratio']} (CPU)"
                      for name, case in damage.items())
          + f"; registrable scan {scan} ms; {args.out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
