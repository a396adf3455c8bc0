"""SHA-256 digests and hashlinks: the draft's vector, the multihash prefix and length, files in chunks.

The base58btc codec is checked against an independent one (multiformats). Keep this file fast: a mutation
run (benchmarks/mutation.py) runs it once per mutant.
"""

from __future__ import annotations

import gc
import hashlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multiformats import multibase

from peru_compras import hashing
from peru_compras.errors import InvalidInput
from peru_compras.hashing import hashlink, parse_digest, sha256, sha256_file

HELLO = "hl:zQmWvQxTqbG2Z9HPJgG57jjwR154cKhbtJenbyYTWkjgF3e"


def reference_hashlink(prefix: bytes, digest: bytes) -> str:
    return "hl:" + multibase.encode(prefix + digest, "base58btc")


def test_hashlink_of_hello_world_matches_the_draft() -> None:
    assert sha256(b"Hello World!").hex() == "7f83b1657ff1fc53b92dc18148a1d65dfc2d4b1fa3d677284addd200126d9069"
    assert hashlink(sha256(b"Hello World!")) == HELLO
    assert parse_digest(HELLO) == sha256(b"Hello World!")


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=32, max_size=32) | st.sampled_from([b"\0" * 32, b"\0" * 31 + b"\1", b"\xff" * 32,
                                                               b"\0\0\0" + b"\1" * 29]))
def test_hashlink_is_base58btc_of_the_sha256_multihash_and_reads_back(digest: bytes) -> None:
    link = hashlink(digest)
    assert link == reference_hashlink(b"\x12\x20", digest)
    assert link.startswith("hl:zQm") and len(link) == 50
    assert parse_digest(link) == digest
    assert parse_digest(digest.hex()) == digest


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=40))
def test_any_other_multihash_or_length_is_refused(raw: bytes) -> None:
    if len(raw) == 34 and raw[:2] == b"\x12\x20":
        return
    link = "hl:" + multibase.encode(raw, "base58btc") if raw else "hl:z"
    with pytest.raises(InvalidInput, match="is not a SHA-256 hashlink"):
        parse_digest(link)


@pytest.mark.parametrize(
    ("prefix", "size"),
    [
        (b"\x1b\x20", 32),  # keccak-256: also 32 bytes, must not pass as SHA-256
        (b"\x13\x40", 64),  # sha2-512
        (b"\x12\x20", 31), (b"\x12\x20", 33),  # the right prefix, one byte short or long
        (b"\x12\x20", 5),  # a 7-byte "multihash"
        (b"\x12\x1f", 32), (b"\x20\x12", 32), (b"\x11\x20", 32),
        (b"\x00\x12\x20", 32),  # a leading zero byte: base58 "1"
    ],
)
def test_prefix_and_length_are_both_checked(prefix: bytes, size: int) -> None:
    link = reference_hashlink(prefix, b"\x07" * size)
    with pytest.raises(InvalidInput, match="is not a SHA-256 hashlink"):
        parse_digest(link)


@pytest.mark.parametrize(
    "text",
    [
        "hl:zNOPE", "hl:z0Qm", "hl:zQmWvQxTqbG2Z9HPJgG57jjwR154cKhbtJenbyYTWkjgF3I",  # 0, O, I, l: not base58
        "hl:z", "hl:" + "z" * 10, "hl:mEiB/g7FlgA", "HL:" + HELLO[3:], "hl:Z" + HELLO[4:], HELLO + "1",
        "hl:z" + "2" * 200_000,  # long: refused by its length, not after a quadratic decode
    ],
)
def test_parse_digest_refuses_bad_hashlinks(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_digest(text)
    assert "is not a SHA-256" in caught.value.message and len(caught.value.message) < 150
    assert caught.value.hint


@pytest.mark.parametrize(
    "text",
    [
        "1234", "0x" + "g" * 64, "a" * 63, "a" * 65, "0x" + "a" * 63, "0x" + "a" * 65, "x" + "a" * 64,
        "0000 " * 12 + "0000",  # 64 characters that bytes.fromhex reads as 26 bytes
        "a" * 32 + "\n" + "a" * 32, "ａ" * 64, "00x" + "a" * 63, "", "0x",
    ],
)
def test_parse_digest_refuses_bad_hex(text: str) -> None:
    with pytest.raises(InvalidInput, match="is not a SHA-256 digest"):
        parse_digest(text)


def test_parse_digest_accepts_hex_with_or_without_0x_in_either_case_and_around_spaces() -> None:
    digest = sha256(b"orden")
    for text in (digest.hex(), digest.hex().upper(), "0x" + digest.hex(), "0X" + digest.hex().upper(),
                 f"  {digest.hex()}\n", f" {hashlink(digest)}\n"):
        assert parse_digest(text) == digest


@pytest.mark.parametrize("size", [31, 33, 0, 64])
def test_hashlink_needs_32_bytes(size: int) -> None:
    with pytest.raises(InvalidInput, match=f"a SHA-256 digest has 32 bytes, got {size}"):
        hashlink(b"\x01" * size)


@pytest.mark.parametrize("size", [0, 1, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, (5 << 20) // 2])
def test_sha256_file_reads_every_chunk(tmp_path: Path, size: int) -> None:
    data = bytes(range(256)) * (size // 256) + b"\x5a" * (size % 256)
    path = tmp_path / "doc.pdf"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).digest() == sha256(data)


def test_one_spelling_per_digest() -> None:
    # a leading base-58 "1" is a zero byte: "hl:z1Qm…" is not the same hashlink, nor is a 50-character one
    with pytest.raises(InvalidInput):
        parse_digest("hl:z1" + HELLO[4:])
    with pytest.raises(InvalidInput):
        parse_digest("hl:z1" + HELLO[5:])


def test_refusals_show_the_value_cut_at_80_characters_and_say_what_to_give() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_digest(" hl:zNOPE\n")
    assert str(caught.value) == "'hl:zNOPE' is not a SHA-256 hashlink — expected hl:zQm… as printed by register"
    with pytest.raises(InvalidInput) as caught:
        parse_digest("a" * 80)
    assert str(caught.value) == f"'{'a' * 80}' is not a SHA-256 digest — give 64 hex digits or a hashlink hl:zQm…"
    for long in ("a" * 81, "a" * 80 + "\x1b[2J"):
        with pytest.raises(InvalidInput) as caught:
            parse_digest(long)
        assert caught.value.message == f"'{'a' * 80}'… is not a SHA-256 digest"


def test_fast_keccak_is_keccak() -> None:
    from eth_hash.auto import keccak

    assert hashing._fast() is not None  # the fast path is the one measured and used
    for data in (b"", b"a", bytes(range(256)) * 9, "Ñandú".encode()):
        assert hashing.keccak256(data) == keccak(data)


KECCAK_VECTORS = {b"": "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470",
                  b"abc": "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"}


def test_a_new_fast_keccak_state_gives_the_known_digests() -> None:
    """A fresh _Keccak (the cached one was built before any test ran), hashing twice in a row."""
    fast = hashing._Keccak()
    for _ in range(2):
        for data, digest in KECCAK_VECTORS.items():
            assert fast(data).hex() == digest


def test_keccak256_takes_the_fast_path_and_falls_back_to_eth_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    for data, digest in KECCAK_VECTORS.items():
        assert hashing._keccak_eth_hash(data).hex() == digest
    with monkeypatch.context() as patched:
        patched.setattr(hashing, "_keccak_eth_hash", lambda data: pytest.fail("fell back to eth_hash"))
        assert hashing.keccak256(b"abc").hex() == KECCAK_VECTORS[b"abc"]
    monkeypatch.setattr(hashing, "_fast", lambda: None)  # another pycryptodome build
    assert hashing.keccak256(b"abc").hex() == KECCAK_VECTORS[b"abc"]


def test_a_fast_keccak_state_is_freed_and_its_failures_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through pycryptodome's own C functions, counting frees, or failing on demand."""
    real, freed = hashing._keccak_library(), []

    class Lib:
        fail = ""

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def keccak_init(self, *args: Any) -> int:
            return 1 if self.fail == "init" else int(real.keccak_init(*args))

        def keccak_reset(self, state: Any) -> int:
            return 1 if self.fail == "reset" else int(real.keccak_reset(state))

        def keccak_destroy(self, state: Any) -> int:
            freed.append(state)
            return int(real.keccak_destroy(state))

    lib = Lib()
    monkeypatch.setattr(hashing, "_keccak_library", lambda: lib)
    fast = hashing._Keccak()
    assert fast(b"abc").hex() == KECCAK_VECTORS[b"abc"]
    pointer = fast.state.value
    del fast
    gc.collect()
    assert [getattr(state, "value", state) for state in freed] == [pointer]  # its own state, once
    lib.fail = "reset"
    with pytest.raises(RuntimeError, match="^keccak failed$"):
        hashing._Keccak()(b"abc")
    lib.fail = "init"
    with pytest.raises(RuntimeError, match="^keccak_init failed$"):
        hashing._Keccak()


@settings(max_examples=150, deadline=None)
@given(st.binary(min_size=1, max_size=48).filter(lambda raw: raw[0] != 0))
def test_base58_of_any_length_matches_an_independent_codec(raw: bytes) -> None:
    """Two digits at a time: an odd number of digits leaves a padding "1" in front, which must go."""
    assert "z" + hashing._b58encode(raw) == multibase.encode(raw, "base58btc")


@pytest.mark.parametrize(("raw", "text"), [(b"\x01", "2"), (b"\x39", "z"), (b"\x3a", "21"), (b"\x0d\x24", "211"),
                                           (b"\x0d\x23", "zz"), (b"", "")])
def test_base58_at_the_pair_edges(raw: bytes, text: str) -> None:
    assert hashing._b58encode(raw) == text
