// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ITrustedForwarder} from "../../src/interfaces/IRelayHub.sol";

/// @title A stand-in for LACNet's trusted forwarder: it only names its RelayHub.
contract MockForwarder is ITrustedForwarder {
    address private immutable _hub;

    constructor(address hub) {
        _hub = hub;
    }

    /// @inheritdoc ITrustedForwarder
    function getRelayHub() external view returns (address) {
        return _hub;
    }
}
