"""The terminal filter drops object addresses but never cuts an Ethereum address printed after " at "."""

from peru_compras.terminal import safe


def test_object_address_dropped() -> None:
    assert safe("<Rpc object at 0x7fcffcc1c690> failed") == "<Rpc object> failed"


def test_ethereum_address_after_at_kept_whole() -> None:
    address = "0x162d8Aecd660013DD6f3eAD7c1B3a8f0F4e2D1c0"
    assert safe(f"no contract at {address}") == f"no contract at {address}"
