// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;
import {TrustedForwarderTest} from "./PurchaseOrderRegistry.forwarder.t.sol";
contract ScratchTest is TrustedForwarderTest {
    function test_MutantShouldFail() public {
        vm.expectRevert(_unauthorized(outsider, registrarRole));
        _relayRegisterRaw(signer, KEY);
    }
}
