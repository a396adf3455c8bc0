"""Is this PDF the registered original? The verdict compares the file's SHA-256 with the chain's.

``status`` is one of ``authentic``, ``altered``, ``not_registered``, ``annulled``, ``superseded``.
:func:`peru_compras.service.verify_pdf` adds the lookup of the order a PDF claims to be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .hashing import hashlink, sha256
from .urls import token_hex

if TYPE_CHECKING:
    from .chain.client import OnChainOrder, Registry


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer for one document."""

    status: str
    sha256: bytes
    token_id: int | None = None
    expected_sha256: bytes | None = None
    record: OnChainOrder | None = None

    @property
    def authentic(self) -> bool:
        return self.status == "authentic"

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "status": self.status,
            "token_id": None if self.token_id is None else token_hex(self.token_id),
            "sha256": self.sha256.hex(),
            "hashlink": hashlink(self.sha256),
            "expected_sha256": self.expected_sha256.hex() if self.expected_sha256 else None,
        }
        if self.record is not None:
            out["order_number"] = self.record.order.order_number
            out["entity"] = self.record.order.entity.key
            if self.record.annul_reason:
                out["annul_reason"] = self.record.annul_reason
            if self.record.state.replaced_by:
                out["replaced_by"] = token_hex(self.record.state.replaced_by)
        return out


def verify_document(registry: Registry, document: bytes, *, token_id: int | None = None) -> Verdict:
    """Check `document` against the chain: against `token_id` when given, else by its own hash."""
    digest = sha256(document)
    if token_id is None:
        found = registry.find_by_hash(digest)
        if not found:
            return Verdict("not_registered", digest)
        token_id = found[0]
    state = registry.state(token_id)
    if not state.registered:
        return Verdict("not_registered", digest, token_id)
    record = registry.read(token_id, state=state)
    if state.document_hash != digest:
        return Verdict("altered", digest, token_id, state.document_hash, record)
    status = "authentic" if state.status == "valid" else state.status
    return Verdict(status, digest, token_id, state.document_hash, record)
