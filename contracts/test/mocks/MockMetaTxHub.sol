// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title A stand-in for an ERC-2771 hub (LACNet's PermissionedMetaTxHub): it calls the target with the
/// signer's 20 bytes appended to the calldata, and deploys with CREATE. No signature checks: the registry
/// trusts whatever its configured hub says, which is what these tests are about.
contract MockMetaTxHub {
    /// @notice Calls `target` with `data` followed by `signer`; bubbles up the target's revert data.
    function forward(address target, bytes calldata data, address signer) external returns (bytes memory result) {
        return raw(target, abi.encodePacked(data, signer));
    }

    /// @notice Calls `target` with exactly `data` (no suffix), as a faulty hub might.
    function raw(address target, bytes memory data) public returns (bytes memory result) {
        bool ok;
        (ok, result) = target.call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(result, 0x20), mload(result))
            }
        }
    }

    /// @notice Deploys `code` (init code + arguments) as the hub does for `to = 0`.
    function deploy(bytes memory code) external returns (address deployed) {
        assembly ("memory-safe") {
            deployed := create(0, add(code, 0x20), mload(code))
        }
        require(deployed != address(0), "MockMetaTxHub: deployment failed");
    }
}
