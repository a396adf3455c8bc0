"""The signer's key: signs transactions with libsecp256k1 (coincurve), RLP-encoded by :func:`rlp_encode`.

Why not eth-account's ``LocalAccount`` for this: importing eth-account imports eth-keyfile, which computes
py_ecc's BLS12-381 constants at import — 0.6 s of every command's start measured on the 2-core machine
(``python -X importtime -c "import eth_account"``: 614 ms, of which eth_keyfile 499 ms), although only a
keystore needs it. :class:`Signer` does the three transaction shapes the project sends (legacy with an
EIP-155 chain id, legacy without one for LACNet's relay, EIP-1559), and ``tests/test_signer.py`` checks every
byte against eth-account's output. Anything else (EIP-712 messages for the metatx model) goes to
eth-account, loaded then. A ``LocalAccount`` is accepted wherever a signer is: both follow :class:`TxSigner`.

The RLP is :func:`rlp_encode` below, not ``rlp.encode``: importing ``rlp`` imports eth_utils (and pydantic),
200 ms of the start of every command that signs (``python -c "import rlp"``, median of 7 fresh processes minus
``python -c pass``, 2-core machine); ``tests/test_signer.py`` checks it byte for byte against ``rlp.encode``.
The address is chain/abi.py's EIP-55 checksum, not eth_utils'. Together (abi.py, rlp_encode) the batch path's
imports went from 460-525 ms to 235-300 ms (the measure in abi.py's docstring). Reading a relayed transaction
still uses ``rlp.decode`` (chain/lacnet.rlp_items), imported there when one is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from ..hashing import keccak256
from .abi import to_checksum_address

if TYPE_CHECKING:
    from eth_account.datastructures import SignedMessage
    from eth_account.messages import SignableMessage

_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141  # secp256k1's group order

#: what :func:`rlp_encode` takes: bytes, a non-negative int (big-endian, no leading zero byte) or a list of them
RlpItem: TypeAlias = "bytes | bytearray | int | list[RlpItem]"


def rlp_encode(item: RlpItem) -> bytes:
    """The RLP of `item` (the Ethereum yellow paper, appendix B), as ``rlp.encode`` gives it; ValueError for a
    negative int, TypeError for anything that is not bytes, an int or a list (a bool included)."""
    if isinstance(item, list):
        payload = b"".join(rlp_encode(child) for child in item)
        return _rlp_length(len(payload), 0xC0) + payload
    if isinstance(item, bool) or not isinstance(item, (bytes, bytearray, int)):
        raise TypeError(f"RLP encodes bytes, ints and lists, not {type(item).__name__}")
    if isinstance(item, int):
        if item < 0:
            raise ValueError("RLP cannot encode a negative integer")
        item = item.to_bytes((item.bit_length() + 7) // 8, "big")
    if len(item) == 1 and item[0] < 0x80:
        return bytes(item)
    return _rlp_length(len(item), 0x80) + bytes(item)


def _rlp_length(length: int, offset: int) -> bytes:
    if length < 56:
        return bytes([offset + length])
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([offset + 55 + len(size)]) + size


class Signed(Protocol):
    """A signed transaction: its bytes and its hash."""

    @property
    def raw_transaction(self) -> bytes: ...

    @property
    def hash(self) -> bytes: ...


class TxSigner(Protocol):
    """What sends transactions: an address and ``sign_transaction`` (our :class:`Signer` or eth-account's
    ``LocalAccount``)."""

    @property
    def address(self) -> Any: ...

    def sign_transaction(self, transaction_dict: Any) -> Any: ...


class MessageSigner(TxSigner, Protocol):
    """A signer that also signs EIP-191 / EIP-712 messages (the metatx model's registrar)."""

    def sign_message(self, signable_message: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class SignedTransaction:
    raw_transaction: bytes
    hash: bytes


class Signer:
    """A secp256k1 private key. `key` is never shown (repr, str, messages)."""

    __slots__ = ("_key", "_private", "address")

    def __init__(self, key: bytes) -> None:
        import coincurve

        if len(key) != 32 or not 0 < int.from_bytes(key, "big") < _N:
            raise ValueError("not a secp256k1 private key")
        self._key = bytes(key)
        self._private = coincurve.PrivateKey(self._key)
        public = self._private.public_key.format(compressed=False)[1:]
        self.address: str = str(to_checksum_address(keccak256(public)[-20:]))

    def __repr__(self) -> str:
        return f"Signer({self.address})"

    @property
    def key(self) -> bytes:
        """The 32 private-key bytes (for a caller that must hand them on, e.g. to a batch worker)."""
        return self._key

    def sign_hash(self, digest: bytes) -> tuple[int, int, int]:
        """(recovery id 0/1, r, s) of a 32-byte digest; RFC 6979 nonce, low s (libsecp256k1's rules)."""
        signature = self._private.sign_recoverable(digest, hasher=None)
        return signature[64], int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big")

    def sign_transaction(self, transaction_dict: dict[str, Any]) -> SignedTransaction:
        """Sign `transaction_dict` (eth-account's field names: nonce, gas, value, data, to, chainId, and gasPrice
        or maxFeePerGas + maxPriorityFeePerGas). Legacy with chainId: EIP-155; legacy without: v = 27/28."""
        tx = dict(transaction_dict)
        unknown = set(tx) - {"nonce", "gas", "value", "data", "to", "chainId", "gasPrice", "maxFeePerGas",
                             "maxPriorityFeePerGas"}
        if unknown:
            raise ValueError(f"transaction fields not supported here: {', '.join(sorted(unknown))}")
        to = bytes.fromhex(tx["to"][2:]) if tx.get("to") else b""
        data = bytes(tx.get("data", b""))
        value = int(tx.get("value", 0))
        if "maxFeePerGas" in tx:
            fields: list[RlpItem] = [int(tx["chainId"]), int(tx["nonce"]), int(tx["maxPriorityFeePerGas"]),
                                     int(tx["maxFeePerGas"]), int(tx["gas"]), to, value, data, []]
            parity, r, s = self.sign_hash(keccak256(b"\x02" + rlp_encode(fields)))
            raw = b"\x02" + rlp_encode([*fields, parity, r, s])
            return SignedTransaction(raw, keccak256(raw))
        fields = [int(tx["nonce"]), int(tx["gasPrice"]), int(tx["gas"]), to, value, data]
        chain_id = tx.get("chainId")
        if chain_id is None:
            recovery, r, s = self.sign_hash(keccak256(rlp_encode(fields)))
            v = 27 + recovery
        else:
            recovery, r, s = self.sign_hash(keccak256(rlp_encode([*fields, int(chain_id), 0, 0])))
            v = 35 + 2 * int(chain_id) + recovery
        raw = rlp_encode([*fields, v, r, s])
        return SignedTransaction(raw, keccak256(raw))

    def sign_message(self, signable_message: SignableMessage) -> SignedMessage:
        """An EIP-191 / EIP-712 message, through eth-account (loaded only now)."""
        from eth_account import Account

        signed: SignedMessage = Account.sign_message(signable_message, self._key)
        return signed
