// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {VM_ADDRESS, Vm} from "./Vm.sol";

/// @title A minimal stand-in for forge-std's Test: the cheatcodes, assertions that revert with a
/// readable message (forge counts a reverting test as failed), `bound` and `makeAddr`.
abstract contract Test {
    Vm internal constant vm = Vm(VM_ADDRESS);

    // ----------------------------------------------------------------------------------------------
    // Assertions

    function assertTrue(bool condition, string memory message) internal pure {
        if (!condition) revert(message);
    }

    function assertFalse(bool condition, string memory message) internal pure {
        if (condition) revert(message);
    }

    function assertEq(uint256 actual, uint256 expected, string memory message) internal pure {
        if (actual != expected) {
            revert(string.concat(message, ": got ", vm.toString(actual), ", expected ", vm.toString(expected)));
        }
    }

    function assertEq(address actual, address expected, string memory message) internal pure {
        if (actual != expected) {
            revert(string.concat(message, ": got ", vm.toString(actual), ", expected ", vm.toString(expected)));
        }
    }

    function assertEq(bytes32 actual, bytes32 expected, string memory message) internal pure {
        if (actual != expected) {
            revert(string.concat(message, ": got ", vm.toString(actual), ", expected ", vm.toString(expected)));
        }
    }

    function assertEq(bool actual, bool expected, string memory message) internal pure {
        if (actual != expected) {
            revert(string.concat(message, ": got ", vm.toString(actual), ", expected ", vm.toString(expected)));
        }
    }

    function assertEq(string memory actual, string memory expected, string memory message) internal pure {
        if (keccak256(bytes(actual)) != keccak256(bytes(expected))) {
            revert(string.concat(message, ": got '", actual, "', expected '", expected, "'"));
        }
    }

    function assertEq(bytes memory actual, bytes memory expected, string memory message) internal pure {
        if (keccak256(actual) != keccak256(expected)) {
            revert(string.concat(message, ": got ", vm.toString(actual), ", expected ", vm.toString(expected)));
        }
    }

    function assertNotEq(uint256 actual, uint256 unexpected, string memory message) internal pure {
        if (actual == unexpected) revert(string.concat(message, ": both are ", vm.toString(actual)));
    }

    function assertNotEq(bytes32 actual, bytes32 unexpected, string memory message) internal pure {
        if (actual == unexpected) revert(string.concat(message, ": both are ", vm.toString(actual)));
    }

    // ----------------------------------------------------------------------------------------------
    // Helpers

    /// @dev Maps `x` into [min, max] without rejecting fuzz runs (a simple modulo: uniformity is not needed).
    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        require(min <= max, "bound: min > max");
        if (x >= min && x <= max) return x;
        uint256 size = max - min;
        if (size == type(uint256).max) return x;
        return min + x % (size + 1);
    }

    /// @dev A labelled address derived from `name`.
    function makeAddr(string memory name) internal returns (address account) {
        account = vm.addr(uint256(keccak256(bytes(name))));
        vm.label(account, name);
    }
}
