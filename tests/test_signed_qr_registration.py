"""Registration stamps the signed QR (issue 17 item 1): `register`, `--supersedes`, `register-batch` and
`render` print `verify_url#fragment`, read back by zbarimg from a 150-dpi render of the page, and `verify-qr`
of what was printed says `signed` by the key that registered; the PDF still verifies online."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from peru_compras.order import parse_order
from peru_compras.qr import decode_page
from peru_compras.render import render_order
from peru_compras.store import LocalStore

from .conftest import REFERENCE, Runner, write_json

BASE = "https://oc.example.pe"


def record(number: str, **changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(REFERENCE)
    data.update(order_number=number, **changes)
    return data


@pytest.fixture
def deployed(cli: Runner) -> Runner:
    made = cli("deploy", "--json")
    assert made.code == 0, made.stderr
    return cli


def files(folder: Path, number: str, **changes: Any) -> tuple[Path, Path, dict[str, Any]]:
    data = record(number, **changes)
    pdf = folder / f"{number}.pdf"
    pdf.write_bytes(render_order(parse_order(data)))
    return write_json(folder / f"{number}.json", data), pdf, data


def printed_qr(document: bytes, page: int = 1) -> str:
    found = decode_page(document, page, dpi=150)
    assert len(found) == 1, found
    return found[0]


def check(cli: Runner, text: str, pack: Path) -> tuple[int, dict[str, Any]]:
    result = cli("verify-qr", text, "--trust", str(pack), "--json")
    return result.code, result.json()


def test_register_and_supersede_sign_the_qr(deployed: Runner, tmp_path: Path) -> None:
    cli = deployed
    account = cli.account  # type: ignore[attr-defined]
    order_file, pdf, data = files(tmp_path, "OC-FIRMA-1")
    out = tmp_path / "sellada.pdf"
    registered = cli("register", str(order_file), str(pdf), "--out", str(out), "--json")
    assert registered.code == 0, registered.stderr
    verify_url = registered.json()["verify_url"]
    text = printed_qr(out.read_bytes())
    assert text.startswith(verify_url + "#") and len(text) <= 200
    pack = tmp_path / "pack.json"
    assert cli("trust-pack", "--out", str(pack)).code == 0
    code, verdict = check(cli, text, pack)
    assert (code, verdict["status"], verdict["signer"]) == (0, "signed", account.address)
    assert verdict["facts"]["total"] == data["total"]["amount"] and verdict["facts"]["items"] == len(data["items"])
    online = cli("verify", str(out), "--json")
    assert online.code == 0 and online.json()["status"] == "authentic"

    corrected_file, corrected_pdf, _ = files(tmp_path, "OC-FIRMA-2", total={"amount": "5900.00", "currency": "PEN"})
    out2 = tmp_path / "corregida.pdf"
    superseding = cli("register", str(corrected_file), str(corrected_pdf), "--supersedes", "20131370998/OC-FIRMA-1",
                      "--out", str(out2), "--json")
    assert superseding.code == 0, superseding.stderr
    new_text = printed_qr(out2.read_bytes())
    assert "#" in new_text
    assert cli("trust-pack", "--out", str(pack)).code == 0
    code, verdict = check(cli, new_text, pack)
    assert (code, verdict["status"], verdict["facts"]["total"]) == (0, "signed", "5900.00")
    code, old = check(cli, text, pack)  # the paper of the replaced order: signed, but superseded: not green
    assert code == 1 and old["status"] == "signed" and old["order_status"] == "superseded"
    assert old["replaced_by"] == superseding.json()["token_id"]


def test_a_pdf_registered_as_it_is_gets_no_word_about_a_signature(deployed: Runner, tmp_path: Path) -> None:
    """--no-stamp keeps the QR the PDF carries: nothing is signed for it, so no "signed QR not used" warning,
    even for an order whose signed QR would not fit (which stamping does warn about)."""
    cli = deployed
    long_number = "OC-2026-SIGNED-QR-TOO-LONG-0001"  # its signed QR text is over 200 characters
    order_file, pdf, _ = files(tmp_path, long_number)
    stamped = cli("register", str(order_file), str(pdf), "--out", str(tmp_path / "sellada.pdf"), "--json")
    assert stamped.code == 0 and "signed QR not used" in stamped.stderr, stamped.stderr
    other_file, other_pdf, _ = files(tmp_path, long_number.replace("0001", "0002"))
    plain = cli("register", str(other_file), str(other_pdf), "--no-stamp", "--json")
    assert plain.code == 0, plain.stderr
    assert "signed QR" not in plain.stderr and plain.json()["verify_url"].endswith(long_number.replace("0001", "0002"))


def test_register_batch_signs_every_qr(deployed: Runner, tmp_path: Path) -> None:
    cli = deployed
    rows = []
    for n in range(3):
        _, pdf, data = files(tmp_path, f"OC-LOTE-{n}")
        rows.append({**data, "pdf": pdf.name})
    manifest = tmp_path / "lote.jsonl"
    manifest.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    ran = cli("register-batch", str(manifest), "--json")
    assert ran.code == 0, ran.stderr
    lines = [json.loads(line) for line in ran.stdout.splitlines()][:-1]
    assert len(lines) == 3
    pack = tmp_path / "pack.json"
    assert cli("trust-pack", "--out", str(pack)).code == 0
    store = LocalStore(tmp_path / ".peru-compras" / "documents", BASE)
    for line in lines:
        stamped = store.get(bytes.fromhex(line["sha256"]))
        assert stamped is not None
        text = printed_qr(stamped)
        assert text.startswith(line["verify_url"] + "#")
        code, verdict = check(cli, text, pack)
        assert code == 0 and verdict["status"] == "signed"
        assert verdict["facts"]["order_number"] == line["order_number"]


def test_render_signs_the_qr(deployed: Runner, tmp_path: Path) -> None:
    """A rendered order carries the same signed QR; registered as it is (--no-stamp), it checks out."""
    cli = deployed
    order_file = write_json(tmp_path / "o.json", record("OC-DIBUJO-1"))
    out = tmp_path / "dibujada.pdf"
    drawn = cli("render", str(order_file), "--out", str(out), "--json")
    assert drawn.code == 0, drawn.stderr
    text = printed_qr(out.read_bytes())
    assert text.startswith(drawn.json()["verify_url"] + "#")
    assert cli("register", str(order_file), str(out), "--no-stamp").code == 0
    pack = tmp_path / "pack.json"
    assert cli("trust-pack", "--out", str(pack)).code == 0
    code, verdict = check(cli, text, pack)
    assert code == 0 and verdict["status"] == "signed"


def test_render_without_a_registry_stays_plain_and_starts_nothing(tmp_path: Path) -> None:
    """On the embedded default with its chain not running, render draws the plain QR and starts no chain."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("PERU_COMPRAS_")}
    cli = Runner(tmp_path, {**env, "PERU_COMPRAS_BASE_URL": BASE})
    order_file = write_json(tmp_path / "o.json", record("OC-SIN-REGISTRO"))
    drawn = cli("render", str(order_file), "--out", str(tmp_path / "o.pdf"), "--json")
    assert drawn.code == 0, drawn.stderr
    assert printed_qr((tmp_path / "o.pdf").read_bytes()) == drawn.json()["verify_url"]
    assert not (tmp_path / ".peru-compras" / "node.json").exists() and "warning" not in drawn.stderr


def test_qr_command_gives_the_same_signed_qr(deployed: Runner, tmp_path: Path) -> None:
    """`qr` (for PDF templates of one's own) writes the signed QR too; verify-qr of the image says signed."""
    from peru_compras.qr import decode_image

    cli = deployed
    order_file = write_json(tmp_path / "o.json", record("OC-PLANTILLA-1"))
    made = cli("qr", str(order_file), "--format", "png", "--out", str(tmp_path / "qr.png"), "--json")
    assert made.code == 0, made.stderr
    (text,) = decode_image((tmp_path / "qr.png").read_bytes())
    assert text.startswith(made.json()["verify_url"] + "#")
    pack = tmp_path / "pack.json"
    assert cli("trust-pack", "--out", str(pack)).code == 0
    checked = cli("verify-qr", str(tmp_path / "qr.png"), "--trust", str(pack), "--json")
    # the registrar's key signed it (before registering): offline that is all a pack can say
    assert checked.code == 0 and checked.json()["status"] == "signed"
