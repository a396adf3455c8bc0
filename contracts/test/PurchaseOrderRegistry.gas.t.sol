// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {PurchaseOrderRegistry} from "../src/PurchaseOrderRegistry.sol";
import {OrderBytes} from "./utils/OrderBytes.sol";
import {Test} from "./utils/Test.sol";

/// @title Gas of realistic calls, for `forge snapshot` (contracts/.gas-snapshot).
/// @notice Each test builds its calldata with gas metering paused, so the recorded gas is the registry call
/// (plus a few hundred gas of test overhead). forge runs a test as a call, not a transaction: the 21,000
/// base cost and the calldata cost (16 gas per non-zero byte, ~5,400 for a 338-byte order) are not included.
///
/// A realistic order is 338 bytes: a 32-byte SHA-256, the 26-byte key "20131370998/OC-2026-NNNNNN" and a
/// 279-byte record (encoding version 0x01, then pseudo-random bytes standing in for the compressed record).
contract RegistryGasTest is Test {
    uint256 internal constant RECORD_LENGTH = 279;

    PurchaseOrderRegistry internal registry;
    address internal registrar;

    function setUp() public {
        registrar = makeAddr("registrar");
        registry = new PurchaseOrderRegistry(registrar, address(0), address(0), "https://ordenes.example.pe/doc/");
        // A registry in service already holds orders. (The order is built first: vm.prank would otherwise
        // apply to the sha256 precompile call inside _order.)
        bytes memory first = _order(1);
        vm.prank(registrar);
        registry.register(first);
    }

    function test_Gas_RegisterSingle() public {
        vm.pauseGasMetering();
        bytes memory order = _order(4512);
        vm.prank(registrar);
        vm.resumeGasMetering();

        registry.register(order);

        vm.pauseGasMetering();
        assertEq(registry.totalSupply(), 2, "totalSupply");
    }

    function test_Gas_RegisterBatch100() public {
        vm.pauseGasMetering();
        bytes[] memory orders = new bytes[](100);
        for (uint256 i; i < orders.length; ++i) {
            orders[i] = _order(100_000 + i);
        }
        bytes memory batch = OrderBytes.batch(orders);
        vm.prank(registrar);
        vm.resumeGasMetering();

        registry.registerBatch(batch);

        vm.pauseGasMetering();
        assertEq(registry.totalSupply(), 101, "totalSupply");
    }

    function test_Gas_Annul() public {
        vm.pauseGasMetering();
        uint256 tokenId = uint256(keccak256(_key(1)));
        vm.prank(registrar);
        vm.resumeGasMetering();

        registry.annul(tokenId, "Resolucion 045-2026: proveedor inhabilitado");
    }

    function test_Gas_Supersede() public {
        vm.pauseGasMetering();
        uint256 tokenId = uint256(keccak256(_key(1)));
        bytes memory order = _order(2);
        vm.prank(registrar);
        vm.resumeGasMetering();

        registry.supersede(tokenId, order);
    }

    // ----------------------------------------------------------------------------------------------

    /// @dev "20131370998/OC-2026-" and a 6-digit order number: 26 bytes.
    function _key(uint256 number) internal pure returns (bytes memory key) {
        key = bytes("20131370998/OC-2026-000000");
        for (uint256 i = key.length; number > 0; number /= 10) {
            // casting to 'uint8' is safe because 48 + a decimal digit is an ASCII digit
            // forge-lint: disable-next-line(unsafe-typecast)
            key[--i] = bytes1(uint8(48 + number % 10));
        }
    }

    function _order(uint256 number) internal pure returns (bytes memory order) {
        bytes memory key = _key(number);
        bytes memory record = new bytes(RECORD_LENGTH);
        record[0] = 0x01;
        bytes32 word = keccak256(key);
        for (uint256 i = 1; i < RECORD_LENGTH; ++i) {
            if (i % 32 == 1) word = keccak256(abi.encode(word));
            record[i] = word[i % 32];
        }
        order = OrderBytes.order(sha256(key), key, record);
        require(order.length == 338, "realistic order is 338 bytes");
    }
}
