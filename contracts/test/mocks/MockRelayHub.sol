// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IRelayHub} from "../../src/interfaces/IRelayHub.sol";

/// @title A stand-in for LACNet's RelayHub: relays a call and, during it, tells who signed it.
contract MockRelayHub is IRelayHub {
    /// @notice The signer of the call being relayed now (zero outside a relayed call).
    address public currentSigner;

    /// @notice Calls `target` with `data` on behalf of `signer`; bubbles up the target's revert data
    /// unchanged, so tests can expect the registry's own errors.
    function relay(address target, bytes calldata data, address signer) external returns (bytes memory result) {
        currentSigner = signer;
        bool ok;
        (ok, result) = target.call(data);
        currentSigner = address(0);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(result, 0x20), mload(result))
            }
        }
    }

    /// @inheritdoc IRelayHub
    function getMsgSender() external view returns (address) {
        return currentSigner;
    }
}
