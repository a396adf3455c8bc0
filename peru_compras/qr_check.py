"""The offline QR check's use cases (`verify-qr`, `trust-pack`): read the QR from its text or from a photo of
the paper, get the trust pack (a file, or the chain now), check it (:func:`verify_qr`: the signature, the
signer against the pack's registrars, the host against its hosts, the order against its annulled and
superseded ids; the statuses are explained in :mod:`.signed_qr`), and say it in words for the clerk.

A photo (at most :data:`MAX_IMAGE_BYTES`, PNG or JPEG by its first bytes) is decoded by ZBar's ``zbarimg``
through :func:`peru_compras.qr.decode_image` (a private temporary folder, 1 GiB of address space, 10 s).
The QR text given on the command line is at most :data:`MAX_TEXT` characters.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InvalidInput
from .trust import read_limited, url_host
from .urls import order_key_from_verify_url, token_hex

if TYPE_CHECKING:
    from collections.abc import Callable

    from .chain.client import Registry
    from .order import Order
    from .signed_qr import Facts
    from .trust import TrustPack
    from .workspace import Session

MAX_IMAGE_BYTES = 32 * 1024 * 1024
MAX_TEXT = 4096
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")


def qr_text_of(argument: str) -> str:
    """The QR text: `argument` itself, or — when it names a PNG or JPEG file — the one QR decoded from it."""
    path = Path(argument)
    if "://" not in argument and len(argument) < 4096 and path.is_file():
        return _decode_photo(path)
    if len(argument) > MAX_TEXT:
        raise InvalidInput(f"the QR text has {len(argument):,} characters, over {MAX_TEXT:,}",
                           hint="give the text a QR holds (at most 200 characters for ours), or a photo of it")
    return argument


def _decode_photo(path: Path) -> str:
    import shutil

    from . import qr

    data = read_limited(path, MAX_IMAGE_BYTES, "photo")
    if not data.startswith(_IMAGE_MAGIC):
        raise InvalidInput(f"{str(path)!r} is not a PNG or JPEG image", hint="give a photo of the QR, or its text")
    if shutil.which("zbarimg") is None:
        raise InvalidInput("reading a photo needs zbarimg (Debian: zbar-tools)", hint="or give the QR's text")
    found = qr.decode_image(data)  # bounded: RenderError (exit 2) past its memory or time
    # a paper may carry other codes (a tax authority's, a supplier's): the one naming an order page is ours
    ours = [text for text in found if order_key_from_verify_url(text.partition("#")[0][:2048])]
    if len(ours) != 1 and len(found) != 1:
        raise InvalidInput(f"{str(path)!r} shows {len(found) or 'no'} QR codes, {len(ours)} of an order's page: "
                           "one is needed", hint="take the photo again, closer and in focus, or give the QR's text")
    return (ours or found)[0][:MAX_TEXT]


def pack_for(trust_file: Path | None, registry: Registry | None, hosts: tuple[str, ...] = ()) -> TrustPack:
    """The pack to check against: the file given, else one read from the chain now."""
    from .trust import read_trust_file, read_trust_pack

    if trust_file is not None:
        return read_trust_file(trust_file)
    if registry is None:
        raise InvalidInput("verify-qr needs a trust pack or a node", hint="give --trust PACK (offline) or --rpc")
    return read_trust_pack(registry, hosts=hosts)


def check(argument: str, pack: TrustPack) -> QrVerdict:
    return verify_qr(qr_text_of(argument), pack)


@dataclass(frozen=True, slots=True)
class QrVerdict:
    """The offline check of one QR text against a trust pack."""

    status: str
    signer: str | None = None
    facts: Facts | None = None
    trust_block: int | None = None
    trust_time: str | None = None
    host: str | None = None
    host_trusted: bool | None = None
    order_status: str | None = None
    replaced_by: str | None = None
    revoked_block: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """Green: signed by a current registrar, pointing at the registry's page, neither annulled nor
        superseded as of the pack's block."""
        return self.status == "signed" and bool(self.host_trusted) and self.order_status == "valid"

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "signer": self.signer, "facts": self.facts.to_json() if self.facts else None,
                "trust_block": self.trust_block, "trust_time": self.trust_time, "host": self.host,
                "host_trusted": self.host_trusted, "order_status": self.order_status,
                "replaced_by": self.replaced_by, "revoked_block": self.revoked_block, "problem": self.problem}


def verify_qr(text: str, pack: TrustPack) -> QrVerdict:
    """Check a QR text offline: its signature, its signer against `pack`'s registrars, its host against the
    pack's hosts and its order against the annulled and superseded ids. Never raises on a bad QR: every
    shape of input is a verdict."""
    url, hashmark, fragment = text.strip().partition("#")
    host = url_host(url)
    base = QrVerdict("not_signed", trust_block=pack.block, trust_time=pack.time, host=host,
                     host_trusted=host is not None and host in pack.hosts)
    order_key = order_key_from_verify_url(url) if len(url) <= 2048 else None
    if not hashmark or not fragment:
        return replace(base, problem="a plain QR (no signature): verify it online" if order_key else
                       "not an order's verify URL")
    if order_key is None:
        return replace(base, status="bad_signature", problem="the QR's address is not an order's page")
    from .signed_qr import PayloadError, decode, digest, from_text, recover

    try:
        facts, signature = decode(order_key, from_text(fragment))
        signer = recover(digest(facts, pack.chain_id, pack.registry), signature)
    except PayloadError as exc:
        return replace(base, status="bad_signature", problem=str(exc))
    token = token_hex(facts.token_id)
    order_status, replaced_by = "valid", None
    if token in pack.annulled:
        order_status = "annulled"
    elif token in pack.superseded:
        order_status, replaced_by = "superseded", pack.superseded[token]
    held, revoked = pack.registrar(signer)
    problem = None
    if not held:
        problem = (f"{signer} lost the registrar role at block {revoked}" if revoked is not None else
                   f"{signer} is not a registrar of {pack.registry} (or the facts were altered after signing)")
    return replace(base, status="signed" if held else "unknown_signer", signer=signer, facts=facts,
                   order_status=order_status, replaced_by=replaced_by, revoked_block=revoked, problem=problem)




def describe(verdict: QrVerdict) -> str:
    """The verdict in words for the clerk: a headline, the signed facts to compare with the paper, warnings."""
    as_of = f"as of block {verdict.trust_block}, {verdict.trust_time}"
    headline = {
        "signed": f"SIGNED by registrar {verdict.signer} ({as_of})",
        "unknown_signer": f"UNKNOWN SIGNER: {verdict.problem} ({as_of}) — do not accept this paper",
        "bad_signature": f"BAD SIGNATURE: {verdict.problem} — do not accept this paper",
        "not_signed": f"NOT SIGNED: {verdict.problem}",
    }[verdict.status]
    lines = [headline]
    facts = verdict.facts
    if facts is not None:
        entity, _, number = facts.order_key.partition("/")
        lines += [f"  order {number} of entity {entity}", f"  issued on {facts.issued_on}",
                  f"  supplier {facts.supplier}", f"  total {facts.total} {facts.currency}",
                  f"  {facts.items} item{'s' if facts.items != 1 else ''}"]
        if verdict.status == "signed":
            lines.append("  compare each line with the paper in hand")
    if verdict.host_trusted is False:
        lines.append(f"WARNING: the QR points to {verdict.host or 'no host'}, not the registry's page — a fake QR? "
                     "Do not open its link")
    if verdict.order_status == "annulled":
        lines.append(f"ANNULLED {as_of}")
    elif verdict.order_status == "superseded":
        lines.append(f"SUPERSEDED by token {verdict.replaced_by} {as_of}")
    return "\n".join(lines)


def render_signer(session: Session, *, warn: Callable[[str], None]) -> Callable[[Order], str | None] | None:
    """What signs a rendered order's QR: the session's registrar signer when a registry is known without
    starting anything (given, or remembered for a node that runs); None (a plain QR, as before) otherwise.
    A registry that is set up but cannot sign (no key, a node that does not answer) is one warning line."""
    from .errors import ConfigurationError, NodeUnavailable
    from .workspace import Workspace

    if isinstance(session, Workspace) and session.settings.is_embedded and session.chain.running() is None:
        return None  # this folder's chain is not running: rendering does not start it
    try:
        if not session.settings.registry and not session.remembered_registry():
            return None
        return session.qr_signer()
    except (ConfigurationError, NodeUnavailable) as exc:
        warn(f"signed QR not used ({exc.message}); the plain QR verifies online")
        return None


def write_pack(registry: Registry, out: Path, *, hosts: tuple[str, ...] = (), block: int | None = None) -> TrustPack:
    """Read the pack from the chain and write it to `out` (atomically)."""
    import json

    from .store import write_atomic
    from .trust import read_trust_pack

    pack = read_trust_pack(registry, hosts=hosts, block=block)
    try:
        write_atomic(out, (json.dumps(pack.to_json(), indent=1) + "\n").encode())
    except OSError as exc:
        raise InvalidInput(f"cannot write --out {str(out)!r}: {exc.strerror}", hint="choose another --out") from None
    return pack
