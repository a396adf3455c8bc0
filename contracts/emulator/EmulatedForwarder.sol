// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {ITrustedForwarder} from "../src/interfaces/IRelayHub.sol";

/// @title The trusted forwarder of the LACNet emulator (tests only): it names the emulated RelayHub,
/// which is what PurchaseOrderRegistry asks before trusting the hub's getMsgSender().
contract EmulatedForwarder is ITrustedForwarder {
    address private immutable _hub;

    constructor(address hub) {
        _hub = hub;
    }

    /// @inheritdoc ITrustedForwarder
    function getRelayHub() external view returns (address) {
        return _hub;
    }
}
