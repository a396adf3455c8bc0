from __future__ import annotations

import pytest

from peru_compras.errors import InvalidInput
from peru_compras.hashing import hashlink, parse_digest, sha256


def test_hashlink_of_hello_world_matches_the_draft() -> None:
    assert hashlink(sha256(b"Hello World!")) == "hl:zQmWvQxTqbG2Z9HPJgG57jjwR154cKhbtJenbyYTWkjgF3e"


def test_parse_digest_accepts_hashlink_and_hex() -> None:
    digest = sha256(b"orden")
    assert parse_digest(hashlink(digest)) == digest
    assert parse_digest(digest.hex()) == digest
    assert parse_digest("0x" + digest.hex().upper()) == digest


@pytest.mark.parametrize("text", ["hl:zNOPE", "1234", "hl:" + "z" * 10, "0x" + "g" * 64])
def test_parse_digest_refuses_garbage(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_digest(text)
