"""The terminal filter drops object addresses but never cuts an Ethereum address printed after " at "."""

from peru_compras.terminal import safe


def test_object_address_dropped() -> None:
    assert safe("<Rpc object at 0x7fcffcc1c690> failed") == "<Rpc object> failed"


def test_ethereum_address_after_at_kept_whole() -> None:
    address = "0x162d8Aecd660013DD6f3eAD7c1B3a8f0F4e2D1c0"
    assert safe(f"no contract at {address}") == f"no contract at {address}"


def test_nothing_the_fast_path_lets_through_is_hidden() -> None:
    """safe() and json_line() print text the fast pattern matches as it is: so no character it admits may be
    one the filter escapes (asked of every code point)."""
    from peru_compras.terminal import _FAST, hidden

    admitted = "".join(_FAST.findall("".join(map(chr, range(0x110000)))))
    assert [char for char in admitted if hidden(char)] == []
    assert "—" in admitted and "\u2028" not in admitted and "\u202e" not in admitted
    assert safe("a — b\u202e") == "a — b\\u202e"
