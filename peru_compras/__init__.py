"""peru-compras: public purchase orders as verifiable, non-transferable ERC-721 records.

The names below are what back-office code needs. They load on first use (a module ``__getattr__``), so
``import peru_compras`` and ``peru-compras --help`` load none of web3, eth-account or pikepdf::

    from peru_compras import Session, load_order, prepare, register, verify_pdf

:data:`_EXPORTS` is the one list: ``__all__`` is derived from it, and ``tests/test_public_api.py`` pins it
and checks that the type checker's imports below name the same objects.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that defines it (or "module:name" should a name ever differ)
_EXPORTS = {
    # the use cases and where they get their parts
    "Prepared": "service", "Registered": "service", "prepare": "service", "register": "service",
    "resolve": "service", "verify_pdf": "service", "record_json": "service", "deploy": "service", "annul": "service",
    "Session": "workspace", "Workspace": "workspace", "token_hex": "urls", "verify_url": "urls",
    "Settings": "settings", "load_settings": "settings",
    # many orders: manifests, batches, OCDS
    "BatchRegistrar": "batch", "Summary": "batch", "Row": "rows", "read_manifest": "manifest",
    "count_rows": "manifest", "manifest_kind": "manifest", "export_package": "ocds",
    # signed QR codes, checked offline against a trust pack
    "QrSigner": "signed_qr", "verify_qr": "qr_check", "TrustPack": "trust", "build_trust_pack": "trust",
    "load_trust_pack": "trust",
    # records, documents, hashes
    "Order": "order", "load_order": "order", "parse_order": "order", "ruc_is_valid": "order",
    "render_order": "render", "stamp_pdf": "pdf", "Verdict": "verify", "verify_document": "verify",
    "hashlink": "hashing", "parse_digest": "hashing", "sha256": "hashing",
    "DocumentStore": "store", "LocalStore": "store", "FetchPolicy": "fetch",
    # the chain
    "Registry": "chain.client", "Registration": "chain.client", "OnChainOrder": "chain.client",
    "OrderState": "chain.client", "Rpc": "chain.rpc", "Transactor": "chain.transactions", "Signer": "chain.keys",
    "Network": "chain.networks", "network": "chain.networks", "LocalNode": "chain.node",
    # errors (the tree: peru_compras/errors.py)
    **{name: "errors" for name in (
        "PeruComprasError", "InvalidInput", "InvalidOrder", "InvalidJSON", "InvalidDocument",
        "ConfigurationError", "FetchRefused", "FetchTooLarge", "NodeUnavailable", "FetchFailed", "NotChecked",
        "Unavailable", "InvalidNodeAnswer", "RpcError", "DocumentMissing", "ChainRefused", "OrderAlreadyRegistered",
        "OrderNotRegistered", "OrderNotValid", "NotAuthorized", "RegistryPaused", "MalformedOrder",
        "UnreadableRecord", "InvalidReason", "TokenLocked", "RelayRefused", "HubRefused")},
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    where = _EXPORTS.get(name)
    if where is None:
        raise AttributeError(f"module 'peru_compras' has no attribute {name!r}")
    module, _, attribute = where.partition(":")
    value = getattr(import_module(f"peru_compras.{module}"), attribute or name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
    from .batch import BatchRegistrar as BatchRegistrar
    from .batch import Summary as Summary
    from .chain.client import OnChainOrder as OnChainOrder
    from .chain.client import OrderState as OrderState
    from .chain.client import Registration as Registration
    from .chain.client import Registry as Registry
    from .chain.keys import Signer as Signer
    from .chain.networks import Network as Network
    from .chain.networks import network as network
    from .chain.node import LocalNode as LocalNode
    from .chain.rpc import Rpc as Rpc
    from .chain.transactions import Transactor as Transactor
    from .errors import ChainRefused as ChainRefused
    from .errors import ConfigurationError as ConfigurationError
    from .errors import DocumentMissing as DocumentMissing
    from .errors import FetchFailed as FetchFailed
    from .errors import FetchRefused as FetchRefused
    from .errors import FetchTooLarge as FetchTooLarge
    from .errors import HubRefused as HubRefused
    from .errors import InvalidDocument as InvalidDocument
    from .errors import InvalidInput as InvalidInput
    from .errors import InvalidJSON as InvalidJSON
    from .errors import InvalidNodeAnswer as InvalidNodeAnswer
    from .errors import InvalidOrder as InvalidOrder
    from .errors import InvalidReason as InvalidReason
    from .errors import MalformedOrder as MalformedOrder
    from .errors import NodeUnavailable as NodeUnavailable
    from .errors import NotAuthorized as NotAuthorized
    from .errors import NotChecked as NotChecked
    from .errors import OrderAlreadyRegistered as OrderAlreadyRegistered
    from .errors import OrderNotRegistered as OrderNotRegistered
    from .errors import OrderNotValid as OrderNotValid
    from .errors import PeruComprasError as PeruComprasError
    from .errors import RegistryPaused as RegistryPaused
    from .errors import RelayRefused as RelayRefused
    from .errors import RpcError as RpcError
    from .errors import TokenLocked as TokenLocked
    from .errors import Unavailable as Unavailable
    from .errors import UnreadableRecord as UnreadableRecord
    from .fetch import FetchPolicy as FetchPolicy
    from .hashing import hashlink as hashlink
    from .hashing import parse_digest as parse_digest
    from .hashing import sha256 as sha256
    from .manifest import count_rows as count_rows
    from .manifest import manifest_kind as manifest_kind
    from .manifest import read_manifest as read_manifest
    from .ocds import export_package as export_package
    from .order import Order as Order
    from .order import load_order as load_order
    from .order import parse_order as parse_order
    from .order import ruc_is_valid as ruc_is_valid
    from .pdf import stamp_pdf as stamp_pdf
    from .qr_check import verify_qr as verify_qr
    from .render import render_order as render_order
    from .rows import Row as Row
    from .service import Prepared as Prepared
    from .service import Registered as Registered
    from .service import annul as annul
    from .service import deploy as deploy
    from .service import prepare as prepare
    from .service import record_json as record_json
    from .service import register as register
    from .service import resolve as resolve
    from .service import verify_pdf as verify_pdf
    from .settings import Settings as Settings
    from .settings import load_settings as load_settings
    from .signed_qr import QrSigner as QrSigner
    from .store import DocumentStore as DocumentStore
    from .store import LocalStore as LocalStore
    from .trust import TrustPack as TrustPack
    from .trust import build_trust_pack as build_trust_pack
    from .trust import load_trust_pack as load_trust_pack
    from .urls import token_hex as token_hex
    from .urls import verify_url as verify_url
    from .verify import Verdict as Verdict
    from .verify import verify_document as verify_document
    from .workspace import Session as Session
    from .workspace import Workspace as Workspace
