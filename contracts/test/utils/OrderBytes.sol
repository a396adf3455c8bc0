// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Builds the calldata that {PurchaseOrderRegistry-register} and {registerBatch} read.
/// @notice order = documentHash (32) ‖ uint8(key.length) ‖ key ‖ record;
/// batch = for each order, bytes2(uint16(order.length)) ‖ order.
library OrderBytes {
    /// @dev One `order`. Refuses keys the one-byte length cannot describe, so tests never build a
    /// malformed order by accident (malformed ones are built by hand).
    function order(bytes32 documentHash, bytes memory key, bytes memory record) internal pure returns (bytes memory) {
        require(key.length <= type(uint8).max, "OrderBytes: key over 255 bytes");
        return abi.encodePacked(documentHash, uint8(key.length), key, record);
    }

    /// @dev One batch entry: the big-endian 2-byte length, then the order.
    function entry(bytes memory order_) internal pure returns (bytes memory) {
        require(order_.length <= type(uint16).max, "OrderBytes: order over 65535 bytes");
        return abi.encodePacked(bytes2(uint16(order_.length)), order_);
    }

    /// @dev A whole batch, built in one allocation (concatenating in a loop would copy quadratically).
    function batch(bytes[] memory orders) internal pure returns (bytes memory out) {
        uint256 total;
        for (uint256 i; i < orders.length; ++i) {
            require(orders[i].length <= type(uint16).max, "OrderBytes: order over 65535 bytes");
            total += 2 + orders[i].length;
        }
        out = new bytes(total);
        uint256 position;
        for (uint256 i; i < orders.length; ++i) {
            bytes memory part = orders[i];
            uint256 length = part.length;
            // The big-endian length; `length` was checked to fit 16 bits above.
            // forge-lint: disable-next-line(unsafe-typecast)
            bytes2 prefix = bytes2(uint16(length));
            out[position] = prefix[0];
            out[position + 1] = prefix[1];
            position += 2;
            _copy(part, out, position);
            position += length;
        }
    }

    /// @dev Word-by-word copy of `source` into `target` at `position` (Berlin: no mcopy). The last word
    /// may spill past `source`'s end; whatever it overwrites in `target` is written again by the next part,
    /// and `target` was allocated before, so the spill beyond it lands in unallocated memory.
    function _copy(bytes memory source, bytes memory target, uint256 position) private pure {
        assembly ("memory-safe") {
            let length := mload(source)
            let from := add(source, 0x20)
            let to := add(add(target, 0x20), position)
            for { let done := 0 } lt(done, length) { done := add(done, 0x20) } {
                mstore(add(to, done), mload(add(from, done)))
            }
        }
    }
}
