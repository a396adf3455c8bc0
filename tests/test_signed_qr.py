"""The signed QR (issue 17 items 1-2): the payload's size and encoding, the EIP-712 digest checked by two
independent implementations (eth_account in Python, ethers in Node with its own decoder), and every verdict of
the offline check against a trust pack read from a real Anvil."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peru_compras import signed_qr
from peru_compras.chain.client import Registry
from peru_compras.chain.rpc import Rpc
from peru_compras.order import Order, parse_order
from peru_compras.qr import png
from peru_compras.qr_check import verify_qr
from peru_compras.signed_qr import QrSigner, facts_of, from_text, qr_text, to_text
from peru_compras.trust import TrustPack, build_trust_pack, load_trust_pack
from peru_compras.urls import token_hex

from .conftest import ROOT, Runner, funded_account, reference_order

BASE = "https://oc.example.pe"
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
NODE = shutil.which("node") or "node"
P = 2**256 - 2**32 - 977
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _no_point_x() -> int:
    """The smallest x for which x^3 + 7 has no square root mod p: no curve point has it as its x."""
    return next(x for x in range(1, 100) if pow(x**3 + 7, (P - 1) // 2, P) != 1)


def order(**changes: Any) -> Order:
    return parse_order(reference_order(**changes))


def signed_text(account: LocalAccount, chain_id: int, registry: str, the_order: Order | None = None) -> str:
    the_order = the_order or order()
    text, warning = qr_text(BASE + the_order.verify_path, the_order, QrSigner(bytes(account.key), chain_id, registry))
    assert warning is None and "#" in text
    return text


@pytest.fixture(scope="module")
def chain_id(rpc: Rpc) -> int:
    return int(rpc.call("eth_chainId"), 16)


@pytest.fixture(scope="module")
def pack(registry: Registry) -> TrustPack:
    """The pack as a clerk has it: built from the chain, written as JSON, read back."""
    return load_trust_pack(json.dumps(build_trust_pack(registry)))


# -- the payload ------------------------------------------------------------------------------------------


def test_reference_order_fits_200_characters() -> None:
    the_order = order()
    account = Account.create()
    signer = QrSigner(bytes(account.key), 31337, "0x" + "11" * 20)
    fragment = signer(the_order)
    assert fragment is not None
    assert len(from_text(fragment)) == 109 and len(fragment) == 146
    text, warning = qr_text(BASE + the_order.verify_path, the_order, signer)
    assert warning is None
    assert text == f"{BASE}{the_order.verify_path}#{fragment}" and len(text) <= 200


def test_payload_layout_byte_by_byte() -> None:
    """The README's layout, read back by hand: header, days, uint40 RUC, scale + LEB128 total, items, hash, r, s."""
    the_order = order()
    facts = facts_of(the_order)
    signature = bytes(range(64)) + b"\x1c"  # v 28 -> header bit 0
    payload = signed_qr.encode(facts, signature)
    assert payload[0] == 0b0010_0001
    assert int.from_bytes(payload[1:3], "big") == 20777  # 2026-11-20 - 1970-01-01
    assert int.from_bytes(payload[3:8], "big") == 20608712411
    assert payload[8] == 2 and payload[9:12] == bytes([0xC8, 0xF9, 0x23])  # 589000 in LEB128
    assert payload[12] == 3
    assert payload[13:45] == facts.record_hash and payload[45:] == signature[:64]
    assert signed_qr.decode(the_order.key, payload) == (facts, signature)


def test_text_supplier_and_currency() -> None:
    the_order = order(supplier={"name": "Proveedor S.A.", "id": "80012345-6", "scheme": "PY-RUC"},
                      total={"amount": "1234.5", "currency": "USD"})
    facts = facts_of(the_order)
    payload = signed_qr.encode(facts, bytes(64) + b"\x1b")
    assert payload[0] == 0b0010_1100
    assert payload[3] == len("PY-RUC:80012345-6") and payload[4:21] == b"PY-RUC:80012345-6"
    assert payload[21:24] == b"USD"
    assert signed_qr.decode(the_order.key, payload)[0] == facts


@pytest.mark.parametrize(("changes", "why"), [
    ({"total": {"amount": "0120.50", "currency": "PEN"}}, "total"),
    ({"issued_on": "1969-12-31"}, "issuedOn"),
    ({"supplier": {"name": "Proveedor", "id": "A" * 40, "scheme": "ocds-" + "b" * 30}}, "supplier"),
])
def test_what_cannot_travel_keeps_the_plain_qr(changes: dict[str, Any], why: str) -> None:
    the_order = order(**changes)
    signer = QrSigner(bytes(Account.create().key), 31337, "0x" + "11" * 20)
    assert signer(the_order) is None
    url = BASE + the_order.verify_path
    text, warning = qr_text(url, the_order, signer)
    assert text == url
    assert warning is not None and warning.startswith("OC-2026-004512: signed QR not used") and why in warning


def test_over_200_characters_keeps_the_plain_qr() -> None:
    the_order = order()
    url = "https://verificacion.compras.gobierno-regional.example.pe" + the_order.verify_path
    text, warning = qr_text(url, the_order, QrSigner(bytes(Account.create().key), 31337, "0x" + "11" * 20))
    assert text == url and warning is not None and "over 200" in warning


def test_signer_never_shows_its_key() -> None:
    account = Account.create()
    signer = QrSigner(bytes(account.key), 31337, "0x" + "11" * 20)
    assert account.key.hex().removeprefix("0x") not in repr(signer) + str(signer)
    assert signer.address == account.address


def test_digest_is_eip712_as_eth_account_computes_it() -> None:
    """An independent EIP-712 implementation (eth_account's encode_typed_data) gives the same digest and
    recovers the signer from the QR's r, s, v."""
    account = Account.create()
    registry = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    the_order = order()
    text = signed_text(account, 31337, registry, the_order)
    facts, signature = signed_qr.decode(the_order.key, from_text(text.split("#")[1]))
    message = encode_typed_data(full_message=signed_qr.typed_data(facts, 31337, registry))
    assert _hash_eip191_message(message) == signed_qr.digest(facts, 31337, registry)
    assert Account.recover_message(message, signature=signature) == account.address


# -- verdicts against a pack from the chain -------------------------------------------------------------


def test_signed_qr_verifies_offline(registry: Registry, admin: LocalAccount, chain_id: int, pack: TrustPack) -> None:
    the_order = order()
    verdict = verify_qr(signed_text(admin, chain_id, registry.address, the_order), pack)
    assert verdict.status == "signed" and verdict.ok
    assert verdict.signer == admin.address
    assert verdict.facts == facts_of(the_order)
    assert verdict.facts.to_json()["order_number"] == "OC-2026-004512"
    assert verdict.facts.to_json()["total"] == "5890.00"
    assert (verdict.host, verdict.host_trusted, verdict.order_status) == ("oc.example.pe", True, "valid")
    assert verdict.trust_block == pack.block and verdict.trust_time == pack.time


def test_forged_signature(registry: Registry, admin: LocalAccount, chain_id: int, pack: TrustPack) -> None:
    """Bytes that are no signature at all: s above n/2 (the malleated twin), r or s zero, r of no point."""
    text = signed_text(admin, chain_id, registry.address)
    url, fragment = text.split("#")
    payload = from_text(fragment)
    r, s = payload[-64:-32], int.from_bytes(payload[-32:], "big")
    forged = {
        "high s": payload[:-32] + (N - s).to_bytes(32, "big"),
        "zero s": payload[:-32] + bytes(32),
        "zero r": payload[:-64] + bytes(32) + payload[-32:],
        "r >= n": payload[:-64] + N.to_bytes(32, "big") + payload[-32:],
        "r of no point": payload[:-64] + _no_point_x().to_bytes(32, "big") + payload[-32:],
    }
    for name, changed in forged.items():
        verdict = verify_qr(f"{url}#{to_text(changed)}", pack)
        assert verdict.status == "bad_signature", name
        assert verdict.signer is None and not verdict.ok and verdict.problem
    assert r  # the genuine one still verifies
    assert verify_qr(text, pack).status == "signed"


def test_altered_facts_are_never_green(registry: Registry, admin: LocalAccount, chain_id: int,
                                       pack: TrustPack) -> None:
    """A total changed on a genuine QR (same signature): recovery yields another address, not the registrar."""
    the_order = order()
    text = signed_text(admin, chain_id, registry.address, the_order)
    url, fragment = text.split("#")
    facts, signature = signed_qr.decode(the_order.key, from_text(fragment))
    for altered in (replace(facts, total="589.00"), replace(facts, items=4), replace(facts, supplier="20100070970")):
        verdict = verify_qr(f"{url}#{to_text(signed_qr.encode(altered, signature))}", pack)
        assert verdict.status in ("unknown_signer", "bad_signature") and not verdict.ok
        assert verdict.signer != admin.address
    other_order = order(order_number="OC-2026-004513")  # the same fragment under another order's address
    verdict = verify_qr(BASE + other_order.verify_path + "#" + fragment, pack)
    assert verdict.status != "signed" and verdict.signer != admin.address


def test_key_that_never_was_registrar(registry: Registry, chain_id: int, pack: TrustPack) -> None:
    stranger = Account.create()
    verdict = verify_qr(signed_text(stranger, chain_id, registry.address), pack)
    assert verdict.status == "unknown_signer" and verdict.signer == stranger.address
    assert verdict.revoked_block is None and not verdict.ok


def test_signature_for_another_registry(registry: Registry, admin: LocalAccount, chain_id: int,
                                        pack: TrustPack) -> None:
    verdict = verify_qr(signed_text(admin, chain_id, "0x" + "22" * 20), pack)
    assert verdict.status == "unknown_signer" and verdict.signer != admin.address


def test_registrar_later_revoked(registry: Registry, rpc: Rpc, chain_id: int) -> None:
    clerk = funded_account(rpc)
    granted = registry.grant("registrar", clerk.address)
    text = signed_text(clerk, chain_id, registry.address)
    before = load_trust_pack(json.dumps(build_trust_pack(registry)))
    assert verify_qr(text, before).status == "signed"
    revoked = registry.revoke("registrar", clerk.address)
    after = load_trust_pack(json.dumps(build_trust_pack(registry)))
    verdict = verify_qr(text, after)
    assert verdict.status == "unknown_signer" and verdict.signer == clerk.address
    assert verdict.revoked_block == revoked.block_number and not verdict.ok
    assert str(revoked.block_number) in (verdict.problem or "")
    assert [p for p in after.registrars if p.address == clerk.address][0].from_block == granted.block_number
    # the old pack, as of a block before the revocation, still says signed: the verdict is "as of" its block
    assert verify_qr(text, load_trust_pack(json.dumps(build_trust_pack(registry, block=granted.block_number)))).ok


def test_host_not_the_registrys_page(registry: Registry, admin: LocalAccount, chain_id: int, pack: TrustPack) -> None:
    text = signed_text(admin, chain_id, registry.address)
    fake = text.replace("https://oc.example.pe", "https://oc-example.pe.verifica.example.com")
    verdict = verify_qr(fake, pack)
    assert verdict.status == "signed" and verdict.host_trusted is False and not verdict.ok
    assert verify_qr(text.replace("https://oc.example.pe", "https://OC.Example.PE:443"), pack).host_trusted


def test_annulled_and_superseded_orders(registry: Registry, admin: LocalAccount, chain_id: int) -> None:
    first, second, third = (order(order_number=f"OC-QR-{n}") for n in (1, 2, 3))
    for index, each in enumerate((first, second)):
        registry.register(each, bytes([0xA0 + index]) * 32)
    registry.annul(first.token_id, "duplicada")
    registry.supersede(second.token_id, third, b"\xa5" * 32)
    pack = load_trust_pack(json.dumps(build_trust_pack(registry)))
    annulled = verify_qr(signed_text(admin, chain_id, registry.address, first), pack)
    assert annulled.status == "signed" and annulled.order_status == "annulled" and not annulled.ok
    superseded = verify_qr(signed_text(admin, chain_id, registry.address, second), pack)
    assert superseded.order_status == "superseded" and superseded.replaced_by == token_hex(third.token_id)
    assert not superseded.ok
    assert verify_qr(signed_text(admin, chain_id, registry.address, third), pack).ok


# -- malformed input: each a clear verdict, never an exception --------------------------------------------


def test_malformed_fragments(registry: Registry, admin: LocalAccount, chain_id: int, pack: TrustPack) -> None:
    text = signed_text(admin, chain_id, registry.address)
    url, fragment = text.split("#")
    payload = from_text(fragment)
    cases = {
        "cut short by 4 characters": fragment[:-4],
        "cut short by 3 bytes": to_text(payload[:-3]),
        "cut short by one character": fragment[:-1],
        "cut to the header": fragment[:2],
        "10 KB": "A" * 10_240,
        "garbage base64": "!!not*base64~~",
        "padding": fragment + "==",
        "non-ASCII": fragment[:-1] + "é",
        "stray bits": fragment[:-1] + ALPHABET[ALPHABET.index(fragment[-1]) ^ 1],  # 109 bytes: 4 unused bits
        "trailing byte": to_text(payload + b"\0"),
        "version 2": to_text(bytes([0b0100_0000 | (payload[0] & 0x1F)]) + payload[1:]),
        "reserved bit": to_text(bytes([payload[0] | 0b10]) + payload[1:]),
        "scale 7": to_text(payload[:8] + b"\x07" + payload[9:]),
        "RUC over 11 digits": to_text(payload[:3] + b"\xff" * 5 + payload[8:]),
    }
    for name, bad in cases.items():
        verdict = verify_qr(f"{url}#{bad}", pack)
        assert verdict.status == "bad_signature", name
        assert verdict.problem and len(verdict.problem) < 200 and not verdict.ok, name
    assert "cut short" in (verify_qr(f"{url}#{cases['cut short by 3 bytes']}", pack).problem or "")
    assert "follow" in (verify_qr(f"{url}#{cases['trailing byte']}", pack).problem or "")
    assert "10,240 characters, over 240" in (verify_qr(f"{url}#{cases['10 KB']}", pack).problem or "")  # unread


def test_plain_and_foreign_texts(pack: TrustPack) -> None:
    plain = verify_qr(BASE + order().verify_path, pack)
    assert plain.status == "not_signed" and plain.host_trusted and "online" in (plain.problem or "")
    assert verify_qr(BASE + order().verify_path + "#", pack).status == "not_signed"
    assert verify_qr("hola", pack).status == "not_signed"
    assert verify_qr("https://oc.example.pe/#IFEp", pack).status == "bad_signature"
    assert verify_qr("x" * 100_000 + "#AAAA", pack).status == "bad_signature"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(min_size=1, max_size=200))
def test_any_payload_is_a_verdict(pack: TrustPack, payload: bytes) -> None:
    verdict = verify_qr(BASE + order().verify_path + "#" + to_text(payload), pack)
    assert verdict.status in ("bad_signature", "unknown_signer")  # never signed, never an exception


# -- ethers, from the README alone ------------------------------------------------------------------------


def test_ethers_verifies_our_qr(registry: Registry, admin: LocalAccount, chain_id: int) -> None:
    """tests/js/signed-qr-verify.mjs decodes the fragment with its own code and checks it with ethers'
    verifyTypedData: nothing from peru_compras."""
    the_order = order(supplier={"name": "Proveedor S.A.", "id": "80012345-6", "scheme": "PY-RUC"},
                      total={"amount": "1234.5", "currency": "USD"})
    facts = facts_of(the_order)  # over 200 characters (217): made without the budget, to test the decoding
    signature = signed_qr.sign_digest(bytes(admin.key), signed_qr.digest(facts, chain_id, registry.address))
    texts = {"reference": signed_text(admin, chain_id, registry.address),
             "text supplier, USD": f"{BASE}{the_order.verify_path}#{to_text(signed_qr.encode(facts, signature))}"}
    for name, text in texts.items():
        request = json.dumps({"qr": text, "chainId": chain_id, "registry": registry.address})
        result = subprocess.run([NODE, str(ROOT / "tests" / "js" / "signed-qr-verify.mjs")], input=request,
                                capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert result.returncode == 0, result.stderr
        answer = json.loads(result.stdout)
        assert answer.get("recovered") == admin.address, (name, answer)
        facts, _ = signed_qr.decode(*_key_and_payload(text))
        assert answer["facts"] == facts.message()
        assert answer["digest"] == "0x" + signed_qr.digest(facts, chain_id, registry.address).hex()


def _key_and_payload(text: str) -> tuple[str, bytes]:
    from peru_compras.urls import order_key_from_verify_url

    url, fragment = text.split("#")
    key = order_key_from_verify_url(url)
    assert key is not None
    return key, from_text(fragment)


# -- the commands -----------------------------------------------------------------------------------------


def test_trust_pack_and_verify_qr_commands(cli: Runner, registry: Registry, admin: LocalAccount, chain_id: int,
                                           tmp_path: Path) -> None:
    pack_file = tmp_path / "pack.json"
    made = cli("trust-pack", "--out", str(pack_file), "--registry", registry.address, "--json")
    assert made.code == 0, made.stderr
    answer = made.json()
    assert answer["file"] == str(pack_file)
    assert {"address": admin.address, "from_block": registry.from_block, "until_block": None} in answer["registrars"]
    pack = load_trust_pack(pack_file.read_bytes())
    assert pack.block == answer["block"] and pack.hosts == ("oc.example.pe",)

    the_order = order()
    text = signed_text(admin, chain_id, registry.address, the_order)
    photo = tmp_path / "foto.png"
    photo.write_bytes(png(text, scale=4))
    for argument in (text, str(photo)):
        checked = cli("verify-qr", argument, "--trust", str(pack_file), "--json",
                      env={"PERU_COMPRAS_RPC": "http://127.0.0.1:9"})
        assert checked.code == 0, checked.stderr  # offline: the node given is dead and never asked
        verdict = checked.json()
        assert verdict["status"] == "signed" and verdict["signer"] == admin.address
        assert verdict["facts"]["total"] == "5890.00" and verdict["facts"]["order_number"] == "OC-2026-004512"
        assert verdict["trust_block"] == pack.block and verdict["trust_time"] == pack.time
    human = cli("verify-qr", text, "--trust", str(pack_file))
    assert human.code == 0 and human.stdout.startswith(f"SIGNED by registrar {admin.address}")
    assert "total 5890.00 PEN" in human.stdout

    stranger = cli("verify-qr", signed_text(Account.create(), chain_id, registry.address), "--trust", str(pack_file),
                   "--json")
    assert stranger.code == 1 and stranger.json()["status"] == "unknown_signer"
    plain = cli("verify-qr", BASE + the_order.verify_path, "--trust", str(pack_file), "--json")
    assert plain.code == 1 and plain.json()["status"] == "not_signed"
    cut = cli("verify-qr", text[:-7], "--trust", str(pack_file))
    assert cut.code == 1 and cut.stdout.startswith("BAD SIGNATURE") and "Traceback" not in cut.stderr
    fake = cli("verify-qr", text.replace("oc.example.pe", "oc.example.pe.evil.test"), "--trust", str(pack_file))
    assert fake.code == 1 and "fake QR" in fake.stdout
    online = cli("verify-qr", text, "--registry", registry.address, "--json")  # no pack: read from the chain now
    assert online.code == 0 and online.json()["status"] == "signed"


def test_verify_qr_bad_input(cli: Runner, tmp_path: Path) -> None:
    pack_file = tmp_path / "pack.json"
    pack_file.write_text('{"format": "peru-compras-trust-pack/1"}')
    bad_pack = cli("verify-qr", "https://oc.example.pe/o/1/2#AAAA", "--trust", str(pack_file))
    assert bad_pack.code == 2 and "missing" in bad_pack.stderr
    not_image = tmp_path / "foto.jpg"
    not_image.write_bytes(b"GIF89a not a photo")
    good_file = tmp_path / "good.json"
    good_file.write_text(json.dumps(good_pack()))
    refused = cli("verify-qr", str(not_image), "--trust", str(good_file))
    assert refused.code == 2 and "not a PNG or JPEG" in refused.stderr
    blank = tmp_path / "blank.png"
    blank.write_bytes(png_blank())
    none_found = cli("verify-qr", str(blank), "--trust", str(good_file))
    assert none_found.code == 2 and "no QR codes" in none_found.stderr


def test_photo_with_another_qr_beside_ours(cli: Runner, registry: Registry, admin: LocalAccount, chain_id: int,
                                           tmp_path: Path) -> None:
    """A paper often carries another code (a tax authority's): the one naming an order page is read."""
    import io

    from PIL import Image

    ours = signed_text(admin, chain_id, registry.address)
    photo = Image.new("L", (1400, 760), 255)
    for index, text in enumerate((ours, "https://e-consulta.sunat.gob.pe/ol-ti-itconsvalicpe/20608712411|01|F001")):
        photo.paste(Image.open(io.BytesIO(png(text, scale=5))).convert("L"), (20 + 700 * index, 20))
    path = tmp_path / "papel.png"
    photo.save(path)
    pack_file = tmp_path / "pack.json"
    pack_file.write_text(json.dumps(build_trust_pack(registry)))
    checked = cli("verify-qr", str(path), "--trust", str(pack_file), "--json")
    assert checked.code == 0, checked.stderr
    assert checked.json()["status"] == "signed"


def good_pack() -> dict[str, Any]:
    from .test_trust_pack import GOOD

    return GOOD


def png_blank() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (200, 200), 255).save(out, format="PNG")
    return out.getvalue()


def test_order_registered_before_signed_qrs(cli: Runner, registry: Registry, tmp_path: Path) -> None:
    """An order stamped and registered with the plain QR (as before signed QRs) keeps it: `verify` says
    authentic online, `verify-qr` says not_signed (verify online) and exits 1."""
    from peru_compras.hashing import sha256
    from peru_compras.pdf import stamp_pdf
    from peru_compras.qr import decode_page
    from peru_compras.render import render_order

    the_order = order(order_number="OC-ANTES-1")
    url = BASE + the_order.verify_path
    stamped = stamp_pdf(render_order(the_order), url, order=the_order)
    registry.register(the_order, sha256(stamped))
    pdf = tmp_path / "antes.pdf"
    pdf.write_bytes(stamped)
    verified = cli("verify", str(pdf), "--registry", registry.address, "--json")
    assert verified.code == 0, verified.stderr
    assert verified.json()["status"] == "authentic"
    (printed,) = decode_page(stamped)
    assert printed == url
    checked = cli("verify-qr", printed, "--registry", registry.address, "--json")
    assert checked.code == 1 and checked.json()["status"] == "not_signed"
    assert "online" in checked.json()["problem"]
