"""peru-compras: public purchase orders as verifiable, non-transferable ERC-721 records.

The names below are what back-office code needs; they load on first use, so ``peru-compras --help``
stays instant::

    from peru_compras import Registry, Rpc, Transactor, load_order, network, sha256
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "ChainRefused": "errors",
    "ConfigurationError": "errors",
    "DocumentStore": "store",
    "InvalidDocument": "errors",
    "InvalidInput": "errors",
    "InvalidOrder": "errors",
    "LocalNode": "chain.node",
    "LocalStore": "store",
    "Network": "chain.networks",
    "NodeUnavailable": "errors",
    "NotAuthorized": "errors",
    "OnChainOrder": "chain.client",
    "Order": "order",
    "OrderAlreadyRegistered": "errors",
    "OrderNotRegistered": "errors",
    "OrderNotValid": "errors",
    "OrderState": "chain.client",
    "PeruComprasError": "errors",
    "Registration": "chain.client",
    "Registry": "chain.client",
    "RegistryPaused": "errors",
    "RelayRefused": "errors",
    "Rpc": "chain.rpc",
    "Transactor": "chain.transactions",
    "Verdict": "verify",
    "hashlink": "hashing",
    "load_order": "order",
    "network": "chain.networks",
    "parse_digest": "hashing",
    "parse_order": "order",
    "render_order": "render",
    "ruc_is_valid": "order",
    "sha256": "hashing",
    "stamp_pdf": "pdf",
    "verify_document": "verify",
}

__all__ = [
    "ChainRefused",
    "ConfigurationError",
    "DocumentStore",
    "InvalidDocument",
    "InvalidInput",
    "InvalidOrder",
    "LocalNode",
    "LocalStore",
    "Network",
    "NodeUnavailable",
    "NotAuthorized",
    "OnChainOrder",
    "Order",
    "OrderAlreadyRegistered",
    "OrderNotRegistered",
    "OrderNotValid",
    "OrderState",
    "PeruComprasError",
    "Registration",
    "Registry",
    "RegistryPaused",
    "RelayRefused",
    "Rpc",
    "Transactor",
    "Verdict",
    "hashlink",
    "load_order",
    "network",
    "parse_digest",
    "parse_order",
    "render_order",
    "ruc_is_valid",
    "sha256",
    "stamp_pdf",
    "verify_document",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'peru_compras' has no attribute {name!r}")
    value = getattr(import_module(f"peru_compras.{module}"), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from .chain.client import OnChainOrder, OrderState, Registration, Registry
    from .chain.networks import Network, network
    from .chain.node import LocalNode
    from .chain.rpc import Rpc
    from .chain.transactions import Transactor
    from .errors import (
        ChainRefused,
        ConfigurationError,
        InvalidDocument,
        InvalidInput,
        InvalidOrder,
        NodeUnavailable,
        NotAuthorized,
        OrderAlreadyRegistered,
        OrderNotRegistered,
        OrderNotValid,
        PeruComprasError,
        RegistryPaused,
        RelayRefused,
    )
    from .hashing import hashlink, parse_digest, sha256
    from .order import Order, load_order, parse_order, ruc_is_valid
    from .pdf import stamp_pdf
    from .render import render_order
    from .store import DocumentStore, LocalStore
    from .verify import Verdict, verify_document
