"""The signed QR's cost and size: signing per order, offline verification, and the reference order's QR.

    .venv/bin/python benchmarks/signed_qr.py [--orders 5000]

Measured in one process on distinct orders (each its own order number, so every digest differs):

- ``sign_us``: :class:`peru_compras.signed_qr.QrSigner` per order — the facts (keccak of the canonical record),
  the round-trip check of the payload, the EIP-712 digest and the coincurve signature — the median of 5 runs
  over `--orders` orders, in microseconds; ``sign_per_s`` is its inverse for one core;
- ``eth_account_sign_us``: eth_account's ``sign_typed_data`` on the same typed data (what the fast path avoids);
- ``verify_us``: :func:`peru_compras.qr_check.verify_qr` of one QR text against a trust pack (decode, digest,
  public-key recovery, registrar lookup);
- ``batch_share``: the signing time as a share of the time per order at register-batch's goals (1,500
  unstamped and 400 stamped orders/s on this 2-core machine: 2 workers);
- ``reference``: the reference order's QR text (verify URL + "#" + fragment): characters, payload bytes, the
  QR version and error level segno picks, and whether zbarimg decodes the whole text from a 150-dpi render of
  the stamped page at each placement.

Writes benchmarks/results/signed_qr.json and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from peru_compras.order import Order, parse_order  # noqa: E402
from peru_compras.qr_check import verify_qr  # noqa: E402
from peru_compras.signed_qr import QrSigner, facts_of, from_text, qr_text, typed_data  # noqa: E402
from peru_compras.trust import Period, TrustPack  # noqa: E402

REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
BASE = "https://oc.example.pe"
KEY = bytes(range(1, 33))


def reference() -> Order:
    record = json.loads((ROOT / "peru_compras" / "samples" / "01-hospital-piura.json").read_text())
    return parse_order(record)


def orders(count: int) -> list[Order]:
    record = json.loads((ROOT / "peru_compras" / "samples" / "01-hospital-piura.json").read_text())
    return [parse_order({**record, "order_number": f"OC-2026-{n:06d}"}) for n in range(count)]


def median_us(run: Any, items: list[Any], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        for item in items:
            run(item)
        times.append((time.perf_counter() - started) / len(items) * 1e6)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=5000)
    args = parser.parse_args()
    load = [round(value, 2) for value in os.getloadavg()]  # shared machine: the figures are as loaded as this
    signer = QrSigner(KEY, 31337, REGISTRY)
    many = orders(args.orders)
    sign_us = median_us(signer, many)

    from eth_account import Account

    few = many[:200]
    eth_account_us = median_us(lambda order: Account.sign_typed_data(
        KEY, full_message=typed_data(facts_of(order), 31337, REGISTRY)), few, repeats=3)

    pack = TrustPack(31337, REGISTRY, ("oc.example.pe",), 1, "0x" + "00" * 32, "2026-12-01T00:00:00Z",
                     (Period(signer.address, 1, None),), frozenset(), {})
    texts = [qr_text(BASE + order.verify_path, order, signer)[0] for order in many[:1000]]
    assert all(verify_qr(text, pack).ok for text in texts[:10])
    verify_us = median_us(lambda text: verify_qr(text, pack), texts)

    order = reference()
    text, warning = qr_text(BASE + order.verify_path, order, signer)
    assert warning is None
    from peru_compras.pdf import stamp_pdf
    from peru_compras.qr import decode_page, make
    from peru_compras.render import render_order

    symbol = make(text)
    document = render_order(order)
    decoded = {}
    for placement in ("bottom-right", "bottom-left", "top-right", "top-left", "last-page"):
        stamped = stamp_pdf(document, text, order=order, placement=placement)
        decoded[placement] = decode_page(stamped, 2 if placement == "last-page" else 1, dpi=150) == [text]

    per_order_us = {"unstamped_1500_per_s_2_workers": 2 / 1500 * 1e6, "stamped_400_per_s_2_workers": 2 / 400 * 1e6}
    results = {
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                    "cores": os.cpu_count(), "load_average_at_start": load},
        "orders": args.orders,
        "sign_us": round(sign_us, 1),
        "sign_per_s": round(1e6 / sign_us),
        "eth_account_sign_us": round(eth_account_us, 1),
        "verify_us": round(verify_us, 1),
        "batch_share": {name: round(sign_us / budget, 3) for name, budget in per_order_us.items()},
        "reference": {
            "qr_text_characters": len(text),
            "verify_url_characters": len(BASE + order.verify_path),
            "fragment_characters": len(text.split("#", 1)[1]),
            "payload_bytes": len(from_text(text.split("#", 1)[1])),
            "qr_version": symbol.version,
            "qr_error_level": symbol.error,
            "qr_modules": symbol.symbol_size(border=0)[0],
            "decoded_at_150_dpi": decoded,
        },
    }
    out = ROOT / "benchmarks" / "results" / "signed_qr.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
