"""Mapping the releases of one ocid to manifest rows: merged in date order, one order per contract (or
award without one) with items, a line with the reason for every other release."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..order import _IDENTIFIER
from ..rows import Row
from .clean import _date, _ident, _list, _number, _obj, _Refusal, _text, _when, find_pdf
from .identifiers import _Notes, identify

_OCID = re.compile(r"((?i:ocds)-[A-Za-z0-9]{6})-(.+)")  # the publisher's registered prefix, then its process id
_POSITION = re.compile(r"[0-9]{1,3}")  # a contract id that only numbers the contract within its process
_CURRENCY_ALIASES = {"S/": "PEN", "S/.": "PEN", "SOL": "PEN", "SOLES": "PEN", "NUEVOS SOLES": "PEN",
                     "US$": "USD", "DOLARES": "USD", "DÓLARES": "USD"}
_SKIPPED_AWARDS = ("pending", "cancelled", "unsuccessful")
#: The delivery place of an order whose publication gives none (Spanish, as the page: "not stated by the
#: publisher"); noted in the record.
NO_PLACE = "No indicado por el publicador"



@dataclass
class _Release:
    number: int
    data: dict[str, Any]

    @property
    def id(self) -> str | None:
        return _ident(self.data.get("id"))

    @property
    def ocid(self) -> str | None:
        return _ident(self.data.get("ocid"))

    @property
    def when(self) -> datetime:
        return _when(self.data.get("date"))

    def source(self, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"ocid": self.ocid, "release_id": self.id}
        out.update({k: v for k, v in extra.items() if v})
        return out


def _overlay(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """`base` with `top`'s non-null values over it (one level; lists replace only when not empty)."""
    out = dict(base)
    for key, value in top.items():
        if value is None or value == [] or value == {}:
            continue
        if key == "roles" and isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = list(dict.fromkeys(str(role) for role in [*out[key], *value]))
        else:
            out[key] = value
    return out


def _same_name(value: Any) -> str:
    return " ".join(str(value).split()).casefold() if isinstance(value, str) else ""


def _roles(party: dict[str, Any]) -> set[str]:
    return {str(role).strip().lower() for role in _list(party.get("roles"))}


@dataclass
class _Tracked:
    """A contract or award merged over the releases of one ocid (date order)."""

    kind: str
    id: str | None
    data: dict[str, Any] = field(default_factory=dict)
    releases: list[_Release] = field(default_factory=list)

    @property
    def owner(self) -> _Release:
        return self.releases[-1]

    def label(self) -> str:
        return f"{self.kind} {self.id!r}"


class _Process:
    """The releases of one ocid, merged; turns each contract (or uncontracted award) into a row."""

    def __init__(self, releases: list[_Release], pdf_dir: Path | None) -> None:
        self.releases = sorted(releases, key=lambda r: (r.when, r.number))
        self.ocid = self.releases[0].ocid
        self.pdf_dir = pdf_dir
        self.parties: dict[str, dict[str, Any]] = {}
        self.buyer_ref: dict[str, Any] | None = None
        self.tender: dict[str, Any] = {}
        self.contracts: dict[str, _Tracked] = {}
        self.awards: dict[str, _Tracked] = {}
        for release in self.releases:
            data = release.data
            for party in _list(data.get("parties")):
                party = _obj(party)
                key = _ident(party.get("id")) or f"name:{party.get('name')}"
                self.parties[key] = _overlay(self.parties.get(key, {}), party)
            if _obj(data.get("buyer")):
                self.buyer_ref = _obj(data.get("buyer"))
            self.tender = _overlay(self.tender, _obj(data.get("tender")))
            for kind, store in (("contract", self.contracts), ("award", self.awards)):
                for index, raw in enumerate(_list(data.get(f"{kind}s"))):
                    raw = _obj(raw)
                    ident = _ident(raw.get("id"))
                    key = ident or f"\x00{release.number}:{index}"
                    tracked = store.setdefault(key, _Tracked(kind, ident))
                    tracked.data = _overlay(tracked.data, raw)
                    if not tracked.releases or tracked.releases[-1] is not release:
                        tracked.releases.append(release)
        self.contracted = {award: c for c in self.contracts.values() if (award := _ident(c.data.get("awardID")))}

    # -- lines ----------------------------------------------------------------------------------------

    def rows(self) -> list[Row]:
        rows: list[Row] = []
        for tracked in [*self.contracts.values(), *self.awards.values()]:
            if tracked.kind == "award" and tracked.id in self.contracted:
                continue
            extra = {f"{tracked.kind}_id": tracked.id}
            for earlier in tracked.releases[:-1]:
                rows.append(Row(earlier.number, None, None, (
                    f"{tracked.label()} is taken from release {tracked.owner.id!r} "
                    f"({tracked.owner.data.get('date')}), the latest that has it"),
                    skipped=True, source=earlier.source(**extra)))
            rows.append(self._row(tracked))
        covered = {row.number for row in rows}
        for release in self.releases:
            if release.number in covered:
                continue
            awards = [_ident(_obj(a).get("id")) for a in _list(release.data.get("awards"))]
            through = [f"award {a!r} through contract {self.contracted[a].id!r}" for a in awards
                       if a in self.contracted]
            reason = ("no contract or award with items" + (f" of its own ({'; '.join(through)})" if through else ""))
            rows.append(Row(release.number, None, None, reason, skipped=True, source=release.source()))
        return rows

    def _row(self, tracked: _Tracked) -> Row:
        notes = _Notes()
        owner = tracked.owner
        for note in _list(_obj(owner.data.get("chainRegistration")).get("recordNotes")):
            if isinstance(note, str):  # our own export read back: the notes the record on chain carries
                notes.infer(note)
        number_hint = {"order_number": tracked.id} if tracked.id else None
        source = owner.source(**{f"{tracked.kind}_id": tracked.id})
        try:
            record = self._record(tracked, notes)
        except _Skip as skip:
            return Row(owner.number, None, None, str(skip), skipped=True, source=source)
        except _Refusal as refusal:
            if notes:
                source["notes"] = notes
            return Row(owner.number, number_hint, None, f"{tracked.label()}: {refusal}", source=source)
        if notes:
            source["notes"] = notes
        pdf = find_pdf(str(record["order_number"]), self.pdf_dir)
        return Row(owner.number, record, pdf, render=pdf is None, source=source)

    # -- the record -----------------------------------------------------------------------------------

    def _record(self, tracked: _Tracked, notes: _Notes) -> dict[str, Any]:
        data = tracked.data
        award = self._award_of(tracked)
        items = _list(data.get("items")) or _list(award.get("items"))
        if not items:
            raise _Skip(f"{tracked.label()} has no items" + (" (nor has its award)" if tracked.kind == "contract"
                                                              else ""))
        status = str(data.get("status") or "").lower()
        if tracked.kind == "contract" and status == "cancelled":
            raise _Skip(f"{tracked.label()} is cancelled")
        if tracked.kind == "award" and status in _SKIPPED_AWARDS:
            raise _Skip(f"{tracked.label()} is {status}, and no contract points to it")
        if tracked.id is None:
            raise _Refusal("has no id (the order number comes from it)")
        entity = self._party(self._buyer(), "buyer", notes, required=True, by_ocid=True)
        procuring, buying = self._procuring(), self._buyer()
        same = (_ident(procuring.get("id")), _same_name(procuring.get("name"))) == (
            _ident(buying.get("id")), _same_name(buying.get("name")))
        buyer = self._party(procuring, "procuring entity", _Notes() if same else notes, required=False)
        record: dict[str, Any] = {
            "order_number": self._order_number(tracked, notes),
            "issued_on": self._issued_on(tracked, award),
            "entity": entity,
            "buyer": buyer,
            "supplier": self._party(self._supplier(tracked, award, notes), "supplier", notes, required=True),
            "items": [self._item(index, item, notes) for index, item in enumerate(items)],
            "total": self._total(data, award, entity, items, notes),
            "delivery": self._delivery(data, award, items, notes),
        }
        if notes.recorded:
            record["notes"] = notes.for_record()
        return record

    def _order_number(self, tracked: _Tracked, notes: _Notes) -> str:
        """The contract's (or award's) id; an id of 1 to 3 digits only numbers it within its process (Mexico
        City's "1" in every ocid), so the ocid's process id goes before it: ``AD-SF-DRM-063-2015/1``."""
        ident = str(tracked.id)
        prefix = _OCID.fullmatch(self.ocid or "")
        if not _POSITION.fullmatch(ident) or prefix is None:
            return ident
        number = f"{prefix.group(2)}/{ident}"
        notes.infer(f"{tracked.kind} id {ident!r} numbers it only within its process: order number {number!r}")
        return number

    def _award_of(self, tracked: _Tracked) -> dict[str, Any]:
        if tracked.kind == "award":
            return tracked.data
        award_id = _ident(tracked.data.get("awardID"))
        found = self.awards.get(award_id) if award_id else None
        return found.data if found else {}

    def _org(self, ref: dict[str, Any]) -> dict[str, Any]:
        """An organization reference completed from the parties: by id, else by name (white space and
        casing aside), else the reference alone (an OCDS 1.0 reference carries its own identifier)."""
        key = _ident(ref.get("id"))
        party = self.parties.get(key) if key else None
        name = _same_name(ref.get("name"))
        if party is None and name:
            party = next((p for p in self.parties.values() if _same_name(p.get("name")) == name), None)
        return _overlay(ref, party or {})

    def _with_role(self, role: str) -> list[dict[str, Any]]:
        return [party for party in self.parties.values() if role.lower() in _roles(party)]

    def _buyer(self) -> dict[str, Any]:
        if self.buyer_ref:
            return self._org(self.buyer_ref)
        found = self._with_role("buyer")
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            names = ", ".join(repr(p.get("name")) for p in found)
            raise _Refusal(f"several parties have the role buyer ({names}); give `buyer`")
        others = f" nor in the {len(self.releases) - 1} other releases of its ocid" if len(self.releases) > 1 else ""
        raise _Refusal(f"no buyer: neither `buyer` nor a party with role buyer in its release{others}")

    def _procuring(self) -> dict[str, Any]:
        ref = _obj(self.tender.get("procuringEntity"))
        if ref:
            return self._org(ref)
        found = self._with_role("procuringEntity")
        return found[0] if len(found) == 1 else self._buyer()

    def _supplier(self, tracked: _Tracked, award: dict[str, Any], notes: _Notes) -> dict[str, Any]:
        suppliers = [_obj(s) for s in _list(award.get("suppliers"))]
        if not suppliers and _obj(award.get("supplier")):  # Mexico's Compranet writes one `supplier` object
            notes.append(f"award {award.get('id')!r} names its supplier in `supplier` (OCDS: `suppliers`)")
            suppliers = [_obj(award.get("supplier"))]
        if len(suppliers) > 1:
            raise _Refusal(f"award {award.get('id')!r} has {len(suppliers)} suppliers; an order names one")
        if suppliers:
            return self._org(suppliers[0])
        found = self._with_role("supplier")
        if len(found) == 1:
            if award:
                notes.infer(f"award {award.get('id')!r} names no supplier: the one party with role supplier")
            return found[0]
        if not award:
            raise _Refusal(f"its award {tracked.data.get('awardID')!r} is in no release of its ocid "
                           "(the supplier comes from the award)")
        raise _Refusal(f"award {award.get('id')!r} names no supplier, and {len(found)} parties have the role "
                       "supplier")

    def _party(self, org: dict[str, Any], role: str, notes: _Notes, *, required: bool,
               by_ocid: bool = False) -> dict[str, Any]:
        """A record party (``{name, ruc}`` or ``{name, id, scheme}``) from what the publisher gave (see
        :func:`identify`). With no identifier at all, the entity is keyed under the publisher's namespace by
        the ocid (``ocid`` given), the supplier by its party id there; the purchasing unit stays a name."""
        identifier = _obj(org.get("identifier"))
        name = _text(org.get("name"), notes, f"{role} name") or _text(identifier.get("legalName"), notes,
                                                                        f"{role} legal name")
        found = identify(org, role, notes)
        if found is not None:
            return {"name": name, **found}
        if not required:
            return {"name": name}
        prefix = _OCID.fullmatch(self.ocid or "")
        if prefix is None:
            raise _Refusal(f"{role} {name!r} has no identifier, and its ocid {self.ocid!r} has no publisher prefix "
                           "(ocds- and 6 characters) to key it under")
        if by_ocid:
            own, what = prefix.group(2), f"by its ocid {self.ocid!r}"
        else:
            own, what = _ident(org.get("id")) or "", f"by its party id {_ident(org.get('id'))!r}"
        if not own:
            raise _Refusal(f"{role} {name!r} has no identifier and no party id to key it by: give its identifier "
                           "(scheme and id)")
        if not _IDENTIFIER.fullmatch(own):
            raise _Refusal(f"{role} {name!r} has no identifier, and {what.removeprefix('by its ')} cannot key it "
                           "(letters, digits, '.' and '-', at most 40)")
        notes.infer(f"{role} has no identifier: keyed under the publisher's namespace {prefix.group(1)!r} {what}")
        return {"name": name, "id": own, "scheme": prefix.group(1)}

    def _issued_on(self, tracked: _Tracked, award: dict[str, Any]) -> str | None:
        signed = tracked.data.get("dateSigned") if tracked.kind == "contract" else award.get("date")
        return _date(signed) or _date(tracked.releases[0].data.get("date"))

    def _item(self, index: int, item: Any, notes: _Notes) -> dict[str, Any]:
        item = _obj(item)
        classification = _obj(item.get("classification"))
        where = f"item {index + 1}"
        description = _text(item.get("description"), notes, f"{where} description") or _text(
            classification.get("description"), notes, f"{where} classification")
        if item.get("quantity") is None:
            raise _Refusal(f"{where} ({description or item.get('id')!r}) has no quantity")
        unit = _obj(item.get("unit"))
        out: dict[str, Any] = {
            "description": description,
            "quantity": _number(item.get("quantity")),
            "unit": _text(unit.get("name"), notes, f"{where} unit") or _text(unit.get("id")),
        }
        price = _obj(unit.get("value")).get("amount")
        if price is not None:
            out["unit_price"] = _number(price)
        for candidate in [classification, *map(_obj, _list(item.get("additionalClassifications")))]:
            if "CUBSO" in str(candidate.get("scheme") or "").upper():
                code = _ident(candidate.get("id"))
                if code and re.fullmatch(r"[0-9]{8,16}", code):
                    out["cubso"] = code
                    break
                notes.append(f"{where}: CUBSO code {code!r} left out (8 to 16 digits expected)")
        return out

    def _total(self, data: dict[str, Any], award: dict[str, Any], entity: dict[str, Any], items: list[Any],
               notes: _Notes) -> dict[str, Any]:
        value = _obj(data.get("value")) if _obj(data.get("value")).get("amount") is not None else _obj(
            award.get("value"))
        if value.get("amount") is None:
            computed = _items_total(items)
            if computed is None:
                raise _Refusal("no value (contract.value or its award's value), and its items' quantities and unit "
                               "prices do not give one (each item needs unit.value in one currency)")
            value = computed
            notes.infer(f"no value: the sum of its items' quantity × unit price, {value['amount']}")
        currency = _ident(value.get("currency"))
        if currency is None:
            if "ruc" not in entity:
                raise _Refusal("its value has no currency")
            notes.infer("value has no currency: PEN (a Peruvian buyer)")
            currency = "PEN"
        code = currency.upper()
        code = _CURRENCY_ALIASES.get(" ".join(code.split()), code)
        if code != currency:
            notes.infer(f"currency {currency!r} read as {code}")
        return {"amount": _number(value.get("amount")), "currency": code}

    def _delivery(self, data: dict[str, Any], award: dict[str, Any], items: list[Any],
                  notes: _Notes) -> dict[str, Any]:
        places: list[str] = []
        for item in map(_obj, items):
            place = _place(item.get("deliveryLocation"), item.get("deliveryAddress"), notes)
            if place and place not in places:
                places.append(place)
        if not places:
            for holder in (data, self.tender):
                for key in ("deliveryLocation", "deliveryAddress", "deliveryLocations", "deliveryAddresses"):
                    given = holder.get(key)
                    for value in given if isinstance(given, list) else [given]:
                        place = _place(value, value, notes)
                        if place and place not in places:
                            places.append(place)
                if places:
                    break
        if not places:
            notes.infer("no delivery place in the publication (items', contract's or tender's deliveryLocation "
                        f"or deliveryAddress): the record says {NO_PLACE!r}")
            places.append(NO_PLACE)
        out: dict[str, Any] = {"place": "; ".join(places)}
        for period in (data.get("period"), award.get("contractPeriod"), self.tender.get("contractPeriod")):
            period = _obj(period)
            days = period.get("durationInDays")
            if isinstance(days, Decimal) and days.is_finite() and days == days.to_integral_value():
                days = int(days)
            elif isinstance(days, str) and days.strip().isdigit():
                days = int(days.strip())
            if days is not None:
                out["term_days"] = days
                return out
            deadline = _date(period.get("endDate"))
            if deadline:
                out["deadline"] = deadline
                return out
        raise _Refusal("no delivery term (contract.period durationInDays or endDate, or the award's or tender's "
                       "contractPeriod)")


def _items_total(items: list[Any]) -> dict[str, Any] | None:
    """Σ quantity × unit.value.amount when every item gives both as numbers, in one currency; else None."""
    total, currencies = Decimal(0), set()
    for item in map(_obj, items):
        price = _obj(_obj(item.get("unit")).get("value"))
        numbers = [Decimal(n) for n in (item.get("quantity"), price.get("amount"))
                   if isinstance(n, Decimal | int) and not isinstance(n, bool)]
        if len(numbers) != 2 or not all(n.is_finite() and abs(n.adjusted()) < 16 for n in numbers):
            return None
        total += numbers[0] * numbers[1]
        currencies.add(_ident(price.get("currency")))
    if len(currencies) != 1 or total <= 0:
        return None
    return {"amount": total, "currency": currencies.pop()}


class _Skip(_Refusal):
    """Nothing to register here, and nothing wrong either (no items, cancelled)."""


def _place(location: Any, address: Any, notes: list[str]) -> str | None:
    if isinstance(location, str):
        return _text(location, notes, "delivery place")
    described = _text(_obj(location).get("description"), notes, "delivery place")
    if described:
        return described
    parts: list[str] = []
    for key in ("streetAddress", "locality", "region", "countryName"):
        part = _text(_obj(address).get(key), notes, "delivery address")
        if part and part not in parts:
            parts.append(part)
    return ", ".join(parts) or None
