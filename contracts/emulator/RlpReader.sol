// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title Reads the RLP of an unsigned legacy transaction from calldata (test emulator only).
/// @notice Only what the emulated RelayHub needs: the top-level list and its string items.
library RlpReader {
    /// @notice Thrown when the bytes are not a well-formed RLP list of strings.
    error RlpMalformed();

    /// @notice Where each item of the top-level list starts and how long it is.
    /// Requirements: `rlp` is exactly one list whose items are strings (no nested lists).
    function items(bytes calldata rlp) internal pure returns (uint256[] memory starts, uint256[] memory lengths) {
        (uint256 pos, uint256 size, bool isList) = _header(rlp, 0);
        if (!isList || pos + size != rlp.length) revert RlpMalformed();
        uint256 count;
        for (uint256 p = pos; p < rlp.length; count++) {
            (uint256 start, uint256 len, bool nested) = _header(rlp, p);
            if (nested) revert RlpMalformed();
            p = start + len;
            if (p > rlp.length) revert RlpMalformed();
        }
        starts = new uint256[](count);
        lengths = new uint256[](count);
        uint256 i;
        for (uint256 p = pos; p < rlp.length; i++) {
            (starts[i], lengths[i],) = _header(rlp, p);
            p = starts[i] + lengths[i];
        }
    }

    /// @notice A big-endian unsigned integer of at most 32 bytes.
    function toUint(bytes calldata rlp, uint256 start, uint256 len) internal pure returns (uint256 value) {
        if (len > 32 || start + len > rlp.length) revert RlpMalformed();
        for (uint256 i; i < len; i++) {
            value = (value << 8) | uint8(rlp[start + i]);
        }
    }

    function _header(bytes calldata rlp, uint256 pos) private pure returns (uint256 start, uint256 len, bool isList) {
        if (pos >= rlp.length) revert RlpMalformed();
        uint8 head = uint8(rlp[pos]);
        if (head < 0x80) return (pos, 1, false);
        if (head < 0xb8) return (pos + 1, head - 0x80, false);
        if (head < 0xc0) {
            uint256 n = head - 0xb7;
            return (pos + 1 + n, toUint(rlp, pos + 1, n), false);
        }
        if (head < 0xf8) return (pos + 1, head - 0xc0, true);
        uint256 m = head - 0xf7;
        return (pos + 1 + m, toUint(rlp, pos + 1, m), true);
    }
}
