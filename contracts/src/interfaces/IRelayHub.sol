// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title What the registry asks of LACNet's relay (LACNET.md): the trusted forwarder names its RelayHub,
/// and during a relayed call the hub tells who signed the original transaction.
interface ITrustedForwarder {
    /// @notice The RelayHub that relays signed transactions on this network.
    function getRelayHub() external view returns (address);
}

interface IRelayHub {
    /// @notice The signer of the meta-transaction the hub is executing now.
    function getMsgSender() external view returns (address);
}
