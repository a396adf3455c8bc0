// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title The Foundry cheatcodes these tests use (forge-std is not available here; see TOOLCHAIN.md).
/// @notice Signatures as in forge-std's Vm.sol for Foundry 1.x; forge serves them at {VM_ADDRESS}.
interface Vm {
    struct Log {
        bytes32[] topics;
        bytes data;
        address emitter;
    }

    // Callers and time
    function prank(address msgSender) external;
    function startPrank(address msgSender) external;
    function stopPrank() external;
    function warp(uint256 newTimestamp) external;

    // Expectations
    function expectRevert() external;
    function expectRevert(bytes4 revertData) external;
    function expectRevert(bytes calldata revertData) external;
    function expectEmit() external;
    function expectEmit(address emitter) external;
    function expectEmit(bool checkTopic1, bool checkTopic2, bool checkTopic3, bool checkData) external;
    function expectEmit(bool checkTopic1, bool checkTopic2, bool checkTopic3, bool checkData, address emitter)
        external;
    function recordLogs() external;
    function getRecordedLogs() external returns (Log[] memory logs);

    // Fuzzing and skipping
    function assume(bool condition) external pure;
    function skip(bool skipTest, string calldata reason) external;

    // Gas
    function pauseGasMetering() external;
    function resumeGasMetering() external;

    // Utilities
    function addr(uint256 privateKey) external pure returns (address keyAddr);
    function label(address account, string calldata newLabel) external;
    function toString(uint256 value) external pure returns (string memory stringifiedValue);
    function toString(address value) external pure returns (string memory stringifiedValue);
    function toString(bytes32 value) external pure returns (string memory stringifiedValue);
    function toString(bytes calldata value) external pure returns (string memory stringifiedValue);
    function toString(bool value) external pure returns (string memory stringifiedValue);
}

/// @dev keccak256("hevm cheat code"), truncated to an address.
address constant VM_ADDRESS = address(uint160(uint256(keccak256("hevm cheat code"))));
