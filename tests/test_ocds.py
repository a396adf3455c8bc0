"""OCDS in and out: the import mapping on samples written here (each messy case on its own), a realistic
Peru-like sample registered on a real Anvil, exported with export-ocds, validated against the official OCDS
1.1 release-package and release schemas (fetched by scripts/ocds_schemas.sh into .cache/ocds/), and every
exported hash checked against the chain's."""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pikepdf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft4Validator, FormatChecker
from referencing import Registry as SchemaRegistry
from referencing.jsonschema import DRAFT4

from peru_compras.batch import Row, manifest_kind, preview, read_manifest
from peru_compras.hashing import sha256
from peru_compras.ocds import dumps, repair_mojibake, safe_name
from peru_compras.order import parse_order
from peru_compras.render import render_order
from peru_compras.store import LocalStore

from .conftest import REFERENCE, ROOT, run_cli
from .test_batch import Chain, lines

BASE_URL = "https://oc.example.pe"


def ruc(first_ten: str) -> str:
    """A RUC with SUNAT's check digit."""
    check = 11 - sum(int(c) * w for c, w in zip(first_ten, (5, 4, 3, 2, 7, 6, 5, 4, 3, 2), strict=True)) % 11
    return first_ten + str({10: 0, 11: 1}.get(check, check))


HOSPITAL = "20131370998"
CUSCO = "20546292658"
LORETO = ruc("2045328412")
SAN_JERONIMO = ruc("2017012345")
ANDINA = "20608712411"
NAWPA = ruc("2060123456")
AMAZONIA = ruc("2049876543")


def org(ruc_or_id: str, name: str, *roles: str, scheme: str | None = "PE-RUC", party_id: str | None = None
        ) -> dict[str, Any]:
    identifier: dict[str, Any] = {"id": ruc_or_id, "legalName": name}
    if scheme is not None:
        identifier["scheme"] = scheme
    return {"id": party_id or f"{scheme or 'X'}-{ruc_or_id}", "name": name, "identifier": identifier,
            "roles": list(roles)}


def ref(party: dict[str, Any]) -> dict[str, Any]:
    return {"id": party["id"], "name": party["name"]}


def item(description: str, quantity: Any, unit: str, price: Any = None, *, place: str | None = "Almacén central",
         cubso: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": description[:8], "description": description, "unit": {"name": unit}}
    if quantity is not None:
        out["quantity"] = quantity
    if price is not None:
        out["unit"]["value"] = {"amount": price, "currency": "PEN"}
    if cubso:
        out["classification"] = {"scheme": "CUBSO", "id": cubso, "description": description}
    if place:
        out["deliveryLocation"] = {"description": place}
    return out


def release(ocid: str, rid: str, date: str, *, parties: list[dict[str, Any]] | None = None,
            buyer: dict[str, Any] | None = None, tender: dict[str, Any] | None = None,
            awards: list[dict[str, Any]] | None = None, contracts: list[dict[str, Any]] | None = None,
            tag: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"ocid": ocid, "id": rid, "date": date, "initiationType": "tender",
                           "tag": tag or (["contract"] if contracts else ["award"] if awards else ["tender"])}
    for key, value in (("parties", parties), ("buyer", buyer), ("tender", tender), ("awards", awards),
                       ("contracts", contracts)):
        if value is not None:
            out[key] = value
    return out


def award(aid: str, supplier: dict[str, Any], amount: Any, **extra: Any) -> dict[str, Any]:
    return {"id": aid, "status": "active", "suppliers": [ref(supplier)], "value": {"amount": amount,
                                                                                  "currency": "PEN"}, **extra}


def contract(cid: str, aid: str, amount: Any, items: list[dict[str, Any]], *, currency: str = "PEN",
             signed: str | None = "2026-03-02T09:00:00-05:00", days: int | None = 15, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"id": cid, "awardID": aid, "status": "active", "value": {"amount": amount,
                                                                                     "currency": currency},
                           "items": items, **extra}
    if signed:
        out["dateSigned"] = signed
    if days is not None:
        out.setdefault("period", {"startDate": "2026-03-03T00:00:00-05:00", "durationInDays": days})
    return out


def simple(ocid: str = "ocds-dgv273-seacev3-1", cid: str = "OC-2026-0001", **changes: Any) -> dict[str, Any]:
    """One clean release: buyer, procuring entity, supplier, award and contract."""
    buyer = org(HOSPITAL, "Hospital Regional de Piura", "buyer")
    unit = org(HOSPITAL, "Unidad de Logística — Oficina de Abastecimiento", "procuringEntity",
               party_id="PE-RUC-20131370998-UL")
    supplier = org(ANDINA, "Distribuidora Andina del Perú S.A.C.", "supplier")
    items = [item("Guantes de nitrilo talla M, caja x 100", 120, "CAJA", Decimal("18.50"), cubso="4214150100001234"),
             item("Mascarilla quirúrgica descartable", 2000, "UNIDAD", Decimal("0.35"))]
    out = release(ocid, f"{ocid}-r1", "2026-03-02T10:00:00-05:00", parties=[buyer, unit, supplier], buyer=ref(buyer),
                  tender={"id": "t1", "procuringEntity": ref(unit)},
                  awards=[award("A1", supplier, Decimal("2860.00"))],
                  contracts=[contract(cid, "A1", Decimal("2860.00"), items)])
    out.update(changes)
    return out


def package(*releases: dict[str, Any]) -> dict[str, Any]:
    return {"uri": "https://contratacionesabiertas.oece.gob.pe/api/paquete.json", "version": "1.1",
            "publishedDate": "2026-03-31T00:00:00Z", "publisher": {"name": "OECE"}, "releases": list(releases)}


def write(path: Path, data: Any) -> Path:
    path.write_text(dumps(data), encoding="utf-8")
    return path


def rows_of(path: Path, pdf_dir: Path | None = None) -> list[Row]:
    return list(read_manifest(path, pdf_dir=pdf_dir))


def mapped(path: Path, pdf_dir: Path | None = None) -> list[dict[str, Any]]:
    """The --dry-run lines for a manifest (library call: no subprocess)."""
    out: list[dict[str, Any]] = []
    preview(iter(rows_of(path, pdf_dir)), base_url=BASE_URL, emit=out.append)
    return out


def orders(out: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {line["order_number"]: line["record"] for line in out if line.get("status") == "would_register"}


def errors(out: list[dict[str, Any]]) -> list[str]:
    return [str(line["error"]) for line in out if "error" in line]


def skipped(out: list[dict[str, Any]]) -> list[str]:
    return [str(line["reason"]) for line in out if line.get("status") == "skipped"]


# -- the mapping ---------------------------------------------------------------------------------------


def test_release_package_maps_every_record_field(tmp_path: Path) -> None:
    out = mapped(write(tmp_path / "p.json", package(simple())))
    assert [line["status"] for line in out] == ["would_register"]
    line = out[0]
    assert (line["ocid"], line["release_id"], line["contract_id"]) == (
        "ocds-dgv273-seacev3-1", "ocds-dgv273-seacev3-1-r1", "OC-2026-0001")
    assert line["record"] == {
        "order_number": "OC-2026-0001",
        "issued_on": "2026-03-02",
        "entity": {"name": "Hospital Regional de Piura", "ruc": HOSPITAL},
        "buyer": {"name": "Unidad de Logística — Oficina de Abastecimiento", "ruc": HOSPITAL},
        "supplier": {"name": "Distribuidora Andina del Perú S.A.C.", "ruc": ANDINA},
        "items": [
            {"description": "Guantes de nitrilo talla M, caja x 100", "quantity": "120", "unit": "CAJA",
             "unit_price": "18.50", "cubso": "4214150100001234"},
            {"description": "Mascarilla quirúrgica descartable", "quantity": "2000", "unit": "UNIDAD",
             "unit_price": "0.35"},
        ],
        "total": {"amount": "2860.00", "currency": "PEN"},
        "delivery": {"place": "Almacén central", "term_days": 15},
    }
    assert line["render"] is True and line["pdf"] is None
    assert line["verify_url"] == f"{BASE_URL}/o/{HOSPITAL}/OC-2026-0001"


def test_other_countries_schemes_and_deadline(tmp_path: Path) -> None:
    data = simple(cid="OC-PY-7")
    data["parties"][0] = org("80012345-6", "Ministerio de Salud Pública y Bienestar Social", "buyer",
                             scheme="PY-RUC")
    data["buyer"] = ref(data["parties"][0])
    data["parties"][2] = org("XAXX010101000", "Proveedora del Norte S.A. de C.V.", "supplier", scheme="mx-rfc")
    data["awards"][0]["suppliers"] = [ref(data["parties"][2])]
    data["contracts"][0]["period"] = {"endDate": "2026-04-30T23:59:59-04:00"}
    data["contracts"][0]["value"]["currency"] = "PYG"
    record = orders(mapped(write(tmp_path / "p.json", package(data))))["OC-PY-7"]
    assert record["entity"] == {"name": "Ministerio de Salud Pública y Bienestar Social", "id": "80012345-6",
                                "scheme": "PY-RUC"}
    assert record["supplier"] == {"name": "Proveedora del Norte S.A. de C.V.", "id": "XAXX010101000",
                                  "scheme": "MX-RFC"}
    assert record["delivery"] == {"place": "Almacén central", "deadline": "2026-04-30"}
    assert record["total"]["currency"] == "PYG"


def test_record_packages_compiled_release_or_releases_merged(tmp_path: Path) -> None:
    compiled = simple("ocds-x-compiled", "OC-C-1")
    older = simple("ocds-x-merged", "OC-M-1")
    newer = copy.deepcopy(older)
    newer.update(id="ocds-x-merged-r2", date="2026-03-20T10:00:00-05:00", tag=["contractAmendment"])
    newer["contracts"][0]["value"]["amount"] = Decimal("3000.00")
    newer["contracts"][0]["items"][1]["quantity"] = 2400
    for part in ("parties", "buyer", "tender", "awards"):
        del newer[part]
    records = {"uri": "https://example.pe/r.json", "version": "1.1", "publishedDate": "2026-03-31T00:00:00Z",
               "publisher": {"name": "OECE"}, "records": [
                   {"ocid": "ocds-x-compiled", "releases": [{"url": "https://example.pe/r1", "date": "x"}],
                    "compiledRelease": compiled},
                   {"ocid": "ocds-x-merged", "releases": [newer, older]},
                   {"ocid": "ocds-x-linked", "releases": [{"url": "https://example.pe/only-a-link",
                                                           "date": "2026-01-01T00:00:00Z", "tag": ["tender"]}]},
                   {"ocid": "ocds-x-empty"}]}
    out = mapped(write(tmp_path / "records.json", records))
    found = orders(out)
    assert set(found) == {"OC-C-1", "OC-M-1"}
    assert found["OC-M-1"]["total"]["amount"] == "3000.00"  # the latest release's value…
    assert found["OC-M-1"]["items"][1]["quantity"] == "2400"
    assert found["OC-M-1"]["supplier"]["ruc"] == ANDINA  # …and what only the older one says
    assert any("only linked releases" in e for e in errors(out))
    assert "record 'ocds-x-empty' has neither a compiledRelease nor releases" in errors(out)
    assert sorted(line["row"] for line in out) == [1, 2, 3, 4, 5]  # one line per record or release
    assert any("taken from release 'ocds-x-merged-r2'" in s for s in skipped(out))


def test_json_lines_of_releases_while_record_manifests_stay_as_they_were(tmp_path: Path) -> None:
    first, second = simple("ocds-l-1", "OC-L-1"), simple("ocds-l-2", "OC-L-2")
    releases = tmp_path / "releases.jsonl"
    releases.write_text(dumps(first, indent=None) + "\n" + dumps(second, indent=None) + "\n{broken\n",
                        encoding="utf-8")
    assert manifest_kind(releases) == "ocds"
    out = mapped(releases)
    assert set(orders(out)) == {"OC-L-1", "OC-L-2"}
    assert [(line["row"], line.get("error")) for line in out][2] == (
        3, "line 3: not valid JSON: Expecting property name enclosed in double quotes (line 1, column 2) — fix the "
           "JSON syntax")
    records = tmp_path / "orders.jsonl"
    records.write_text(json.dumps({**REFERENCE, "pdf": "a.pdf"}, ensure_ascii=False) + "\n", encoding="utf-8")
    (tmp_path / "orders.csv").write_text("order_number,pdf\nOC-1,a.pdf\n", encoding="utf-8")
    assert manifest_kind(records) == "jsonl" and manifest_kind(tmp_path / "orders.csv") == "csv"
    [row] = rows_of(records)
    assert row.source is None and not row.render and row.pdf == tmp_path / "a.pdf"


def test_item_without_quantity_is_refused_naming_the_item(tmp_path: Path) -> None:
    data = simple()
    del data["contracts"][0]["items"][1]["quantity"]
    out = mapped(write(tmp_path / "p.json", package(data)))
    assert errors(out) == ["contract 'OC-2026-0001': item 2 ('Mascarilla quirúrgica descartable') has no quantity"]
    assert out[0]["order_number"] == "OC-2026-0001" and out[0]["ocid"] == "ocds-dgv273-seacev3-1"


def test_contract_only_release_takes_its_buyer_from_another_release_of_its_ocid(tmp_path: Path) -> None:
    full = simple("ocds-b-1", "OC-B-1")
    tender_release = {k: v for k, v in full.items() if k not in ("awards", "contracts")}
    tender_release.update(id="ocds-b-1-tender", date="2026-02-01T10:00:00-05:00", tag=["tender"])
    contract_only = {k: v for k, v in full.items() if k not in ("buyer", "tender")}
    contract_only["parties"] = [p for p in full["parties"] if "supplier" in p["roles"]]
    lonely = copy.deepcopy(contract_only)
    lonely.update(ocid="ocds-b-2", id="ocds-b-2-r1")
    lonely["contracts"][0]["id"] = "OC-B-2"
    out = mapped(write(tmp_path / "p.json", package(tender_release, contract_only, lonely)))
    assert orders(out)["OC-B-1"]["entity"] == {"name": "Hospital Regional de Piura", "ruc": HOSPITAL}
    assert orders(out)["OC-B-1"]["buyer"]["name"] == "Unidad de Logística — Oficina de Abastecimiento"
    assert errors(out) == ["contract 'OC-B-2': no buyer: neither `buyer` nor a party with role buyer in its release"]
    assert skipped(out) == ["no contract or award with items"]  # the tender release


def test_identifiers_without_a_scheme(tmp_path: Path) -> None:
    good = simple("ocds-i-1", "OC-I-1")
    del good["parties"][2]["identifier"]["scheme"]
    from_party_id = simple("ocds-i-2", "OC-I-2")
    del from_party_id["parties"][0]["identifier"]  # its id is "PE-RUC-20131370998"
    bad = simple("ocds-i-3", "OC-I-3")
    bad["parties"][2]["identifier"] = {"id": "12345678"}  # no scheme, and no shape proves one
    bad_buyer_unit = simple("ocds-i-4", "OC-I-4")
    bad_buyer_unit["parties"][1]["identifier"] = {"id": "UL-01"}
    out = mapped(write(tmp_path / "p.json", package(good, from_party_id, bad, bad_buyer_unit)))
    found = orders(out)
    assert found["OC-I-1"]["supplier"] == {"name": "Distribuidora Andina del Perú S.A.C.", "ruc": ANDINA}
    assert found["OC-I-1"]["notes"] == [f"supplier identifier {ANDINA!r} has no scheme: SUNAT's check digit proves "
                                        "PE-RUC"]
    assert found["OC-I-2"]["entity"]["ruc"] == HOSPITAL
    assert found["OC-I-4"]["buyer"] == {"name": "Unidad de Logística — Oficina de Abastecimiento"}
    # an id that proves no scheme is left out (noted), and the party id "PE-RUC-…" identifies the supplier
    assert found["OC-I-3"]["supplier"] == {"name": "Distribuidora Andina del Perú S.A.C.", "ruc": ANDINA}
    assert found["OC-I-3"]["notes"] == ["supplier identifier '12345678' left out: no scheme, and its shape proves "
                                        "none (a PE-RUC, PY-RUC or CO-NIT check digit, the MX-RFC pattern)"]
    assert errors(out) == []


def test_currencies_that_are_not_iso_4217(tmp_path: Path) -> None:
    samples = []
    for index, currency in enumerate(["S/.", "soles", "usd", "PESOS", "€"]):
        data = simple(f"ocds-c-{index}", f"OC-C-{index}")
        data["contracts"][0]["value"]["currency"] = currency
        samples.append(data)
    out = mapped(write(tmp_path / "p.json", package(*samples)))
    found = orders(out)
    assert [found[f"OC-C-{i}"]["total"]["currency"] for i in range(3)] == ["PEN", "PEN", "USD"]
    assert "currency 'S/.' read as PEN" in out[0]["notes"]
    refused = errors(out)
    assert len(refused) == 2
    assert "total.currency: 'PESOS' — an ISO 4217 code such as PEN or USD" in refused[0]
    assert "total.currency: '€'" in refused[1]


def test_names_keep_their_casing_and_mojibake_is_repaired(tmp_path: Path) -> None:
    data = simple()
    data["parties"][0]["name"] = "hOSPITAL REGIONAL de piura"
    data["parties"][2]["name"] = "Distribuidora Andina del PerÃº S.A.C."
    data["contracts"][0]["items"][0]["description"] = "Alcohol etÃ\xadlico 70Â°,  frasco\n1 L â€” caja"
    data["contracts"][0]["items"][0]["deliveryLocation"]["description"] = "AlmacÃ©n central"
    out = mapped(write(tmp_path / "p.json", package(data)))
    record = orders(out)["OC-2026-0001"]
    assert record["entity"]["name"] == "hOSPITAL REGIONAL de piura"
    assert record["supplier"]["name"] == "Distribuidora Andina del Perú S.A.C."
    assert record["items"][0]["description"] == "Alcohol etílico 70°, frasco 1 L — caja"
    assert record["delivery"]["place"] == "Almacén central"
    assert any("repaired mojibake" in note for note in out[0]["notes"])
    # text that is right, or that does not turn back into UTF-8, is left alone
    for text in ("Perú", "São Paulo", "Ñawpa — 70°", "Ã solo", "PERÃš"):
        assert repair_mojibake(text) == (text if text != "PERÃš" else "PERÚ")


def test_same_contract_in_several_releases_is_registered_once_from_the_latest(tmp_path: Path) -> None:
    first = simple("ocds-d-1", "OC-D-1")
    update = copy.deepcopy(first)
    update.update(id="ocds-d-1-r2", date="2026-03-15T08:00:00-05:00", tag=["contractUpdate"])
    update["contracts"][0]["value"]["amount"] = Decimal("2900.00")
    again = copy.deepcopy(first)
    again.update(id="ocds-d-1-r0", date="2026-03-01T08:00:00-05:00")
    out = mapped(write(tmp_path / "p.json", package(update, first, again)))  # file order is not date order
    assert orders(out)["OC-D-1"]["total"]["amount"] == "2900.00"
    assert orders(out)["OC-D-1"]["issued_on"] == "2026-03-02"
    assert [line.get("status") for line in out] == ["would_register", "skipped", "skipped"]
    assert out[0]["release_id"] == "ocds-d-1-r2"
    assert all("taken from release 'ocds-d-1-r2'" in reason for reason in skipped(out))


def test_releases_without_awards_or_contracts_and_other_non_orders(tmp_path: Path) -> None:
    planning = release("ocds-n-1", "ocds-n-1-planning", "2026-01-10T00:00:00Z", tag=["planning"])
    cancelled = simple("ocds-n-2", "OC-N-2")
    cancelled["contracts"][0]["status"] = "cancelled"
    no_items = simple("ocds-n-3", "OC-N-3")
    no_items["contracts"][0]["items"] = []
    award_only = simple("ocds-n-4", "OC-N-4")
    award_only["awards"][0]["items"] = award_only.pop("contracts")[0]["items"]
    award_only["awards"][0]["contractPeriod"] = {"durationInDays": 10}
    out = mapped(write(tmp_path / "p.json", package(planning, cancelled, no_items, award_only)))
    assert skipped(out) == ["no contract or award with items", "contract 'OC-N-2' is cancelled",
                            "contract 'OC-N-3' has no items (nor has its award)"]
    assert orders(out)["A1"]["delivery"] == {"place": "Almacén central", "term_days": 10}  # the award's id


def test_pdf_by_order_number_from_pdf_dir(tmp_path: Path) -> None:
    assert safe_name("OC-0042/2026-GRL") == "OC-0042_2026-GRL.pdf"
    assert safe_name("../x y") == "x_y.pdf"
    pdfs = tmp_path / "pdfs"
    pdfs.mkdir()
    (pdfs / "OC-0042_2026-GRL.pdf").write_bytes(render_order(parse_order(REFERENCE)))
    (pdfs / "OC-2026-0001.pdf").write_bytes(render_order(parse_order(REFERENCE)))
    manifest = write(tmp_path / "p.json", package(simple("ocds-f-1", "OC-0042/2026-GRL"), simple("ocds-f-2"),
                                                  simple("ocds-f-3", "OC-DRAWN")))
    by_number = {row.record["order_number"]: row for row in rows_of(manifest, pdfs) if row.record}
    assert by_number["OC-0042/2026-GRL"].pdf == pdfs / "OC-0042_2026-GRL.pdf"
    assert by_number["OC-2026-0001"].pdf == pdfs / "OC-2026-0001.pdf"
    assert by_number["OC-DRAWN"].pdf is None and by_number["OC-DRAWN"].render


def test_dry_run_on_the_command_line_sends_and_writes_nothing(tmp_path: Path) -> None:
    manifest = write(tmp_path / "p.json", package(simple(), simple("ocds-z", "OC-Z", contracts=[])))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERU_COMPRAS_")}
    env.update(PERU_COMPRAS_RPC="http://127.0.0.1:9", PERU_COMPRAS_BASE_URL=BASE_URL)  # nothing listens there
    home = tmp_path / "home"
    result = run_cli(["--home", str(home), "register-batch", str(manifest), "--dry-run", "--json"],
                     env=env, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = lines(result.stdout)
    assert out[-1] == {"summary": {"registered": 0, "already_registered": 0, "failed": 0, "skipped": 1,
                                   "would_register": 1, "dry_run": True}}
    assert out[0]["record"]["order_number"] == "OC-2026-0001"
    assert not home.exists()
    broken = tmp_path / "broken.json"
    broken.write_text('{"releases": [{"ocid": "x",', encoding="utf-8")
    result = run_cli(["--home", str(home), "register-batch", str(broken), "--json"], env=env, timeout=60,
                     cwd=tmp_path)
    assert result.returncode == 2 and "broken.json" in result.stderr and "Traceback" not in result.stderr


def test_dry_run_of_a_json_lines_manifest_of_records(tmp_path: Path) -> None:
    (tmp_path / "a.pdf").write_bytes(render_order(parse_order(REFERENCE)))
    bad = {**copy.deepcopy(REFERENCE), "order_number": "OC-BAD", "supplier": {"name": "X", "ruc": "20123456789"}}
    manifest = tmp_path / "orders.jsonl"
    manifest.write_text("".join(json.dumps({**r, "pdf": "a.pdf"}, ensure_ascii=False) + "\n" for r in (REFERENCE, bad)),
                        encoding="utf-8")
    out: list[dict[str, Any]] = []
    summary = preview(read_manifest(manifest), base_url=BASE_URL, emit=out.append)
    assert out[0]["status"] == "would_register" and out[0]["record"] == REFERENCE
    assert out[0]["pdf"] == str(tmp_path / "a.pdf") and out[0]["render"] is False
    assert "20123456789" in out[1]["error"] and out[1]["order_number"] == "OC-BAD"
    assert summary.to_json() == {"summary": {"registered": 0, "already_registered": 0, "failed": 1,
                                             "would_register": 1, "dry_run": True}}


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _paths(inner, (*prefix, index))


_SKELETON = [simple("ocds-h-1", "OC-H-1"), simple("ocds-h-1", "OC-H-1"), simple("ocds-h-2", "OC-H-2")]
_SKELETON[1].update(id="ocds-h-1-r2", date="2026-03-09T10:00:00-05:00")
_LEAF = st.none() | st.booleans() | st.integers() | st.text(max_size=12) | st.decimals(allow_nan=True, places=3) | (
    st.sampled_from(["", " ", "PerÃº", "2026-13-45", "PE-RUC", "S/.", "buyer"]))
_JSON: st.SearchStrategy[Any] = st.deferred(lambda: _LEAF | st.lists(_JSON, max_size=3) | st.dictionaries(
    st.text(max_size=8), _JSON, max_size=3))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([(i, *path) for i, r in enumerate(_SKELETON) for path in _paths(r)]),
                          _JSON), min_size=1, max_size=4))
def test_any_damage_to_a_release_is_reported_never_a_crash(damage: list[tuple[tuple[Any, ...], Any]]) -> None:
    import tempfile

    releases: Any = copy.deepcopy(_SKELETON)
    for path, value in damage:
        holder = releases
        try:
            for step in path[:-1]:
                holder = holder[step]
            holder[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed this place
    with tempfile.TemporaryDirectory() as folder:
        out = mapped(write(Path(folder) / "p.json", package(*releases)))
    assert {line["row"] for line in out} == set(range(1, len(releases) + 1))  # every release has its line
    for line in out:
        assert line.get("status") in ("would_register", "skipped") or line.get("error")


# -- the official schemas ------------------------------------------------------------------------------

SCHEMAS = ROOT / ".cache" / "ocds"
RELEASE_URIS = ("https://standard.open-contracting.org/schema/1__1__5/release-schema.json",
                "https://standard.open-contracting.org/schema/1__1__4/release-schema.json")


def _official() -> tuple[dict[str, Any], dict[str, Any]]:
    wanted = [SCHEMAS / "release-package-schema.json", SCHEMAS / "release-schema-1__1__4.json"]
    if not all(path.exists() for path in wanted):
        subprocess.run([str(ROOT / "scripts" / "ocds_schemas.sh")], check=False, timeout=300)
    if not all(path.exists() for path in wanted):
        pytest.fail("the official OCDS schemas are not in .cache/ocds: run scripts/ocds_schemas.sh (needs the "
                    "package index once)")
    package_schema, release_schema = (json.loads(path.read_text(encoding="utf-8")) for path in wanted)
    assert package_schema["id"].endswith("/1__1__5/release-package-schema.json")
    assert release_schema["id"] == RELEASE_URIS[1]
    return package_schema, release_schema


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON Merge Patch (how OCDS extensions patch the release schema)."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out


def _formats() -> FormatChecker:
    checker = FormatChecker()

    @checker.checks("date-time", raises=ValueError)
    def date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if "T" not in value or not (value.endswith("Z") or value[-6] in "+-"):
            raise ValueError(f"{value!r} is not an RFC 3339 date-time")
        datetime.fromisoformat(value.replace("Z", "+00:00"))
        return True

    @checker.checks("uri")
    def uri(value: object) -> bool:
        if not isinstance(value, str):
            return True
        parts = urlsplit(value)
        return bool(parts.scheme and (parts.netloc or parts.scheme == "urn")) and " " not in value

    return checker


def validators(*, extended: bool) -> tuple[Draft4Validator, Draft4Validator]:
    """(package, release) validators: the official schemas, optionally with docs/ocds-extension patched in."""
    package_schema, release_schema = _official()
    if extended:
        patch = json.loads((ROOT / "docs" / "ocds-extension" / "release-schema.json").read_text(encoding="utf-8"))
        release_schema = _merge_patch(release_schema, patch)
    resource = DRAFT4.create_resource(release_schema)
    schemas = SchemaRegistry().with_resources([(uri, resource) for uri in RELEASE_URIS])
    return (Draft4Validator(package_schema, registry=schemas, format_checker=_formats()),
            Draft4Validator(release_schema, format_checker=_formats()))


def assert_valid(validator: Draft4Validator, instance: Any) -> None:
    problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)]
    assert not problems, "\n".join(problems[:20])


def test_the_schema_check_catches_what_it_should() -> None:
    package_validator, release_validator = validators(extended=True)
    release = {"ocid": "ocds-x-1", "id": "1", "date": "2026-03-02T10:00:00Z", "tag": ["contract"],
               "initiationType": "tender"}
    assert_valid(release_validator, release)
    text_amount = {"id": "1", "awardID": "1", "value": {"amount": "10", "currency": "PEN"}}
    for broken in ({**release, "tag": ["order"]}, {**release, "date": "2026-03-02"},
                   {**release, "contracts": [text_amount]}, {**release, "chainRegistration": {"chainId": 1}}):
        assert list(release_validator.iter_errors(broken))
    assert list(package_validator.iter_errors({"uri": "x", "version": "1.1", "releases": [release]}))


# -- round trip on a real chain ------------------------------------------------------------------------


def peru_like_sample(pdfs: Path) -> dict[str, Any]:
    """A release package shaped like Peru's published OCDS (tender, award and contract releases per ocid),
    with the messiness real data has: 23 releases in 16 ocids give 12 orders; 3 are refused, 6 skipped."""
    pdfs.mkdir(parents=True, exist_ok=True)
    hospital = org(HOSPITAL, "Hospital Regional de Piura", "buyer")
    logistica = org(HOSPITAL, "Unidad de Logística — Oficina de Abastecimiento", "procuringEntity",
                    party_id="PE-RUC-20131370998-UL")
    cusco = org(CUSCO, "MUNICIPALIDAD PROVINCIAL DEL CUSCO", "buyer", "procuringEntity")
    loreto = org(LORETO, "Gobierno Regional de Loreto — Sede Central", "buyer", "procuringEntity")
    jeronimo = org(SAN_JERONIMO, "mUNICIPALIDAD distrital DE san jerónimo", "buyer", "procuringEntity")
    andina = org(ANDINA, "Distribuidora Andina del Perú S.A.C.", "supplier")
    nawpa = org(NAWPA, "Comercial Ã‘awpa E.I.R.L.", "supplier")
    amazonia = org(AMAZONIA, "Servicios Generales Amazonía S.R.L.", "supplier", scheme=None)
    colombia = org("900123456-7", "Suministros Médicos de Colombia S.A.S.", "supplier", scheme="CO-NIT")
    p = "ocds-dgv273-seacev3-"
    releases: list[dict[str, Any]] = []

    def add(*items: dict[str, Any]) -> None:
        releases.extend(items)

    # 1. tender, award, contract releases; the PDF is given
    guantes = [item("Guantes de nitrilo talla M, caja x 100", 120, "CAJA", Decimal("18.50"), cubso="4214150100001234"),
               item("Alcohol etílico 70°, frasco 1 L", 300, "FRASCO", Decimal("9.90"))]
    add(release(p + "1001", p + "1001-01", "2026-02-01T09:00:00-05:00", parties=[hospital, logistica],
                buyer=ref(hospital), tender={"id": "AS-12-2026", "procuringEntity": ref(logistica), "items": guantes}),
        release(p + "1001", p + "1001-02", "2026-02-20T09:00:00-05:00", parties=[andina],
                awards=[award("AW-1001", andina, Decimal("5190.00"))]),
        release(p + "1001", p + "1001-03", "2026-03-02T09:00:00-05:00",
                contracts=[contract("OC-2026-004512", "AW-1001", Decimal("5190.00"), guantes)]))
    (pdfs / "OC-2026-004512.pdf").write_bytes(_pdf("OC-2026-004512"))
    # 2. one release with everything; supplier name with mojibake, currency written "S/."
    utiles = [item("Papel bond A4 80 g, millar", 50, "MILLAR", Decimal("24.00"), place="Almacén municipal, Cusco")]
    add(release(p + "1002", p + "1002-01", "2026-03-03T11:00:00-05:00", parties=[cusco, nawpa], buyer=ref(cusco),
                awards=[award("AW-1002", nawpa, Decimal("1200.00"))],
                contracts=[contract("OC-0871-2026-MPC", "AW-1002", Decimal("1200.00"), utiles, currency="S/.")]))
    # 3. a contract-only release; the buyer is in the ocid's tender release
    combustible = [item("Petróleo diésel B5 S-50", 1500, "GALÓN", Decimal("16.20"), place="Muelle regional, Iquitos")]
    add(release(p + "1003", p + "1003-01", "2026-02-11T08:00:00-05:00", parties=[loreto], buyer=ref(loreto),
                tender={"id": "SIE-3-2026", "procuringEntity": ref(loreto)}),
        release(p + "1003", p + "1003-02", "2026-03-05T08:00:00-05:00", parties=[amazonia],
                awards=[award("AW-1003", amazonia, Decimal("24300.00"))],
                contracts=[contract("OC-0042/2026-GRL", "AW-1003", Decimal("24300.00"), combustible, days=7)]))
    (pdfs / "OC-0042_2026-GRL.pdf").write_bytes(_pdf("OC-0042/2026-GRL"))
    # 4. a contract-only release whose ocid has no other release: no buyer anywhere
    add(release(p + "1004", p + "1004-01", "2026-03-06T08:00:00-05:00", parties=[andina],
                awards=[award("AW-1004", andina, Decimal("800.00"))],
                contracts=[contract("OC-2026-004600", "AW-1004", Decimal("800.00"),
                                    [item("Jabón líquido, galón", 40, "GALÓN", Decimal("20.00"))])]))
    # 5. an item without quantity
    add(release(p + "1005", p + "1005-01", "2026-03-07T08:00:00-05:00", parties=[hospital, andina],
                buyer=ref(hospital), awards=[award("AW-1005", andina, Decimal("950.00"))],
                contracts=[contract("OC-2026-004601", "AW-1005", Decimal("950.00"),
                                    [item("Servicio de mantenimiento de autoclave", None, "SERVICIO")])]))
    # 6. the same contract in two releases (an amendment raises the quantity), newest first in the file
    oxigeno = [item("Oxígeno medicinal, cilindro 10 m3", 80, "CILINDRO", Decimal("95.00"))]
    amended = copy.deepcopy(oxigeno)
    amended[0]["quantity"] = 100
    add(release(p + "1006", p + "1006-02", "2026-03-20T10:00:00-05:00", tag=["contractAmendment"],
                contracts=[contract("OC-2026-004602", "AW-1006", Decimal("9500.00"), amended)]),
        release(p + "1006", p + "1006-01", "2026-03-08T10:00:00-05:00", parties=[hospital, andina],
                buyer=ref(hospital), awards=[award("AW-1006", andina, Decimal("7600.00"))],
                contracts=[contract("OC-2026-004602", "AW-1006", Decimal("7600.00"), oxigeno)]))
    # 7. an award with items and no contract (yet): the award becomes the order
    add(release(p + "1007", p + "1007-01", "2026-03-09T10:00:00-05:00", parties=[loreto, amazonia],
                buyer=ref(loreto), tender={"id": "AS-7-2026", "contractPeriod": {"durationInDays": 20}},
                awards=[award("AW-1007-2026", amazonia, Decimal("3450.00"), date="2026-03-09T10:00:00-05:00",
                              items=[item("Motor fuera de borda 40 HP, mantenimiento", 3, "SERVICIO",
                                          Decimal("1150.00"), place="Muelle regional, Iquitos")])]))
    # 8. tender and planning only
    add(release(p + "1008", p + "1008-01", "2026-03-10T10:00:00-05:00", parties=[cusco], buyer=ref(cusco),
                tender={"id": "CP-2-2026"}))
    # 9. a currency that is not ISO 4217
    add(release(p + "1009", p + "1009-01", "2026-03-11T10:00:00-05:00", parties=[cusco, nawpa], buyer=ref(cusco),
                awards=[award("AW-1009", nawpa, Decimal("300.00"))],
                contracts=[contract("OC-0880-2026-MPC", "AW-1009", Decimal("300.00"),
                                    [item("Tóner HP 58A", 2, "UNIDAD", Decimal("150.00"))], currency="NUEVOS PESOS")]))
    # 10. a supplier identifier without scheme that is no RUC: keyed by its party id in the publisher's namespace
    stranger = org("10456", "Juan Pérez (persona natural)", "supplier", scheme=None, party_id="S-10456")
    add(release(p + "1010", p + "1010-01", "2026-03-12T10:00:00-05:00", parties=[hospital, stranger],
                buyer=ref(hospital), awards=[award("AW-1010", stranger, Decimal("400.00"))],
                contracts=[contract("OC-2026-004603", "AW-1010", Decimal("400.00"),
                                    [item("Servicio de fumigación", 1, "SERVICIO", Decimal("400.00"))])]))
    # 11. broken casing kept; a deadline instead of a term; delivery address instead of location
    sillas = [{"id": "1", "description": "SILLA APILABLE DE POLIPROPILENO", "quantity": 200,
               "unit": {"name": "unidad", "value": {"amount": Decimal("45.00"), "currency": "PEN"}},
               "deliveryAddress": {"streetAddress": "Av. Los Incas 120", "locality": "San Jerónimo",
                                   "region": "Cusco"}}]
    add(release(p + "1011", p + "1011-01", "2026-03-13T10:00:00-05:00", parties=[jeronimo, nawpa],
                buyer=ref(jeronimo), awards=[award("AW-1011", nawpa, Decimal("9000.00"))],
                contracts=[contract("OC-0017-2026-MDSJ", "AW-1011", Decimal("9000.00"), sillas, days=None,
                                    period={"endDate": "2026-04-15T23:59:59-05:00"})]))
    # 12. a cancelled contract
    add(release(p + "1012", p + "1012-01", "2026-03-14T10:00:00-05:00", parties=[hospital, andina],
                buyer=ref(hospital), awards=[award("AW-1012", andina, Decimal("100.00"))],
                contracts=[contract("OC-2026-004604", "AW-1012", Decimal("100.00"),
                                    [item("Algodón hidrófilo 500 g", 10, "PAQUETE", Decimal("10.00"))],
                                    status="cancelled")]))
    # 13. a foreign supplier (CO-NIT), amounts as strings
    add(release(p + "1013", p + "1013-01", "2026-03-15T10:00:00-05:00", parties=[hospital, colombia],
                buyer=ref(hospital), awards=[award("AW-1013", colombia, "12000.00")],
                contracts=[contract("OC-2026-004605", "AW-1013", "12000.00",
                                    [item("Monitor de funciones vitales", "4", "EQUIPO", "3000.00")], days=30)]))
    # 14. no delivery place anywhere: the record says so
    add(release(p + "1014", p + "1014-01", "2026-03-16T10:00:00-05:00", parties=[loreto, amazonia],
                buyer=ref(loreto), awards=[award("AW-1014", amazonia, Decimal("500.00"))],
                contracts=[contract("OC-0050-2026-GRL", "AW-1014", Decimal("500.00"),
                                    [item("Chalecos salvavidas", 10, "UNIDAD", Decimal("50.00"), place=None)])]))
    # 15. identifiers given as the party id only, buyer found by its role, several items with places
    roles_only = org(CUSCO, "Municipalidad Provincial del Cusco", "buyer", "procuringEntity")
    del roles_only["identifier"]
    add(release(p + "1015", p + "1015-01", "2026-03-17T10:00:00-05:00", parties=[roles_only, andina],
                awards=[award("AW-1015", andina, Decimal("2000.00"))],
                contracts=[contract("OC-0901-2026-MPC", "AW-1015", Decimal("2000.00"), [
                    item("Casco de seguridad", 40, "UNIDAD", Decimal("25.00"), place="Almacén municipal, Cusco"),
                    item("Botas de jebe", 40, "PAR", Decimal("25.00"), place="Almacén municipal, Cusco")])]))
    # 16. the same hospital, two contracts in one release
    add(release(p + "1016", p + "1016-01", "2026-03-18T10:00:00-05:00", parties=[hospital, logistica, andina],
                buyer=ref(hospital), tender={"id": "AS-16-2026", "procuringEntity": ref(logistica)},
                awards=[award("AW-1016", andina, Decimal("700.00"))],
                contracts=[contract("OC-2026-004606", "AW-1016", Decimal("300.00"),
                                    [item("Termómetro digital", 30, "UNIDAD", Decimal("10.00"))]),
                           contract("OC-2026-004607", "AW-1016", Decimal("400.00"),
                                    [item("Tensiómetro aneroide", 8, "UNIDAD", Decimal("50.00"))])]))
    return package(*releases)


def _pdf(title: str) -> bytes:
    with pikepdf.open(io.BytesIO(render_order(parse_order(REFERENCE)))) as pdf:
        pdf.docinfo["/Title"] = title
        buffer = io.BytesIO()
        pdf.save(buffer, deterministic_id=True)
    return buffer.getvalue()


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[Chain]:
    instance = Chain(tmp_path)
    yield instance
    instance.stop()


def test_peru_like_sample_round_trip(chain: Chain, tmp_path: Path) -> None:
    pdfs = tmp_path / "pdfs"
    manifest = write(tmp_path / "seace-ocds.json", peru_like_sample(pdfs))

    first = chain.cli("register-batch", str(manifest), "--pdf-dir", str(pdfs), "--json")
    assert first.returncode == 1, first.stderr  # some releases are refused
    out = lines(first.stdout)
    assert out[-1] == {"summary": {"registered": 12, "already_registered": 0, "failed": 3, "skipped": 6}}
    registered = {str(line["order_number"]): line for line in out if line.get("status") == "registered"}
    assert set(registered) == {"OC-2026-004512", "OC-0871-2026-MPC", "OC-0042/2026-GRL", "OC-2026-004602",
                               "AW-1007-2026", "OC-0017-2026-MDSJ", "OC-2026-004605", "OC-0901-2026-MPC",
                               "OC-2026-004606", "OC-2026-004607", "OC-2026-004603", "OC-0050-2026-GRL"}
    refused = {str(line["release_id"]): str(line["error"]) for line in out if "error" in line}
    p = "ocds-dgv273-seacev3-"
    assert "no buyer" in refused[p + "1004-01"]
    assert "has no quantity" in refused[p + "1005-01"]
    assert "'NUEVOS PESOS' — an ISO 4217 code" in refused[p + "1009-01"]
    assert set(refused) == {p + "1004-01", p + "1005-01", p + "1009-01"}
    reasons = {str(line["release_id"]): str(line["reason"]) for line in out if line.get("status") == "skipped"}
    assert reasons[p + "1008-01"] == "no contract or award with items"
    assert reasons[p + "1012-01"] == "contract 'OC-2026-004604' is cancelled"
    assert "taken from release 'ocds-dgv273-seacev3-1006-02'" in reasons[p + "1006-01"]
    assert all(line["ocid"].startswith(p) for line in out[:-1])
    note_lines = {str(line["order_number"]): line.get("notes", []) for line in registered.values()}
    assert any("repaired mojibake" in n for n in note_lines["OC-0871-2026-MPC"])
    assert "currency 'S/.' read as PEN" in note_lines["OC-0871-2026-MPC"]
    assert any("check digit proves PE-RUC" in n for n in note_lines["OC-0042/2026-GRL"])

    on_chain = {}
    for line in registered.values():
        record = chain.registry.read(int(str(line["token_id"]), 16))
        on_chain[record.order.order_number] = record
        assert record.state.document_hash.hex() == line["sha256"]
    assert on_chain["OC-0871-2026-MPC"].order.supplier.name == "Comercial Ñawpa E.I.R.L."
    assert on_chain["OC-0017-2026-MDSJ"].order.entity.name == "mUNICIPALIDAD distrital DE san jerónimo"
    assert on_chain["OC-2026-004602"].order.items[0].quantity == "100"
    assert on_chain["OC-2026-004605"].order.supplier.scheme == "CO-NIT"
    juan = on_chain["OC-2026-004603"].order
    assert (juan.supplier.scheme, juan.supplier.id) == ("ocds-dgv273", "S-10456")
    assert juan.notes == ("supplier identifier '10456' left out: no scheme, and its shape proves none (a PE-RUC, "
                          "PY-RUC or CO-NIT check digit, the MX-RFC pattern)",
                          "supplier has no identifier: keyed under the publisher's namespace 'ocds-dgv273' by its "
                          "party id 'S-10456'")
    assert on_chain["OC-0050-2026-GRL"].order.delivery.place == "No indicado por el publicador"
    stored = LocalStore(chain.home / "documents", "https://oc.example.pe")
    given = sha256((pdfs / "OC-2026-004512.pdf").read_bytes())
    assert on_chain["OC-2026-004512"].state.document_hash != given  # the given PDF, stamped with its QR

    again = chain.cli("register-batch", str(manifest), "--pdf-dir", str(pdfs), "--json")
    assert lines(again.stdout)[-1] == {"summary": {"registered": 0, "already_registered": 12, "failed": 3,
                                                   "skipped": 6}}
    assert chain.registry.total_supply() == 12

    annul = chain.cli("annul", "20131370998/OC-2026-004607", "--reason", "Duplicada", "--json")
    assert annul.returncode == 0, annul.stderr
    exported = chain.cli("export-ocds", "--out", str(tmp_path / "export.json"), "--json")
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["releases"] == 12
    data = json.loads((tmp_path / "export.json").read_text(encoding="utf-8"))
    for extended in (False, True):
        package_validator, release_validator = validators(extended=extended)
        assert_valid(package_validator, data)
        for each in data["releases"]:
            assert_valid(release_validator, each)

    for each in data["releases"]:
        registration = each["chainRegistration"]
        token_id = int(registration["tokenId"], 16)
        state = chain.registry.state(token_id)
        [document] = each["contracts"][0]["documents"]
        assert document["format"] == "application/pdf"
        assert document["integrity"] == [{"scheme": "sha256", "id": state.document_hash.hex()}]
        digest = bytes.fromhex(document["integrity"][0]["id"])
        assert sha256(stored.get(digest) or b"") == digest
        assert document["url"].endswith(registration["hashlink"])
        assert registration["chainId"] == int(chain.rpc.call("eth_chainId"), 16)
        assert registration["registry"] == chain.registry.address
        assert registration["status"] == state.status
        record = on_chain[each["contracts"][0]["id"]]
        assert (registration["transactionHash"], registration["blockNumber"]) == (record.tx_hash, record.block_number)
        assert each["ocid"] == f"ocds-pecomp-{record.order.entity.key.replace(':', '-')}-{record.order.order_number}"
    annulled = next(r for r in data["releases"] if r["contracts"][0]["id"] == "OC-2026-004607")
    assert annulled["chainRegistration"]["annulReason"] == "Duplicada"
    assert annulled["contracts"][0]["status"] == "cancelled"

    # the export read back by the importer gives the very records on chain (the annulled one is cancelled)
    reimport = chain.cli("register-batch", str(tmp_path / "export.json"), "--dry-run", "--json")
    assert reimport.returncode == 0, reimport.stderr
    back = lines(reimport.stdout)
    assert orders(back) == {number: record.order.to_json() for number, record in on_chain.items()
                            if number != "OC-2026-004607"}
    assert skipped(back) == ["contract 'OC-2026-004607' is cancelled"]


# -- shapes real publishers use (tests/data/ocds: our own files, each reproducing a shape met in the real
# publications of Paraguay's DNCP, Mexico City's finance office, INAI, Jalisco, Nuevo León, Mexico's federal
# Compranet, Colombia Compra Eficiente, Honduras and Ecuador) ---------------------------------------------

DATA = ROOT / "tests" / "data" / "ocds"
NO_PLACE_NOTE = ("no delivery place in the publication (items', contract's or tender's deliveryLocation or "
                 "deliveryAddress): the record says 'No indicado por el publicador'")


def token_of(key: str) -> str:
    """The token id of an order key, computed here from the README's rule (keccak-256 of the key's UTF-8)."""
    from eth_utils.crypto import keccak

    return f"0x{int.from_bytes(keccak(key.encode()), 'big'):064x}"


def by_row(out: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {int(line["row"]): line for line in out}


def test_paraguay_shape_a_buyer_with_only_a_name_is_keyed_under_the_publisher_namespace() -> None:
    lines = by_row(mapped(DATA / "paraguay-shape.json"))
    first = lines[1]
    assert first["status"] == "would_register"
    assert first["entity_ruc"] == "ocds-pytest:1001"  # the ocid prefix, then the ocid's process id
    assert first["token_id"] == token_of("ocds-pytest:1001/CC-1001-2026")
    record = first["record"]
    assert record["entity"] == {"name": "Ministerio de Salud Pública y Bienestar Social", "id": "1001",
                                "scheme": "ocds-pytest"}
    assert record["buyer"] == {"name": "Ministerio de Salud Pública y Bienestar Social"}
    assert record["supplier"] == {"name": "Laboratorio Guaraní S.A.", "id": "80007525-0", "scheme": "PY-RUC"}
    assert record["delivery"] == {"place": "No indicado por el publicador", "deadline": "2026-04-30"}
    assert record["notes"] == [
        "buyer has no identifier: keyed under the publisher's namespace 'ocds-pytest' by its ocid 'ocds-pytest-1001'",
        "supplier identifier '80007525-0' has scheme 'Registro Único de Contribuyente': its check digit (DV) proves "
        "PY-RUC",
        NO_PLACE_NOTE]
    assert first["notes"] == record["notes"]
    # the same scheme text with a check digit that does not validate proves nothing: no identifier, no party id
    assert lines[2]["error"] == ("contract 'CC-1002-2026': supplier 'Distribuidora del Chaco S.R.L.' has no identifier "
                                 "and no party id to key it by: give its identifier (scheme and id)")
    assert "supplier identifier '80007525-1' left out: scheme 'Registro Único de Contribuyente' is neither an org-id " \
           "scheme nor a scheme name of letters, digits, '.', '_' and '-', and the id's shape proves none" in \
           lines[2]["notes"]
    # stable: the same file mapped again gives the same keys and token ids
    again = by_row(mapped(DATA / "paraguay-shape.json"))
    assert again[1]["token_id"] == first["token_id"] and again[1]["record"] == record


def test_local_schemes_numeric_ids_and_a_scheme_without_an_id() -> None:
    lines = by_row(mapped(DATA / "local-schemes.json"))
    assert [line["status"] for line in lines.values()] == ["would_register"] * 4
    inai, jalisco, colombia, compranet = lines[1], lines[2], lines[3], lines[4]
    # INAI-like: a buyer reference {id, name} whose party has a local scheme and the id as a number
    assert inai["record"]["entity"] == {"name": "Dirección General de Administración", "id": "440", "scheme": "CUA"}
    assert inai["entity_ruc"] == "CUA:440" and inai["token_id"] == token_of("CUA:440/CT-001/2026")
    assert inai["record"]["buyer"] == inai["record"]["entity"]
    assert inai["record"]["supplier"] == {"name": "Servicios Integrales del Bajío S.A. de C.V.", "id": "SIB0605124K7",
                                          "scheme": "MX-RFC"}  # "mx-rfc" is the org-id scheme, in capitals
    assert "notes" not in inai["record"]  # nothing inferred, nothing missing
    # Jalisco-like: local schemes kept as published
    assert jalisco["record"]["entity"]["scheme"] == "DEP-GOB-JAL"
    assert jalisco["entity_ruc"] == "DEP-GOB-JAL:SEC-SALUD-12"
    assert jalisco["record"]["supplier"] == {"name": "Insumos Médicos de Occidente S.A.", "id": "PROV-77",
                                             "scheme": "MK-009KDH999"}
    assert jalisco["record"]["total"] == {"amount": "12500.5", "currency": "MXN"}
    # Colombia-like: the buyer reference's id is not its party's id (found by name, spaces aside), and its
    # identifier is {"scheme": "NIT"} without an id: no identifier, so the ocid keys it
    assert colombia["record"]["entity"] == {"name": "ALCALDÍA MUNICIPAL DE EJEMPLO", "id": "CO1.PROC.55",
                                            "scheme": "ocds-cotest"}
    assert colombia["record"]["supplier"] == {"name": "MARÍA FERNANDA ROJAS", "id": "1020304050",
                                              "scheme": "COL-IDCARD"}
    assert colombia["record"]["notes"] == [
        "buyer identifier scheme 'NIT' has no id: no identifier",
        "buyer has no identifier: keyed under the publisher's namespace 'ocds-cotest' by its ocid "
        "'ocds-cotest-CO1.PROC.55'",
        NO_PLACE_NOTE]
    # Compranet-like: "identifier": null, the award's supplier in `supplier`, an RFC under a scheme written out
    assert compranet["record"]["entity"] == {"name": "Secretaría de Educación", "id": "1886261",
                                             "scheme": "ocds-fedtst"}
    assert compranet["record"]["supplier"] == {"name": "CONSTRUCTORA IDEAL DEL CENTRO", "id": "CID980213EQ9",
                                               "scheme": "MX-RFC"}
    assert "award '1886261' names its supplier in `supplier` (OCDS: `suppliers`)" in compranet["notes"]
    assert ("supplier identifier 'CID980213EQ9' has scheme 'Registro Federal de Contribuyentes de México': the RFC "
            "pattern proves MX-RFC") in compranet["record"]["notes"]


def test_rfcs_and_check_digits_infer_a_scheme_only_when_the_id_proves_it() -> None:
    lines = by_row(mapped(DATA / "rfc-and-check-digits.json"))
    first, second, nit, bad_dv = lines[1], lines[2], lines[3], lines[4]
    # RFCs given as the id with no scheme (OCDS 1.0 style, identifiers inline, no parties)
    assert first["record"]["entity"] == {"name": "SECRETARÍA DE FINANZAS", "id": "SFI9712054NA", "scheme": "MX-RFC"}
    assert first["record"]["supplier"] == {"name": "REDES & MEDIOS SA DE CV", "id": "R&M0503157Q3", "scheme": "MX-RFC"}
    # contract id "1" in both ocids of one buyer: each order number carries its process, so both register
    assert (first["record"]["order_number"], second["record"]["order_number"]) == ("AD-01-2026/1", "AD-02-2026/1")
    assert first["token_id"] == token_of("MX-RFC:SFI9712054NA/AD-01-2026/1") != second["token_id"]
    assert first["record"]["notes"] == [
        "buyer identifier 'SFI9712054NA' has no scheme: the RFC pattern proves MX-RFC",
        "contract id '1' numbers it only within its process: order number 'AD-01-2026/1'",
        "supplier identifier 'R&M0503157Q3' has no scheme: the RFC pattern proves MX-RFC",
        NO_PLACE_NOTE]
    assert second["record"]["total"] == {"amount": "800", "currency": "MXN"}
    # CO-NIT: a valid DV proves it, under the published scheme "NIT" or with no scheme at all
    assert nit["record"]["entity"] == {"name": "AGENCIA NACIONAL DE EJEMPLO", "id": "800197268-4", "scheme": "CO-NIT"}
    assert nit["record"]["supplier"]["scheme"] == "CO-NIT"
    assert "supplier identifier '860034313-7' has no scheme: its check digit (DV) proves CO-NIT" in \
        nit["record"]["notes"]
    # an invalid DV proves nothing: "NIT" stays the publisher's own scheme; with no scheme the id is left out
    assert bad_dv["error"] == ("contract '78-C': supplier 'SUMINISTROS ANDINOS SAS' has no identifier and no party id "
                               "to key it by: give its identifier (scheme and id)")
    assert bad_dv["notes"][0] == ("supplier identifier '860034313-8' left out: no scheme, and its shape proves none "
                                  "(a PE-RUC, PY-RUC or CO-NIT check digit, the MX-RFC pattern)")


def test_check_digits_of_paraguay_ruc_and_colombia_nit() -> None:
    from peru_compras.ocds import co_nit_is_valid, py_ruc_is_valid

    for valid in ("80007525-0", "80001870-2", "80002742-6"):  # DVs as Paraguay's SET computes them
        assert py_ruc_is_valid(valid)
        assert not py_ruc_is_valid(valid[:-1] + str((int(valid[-1]) + 1) % 10))
    for valid in ("800197268-4", "860034313-7", "900514813-2", "899999034-1"):  # DVs as Colombia's DIAN computes them
        assert co_nit_is_valid(valid)
        assert not co_nit_is_valid(valid[:-1] + str((int(valid[-1]) + 1) % 10))
    assert not py_ruc_is_valid("80007525") and not co_nit_is_valid("8001972684")  # the DV is written after a '-'


def test_what_is_not_an_order_is_refused_or_skipped_with_its_reason() -> None:
    out = mapped(DATA / "refusals.json")
    assert [(line["row"], line.get("status"), line.get("reason") or line.get("error")) for line in out] == [
        (1, "skipped", "no contract or award with items"),
        (2, "skipped", "contract 'OC-2026-0002' has no items (nor has its award)"),
        (3, None, "contract 'OC-2026-0003': item 1 ('Servicio de limpieza') has no quantity"),
        (4, "skipped", "award '4-A' has no items"),
        (5, None, "contract 'OC-2026-0005': buyer identifier '20131370999' is given as PE-RUC but fails SUNAT's "
                  "check digit"),  # SPEC's RUC rule, unchanged
        (6, None, "contract 'OC-2026-0006': buyer identifier '20131370999' has scheme 'RUC' and a Peruvian RUC's "
                  "shape, but fails SUNAT's check digit"),  # never kept as a local scheme "RUC"
    ]


def _standard_zip(folder: Path) -> str:
    """The OCDS standard as lib-cove-ocds reads it (a ZIP with schema/), built from the pinned local schemas in
    .cache/ocds: the 1.1.5 package schema, the 1.1.4 release schema, and the versioned-release schema that
    ocdsextensionregistry derives from it. Nothing is downloaded."""
    import zipfile

    from ocdsextensionregistry.versioned_release_schema import get_versioned_release_schema

    package_schema, release_schema = _official()
    path = folder / "standard.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("standard-1__1__5/", "")
        archive.writestr("standard-1__1__5/schema/release-package-schema.json", json.dumps(package_schema))
        archive.writestr("standard-1__1__5/schema/release-schema.json", json.dumps(release_schema))
        archive.writestr("standard-1__1__5/schema/versioned-release-validation-schema.json",
                         json.dumps(get_versioned_release_schema(release_schema, "1__1__4")))
    return f"file://{path}"


def lib_cove_ocds(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """lib-cove-ocds 0.17.0 (the library behind OCDS's Data Review Tool) on a release package, offline: its
    schema validation (lib-cove's validator on SchemaOCDS), its additional checks and its OCID-prefix
    conformance check. Two parts of its full run need the network and are left out: the package's listed
    extensions (it downloads each; the location extension's fields are then reported as additional fields,
    not errors) and its codelist report, which needs the standard's codelist CSVs (not in the pinned copy;
    without them libcoveocds 0.17.0's process_codelists raises AttributeError) — closed-codelist values are
    checked by the official schema's enums in our own validation instead."""
    from libcove.lib.common import common_checks_context
    from libcoveocds.common_checks import get_bad_ocid_prefixes
    from libcoveocds.config import LibCoveOCDSConfig
    from libcoveocds.lib.additional_checks import CHECKS, run_additional_checks
    from libcoveocds.schema import SchemaOCDS

    config = LibCoveOCDSConfig()
    config.config.update(context="api", standard_zip=_standard_zip(folder))
    offline = {key: value for key, value in data.items() if key != "extensions"}
    schema = SchemaOCDS(None, offline, config)
    context = common_checks_context("", offline, schema, "-", {"file_type": "json"}, fields_regex=True, api=True,
                                    cache=False)["context"]
    return {"validation_errors": context["validation_errors"], "version_used": schema.version,
            "additional_checks": dict(run_additional_checks(offline, CHECKS["all"])),
            "ocid_prefixes_bad_format": get_bad_ocid_prefixes(offline),
            "additional_fields": context.get("additional_fields")}


def test_lib_cove_ocds_catches_what_it_should(tmp_path: Path) -> None:
    broken = {"uri": "https://oc.example.pe/p.json", "version": "1.1", "publishedDate": "2026-03-02T10:00:00Z",
              "publisher": {"name": "x"}, "releases": [
                  {"ocid": "ocds-x-1", "id": "1", "date": "2026-03-02", "tag": ["order"], "initiationType": "tender",
                   "contracts": [{"id": "1", "awardID": "1", "value": {"amount": "10", "currency": "PEN"}}]}]}
    result = lib_cove_ocds(broken, tmp_path)
    messages = " | ".join(json.loads(error)["message"] for error, _ in result["validation_errors"])
    assert "Date is not in the correct format" in messages and "'amount' is not a number" in messages, messages
    # a closed-codelist value ("order" as a tag) is lib-cove-ocds' codelist report, the step left out offline;
    # the official schema's enum catches it in test_the_schema_check_catches_what_it_should
    assert "order" not in messages
    assert result["ocid_prefixes_bad_format"]  # "ocds-x" is no registered-prefix shape


def test_real_shapes_registered_twice_exported_and_checked_by_lib_cove_ocds(chain: Chain, tmp_path: Path) -> None:
    manifest = tmp_path / "shapes.jsonl"
    manifest.write_text("".join(json.dumps(json.loads(path.read_text(encoding="utf-8")), ensure_ascii=False) + "\n"
                                for path in sorted(DATA.glob("*.json"))), encoding="utf-8")
    first = chain.cli("register-batch", str(manifest), "--json")
    out = lines(first.stdout)
    assert first.returncode == 1, first.stderr  # five releases are refused, each on its line
    assert out[-1] == {"summary": {"registered": 8, "already_registered": 0, "failed": 5, "skipped": 3}}
    registered = {str(line["entity_ruc"]) + "/" + str(line["order_number"]): str(line["token_id"])
                  for line in out if line.get("status") == "registered"}
    assert all(token_of(key) == token for key, token in registered.items())
    again = chain.cli("register-batch", str(manifest), "--json")
    assert lines(again.stdout)[-1] == {"summary": {"registered": 0, "already_registered": 8, "failed": 5,
                                                   "skipped": 3}}
    assert {str(line["entity_ruc"]) + "/" + str(line["order_number"]): str(line["token_id"])
            for line in lines(again.stdout) if line.get("status") == "already_registered"} == registered
    assert chain.registry.total_supply() == 8
    shown = chain.cli("show", "ocds-pytest:1001/CC-1001-2026", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["notes"][0].startswith("buyer has no identifier: keyed under")

    exported = chain.cli("export-ocds", "--out", str(tmp_path / "export.json"), "--json")
    assert exported.returncode == 0, exported.stderr
    data = json.loads((tmp_path / "export.json").read_text(encoding="utf-8"))
    assert len(data["releases"]) == 8
    for extended in (False, True):
        package_validator, release_validator = validators(extended=extended)
        assert_valid(package_validator, data)
        for each in data["releases"]:
            assert_valid(release_validator, each)
    result = lib_cove_ocds(data, tmp_path)
    assert result["version_used"] == "1.1"
    assert result["validation_errors"] == [] and result["additional_checks"] == {}
    assert result["ocid_prefixes_bad_format"] == []
    # the export read back gives the very records on chain, notes included
    back = orders(lines(chain.cli("register-batch", str(tmp_path / "export.json"), "--dry-run", "--json").stdout))
    for release in data["releases"]:
        token = release["chainRegistration"]["tokenId"]
        assert back[release["contracts"][0]["id"]] == chain.registry.read(int(token, 16)).order.to_json()
