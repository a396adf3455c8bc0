"""The steps of the QR encoder that qr.py computes itself are segno's, value for value.

qr.py replaces three of segno's slow steps (the byte-mode segment, the bits-to-codewords conversion and the
Reed-Solomon blocks) with faster equivalents; tests/test_pdf.py compares whole symbols, these compare each
step over many inputs, including the modes (numeric, alphanumeric, kanji, UTF-8) a verify URL never uses.
"""

from __future__ import annotations

import random

from segno import consts, encoder

from peru_compras import qr

_ALPHABETS = ("https://oc.example.pe/o/#-_.0123456789abcXYZ", "ABCXYZ0123456789 $%*+-./:", "0123456789",
              "ñandú-€-Ωmega/é", "日本語テキスト", "aé日")


def _plain(segments: object) -> list[tuple[object, ...]]:
    return [tuple(bytes(v) if isinstance(v, bytearray) else v for v in segment)
            for segment in segments.segments]  # type: ignore[attr-defined]


def test_segments_are_segnos() -> None:
    rng = random.Random(16)
    texts = ["", "a", "https://oc.example.pe/o/20131370998/OC-2026-000123"]
    for _ in range(1500):
        alphabet = rng.choice(_ALPHABETS)
        texts.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 260))))
    for text in texts:
        ours, theirs = qr._segments(text), encoder.prepare_data(text, None, None)
        assert _plain(ours) == _plain(theirs), text
        assert ours.bit_length == theirs.bit_length, text


def test_codewords_are_segnos() -> None:
    rng = random.Random(17)
    for length in [0, 1, 7, 8, 9, *(rng.randint(0, 3000) for _ in range(500))]:
        buffer = encoder.Buffer(rng.getrandbits(1) for _ in range(length))
        assert qr._codewords(buffer.getbits()) == bytes(buffer.toints()), length


def test_reed_solomon_blocks_are_segnos() -> None:
    rng = random.Random(18)
    for version in range(1, 41):
        for error in (consts.ERROR_LEVEL_L, consts.ERROR_LEVEL_M, consts.ERROR_LEVEL_Q, consts.ERROR_LEVEL_H):
            ec_infos = consts.ECC[version][error]
            total = sum(info.num_blocks * info.num_data for info in ec_infos)
            codewords = bytes(rng.getrandbits(8) for _ in range(total))
            bits = encoder.Buffer()
            for codeword in codewords:
                bits.append_bits(codeword, 8)
            data, errors = encoder.make_blocks(ec_infos, bits)
            assert qr._blocks(ec_infos, codewords) == ([bytes(b) for b in data], [bytes(b) for b in errors])


def test_signed_qr_sized_symbols_are_segnos() -> None:
    """Texts the length of a signed QR (verify URL + "#" + base64url, 150-200 characters: versions 8-10),
    where the mask choice is what the batch pays for: the same symbol, module for module, as segno.make."""
    import segno

    rng = random.Random(19)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    masks = set()
    for n in range(150):
        text = (f"https://oc.example.pe/o/20131370998/OC-2026-{n:06d}#"
                + "".join(rng.choice(alphabet) for _ in range(rng.randint(96, 149))))
        expected = segno.make(text, error="m", micro=False)
        masks.add(expected.mask)
        assert qr.qr_matrix(text) == tuple(bytes(row) for row in expected.matrix), text
    assert len(masks) >= 6  # the choice among the eight masks is exercised, not one mask every time
