// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

import {IPurchaseOrderRegistry} from "../src/interfaces/IPurchaseOrderRegistry.sol";
import {OrderBytes} from "./utils/OrderBytes.sol";
import {RegistryFixture} from "./utils/RegistryFixture.sol";
import {Vm} from "./utils/Vm.sol";

/// @title registerBatch(bytes orders)
contract RegisterBatchTest is RegistryFixture {
    function test_RegisterBatch_ReturnsCount() public {
        vm.prank(registrar);
        uint256 count = registry.registerBatch(_batchOf(1, 10));

        assertEq(count, 10, "count");
    }

    function test_RegisterBatch_StoresEveryOrder() public {
        vm.prank(registrar);
        registry.registerBatch(_batchOf(1, 10));

        for (uint256 i = 1; i <= 10; ++i) {
            uint256 tokenId = _tokenId(_key(i));
            assertEq(registry.orderOf(tokenId).documentHash, _documentHashOf(_key(i)), "documentHash");
            assertEq(registry.ownerOf(tokenId), address(registry), "ownerOf");
        }
    }

    function test_RegisterBatch_CountsSupplyAndRegistryBalance() public {
        _register(_key(0));

        vm.prank(registrar);
        registry.registerBatch(_batchOf(1, 10));

        assertEq(registry.totalSupply(), 11, "totalSupply");
        assertEq(registry.balanceOf(address(registry)), 11, "balanceOf(registry)");
    }

    function test_RegisterBatch_EmitsEventsInOrder() public {
        for (uint256 i = 1; i <= 3; ++i) {
            uint256 tokenId = _tokenId(_key(i));
            vm.expectEmit(true, true, true, true, address(registry));
            emit IERC721.Transfer(address(0), address(registry), tokenId);
            vm.expectEmit(true, true, true, true, address(registry));
            emit IPurchaseOrderRegistry.OrderRegistered(_documentHashOf(_key(i)), registrar);
        }

        vm.prank(registrar);
        registry.registerBatch(_batchOf(1, 3));
    }

    /// @dev OrderRegistered carries no token id: a reader pairs it with the Transfer just before it.
    function test_RegisterBatch_EachOrderRegisteredFollowsItsTransfer() public {
        vm.recordLogs();
        vm.prank(registrar);
        registry.registerBatch(_batchOf(1, 5));
        Vm.Log[] memory logs = vm.getRecordedLogs();

        assertEq(logs.length, 10, "logs");
        for (uint256 i; i < 5; ++i) {
            Vm.Log memory transfer = logs[2 * i];
            Vm.Log memory registered = logs[2 * i + 1];
            assertEq(transfer.topics[0], IERC721.Transfer.selector, "Transfer topic");
            assertEq(uint256(transfer.topics[3]), _tokenId(_key(i + 1)), "Transfer tokenId");
            assertEq(registered.topics[0], IPurchaseOrderRegistry.OrderRegistered.selector, "OrderRegistered topic");
            assertEq(registered.topics[1], _documentHashOf(_key(i + 1)), "OrderRegistered documentHash");
            assertEq(address(uint160(uint256(registered.topics[2]))), registrar, "OrderRegistered registrar");
        }
    }

    function test_RegisterBatch_SingleEntry() public {
        vm.prank(registrar);
        registry.registerBatch(OrderBytes.entry(_order(KEY)));

        assertEq(registry.ownerOf(_tokenId(KEY)), address(registry), "ownerOf");
    }

    function test_RegisterBatch_OrdersOfDifferentLengths() public {
        bytes[] memory orders = new bytes[](3);
        orders[0] = abi.encodePacked(HASH, uint8(3), "a/b");
        orders[1] = OrderBytes.order(HASH, bytes(KEY), new bytes(700));
        orders[2] = _order(_key(2));

        vm.prank(registrar);
        uint256 count = registry.registerBatch(OrderBytes.batch(orders));

        assertEq(count, 3, "count");
        assertEq(registry.orderOf(_tokenId("a/b")).documentHash, HASH, "first");
        assertEq(registry.orderOf(_tokenId(KEY)).documentHash, HASH, "second");
        assertEq(registry.orderOf(_tokenId(_key(2))).documentHash, _documentHashOf(_key(2)), "third");
    }

    /// @dev Observed behaviour, not a refusal: an empty batch registers nothing and emits nothing.
    function test_RegisterBatch_EmptyBatchRegistersNothing() public {
        vm.recordLogs();
        vm.prank(registrar);
        uint256 count = registry.registerBatch("");

        assertEq(count, 0, "count");
        assertEq(registry.totalSupply(), 0, "totalSupply");
        assertEq(vm.getRecordedLogs().length, 0, "logs");
    }

    // ----------------------------------------------------------------------------------------------
    // The whole batch is refused when one entry is

    function test_RevertWhen_BatchHasRegisteredKey() public {
        uint256 tokenId = _register(_key(3));

        vm.expectRevert(
            abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderAlreadyRegistered.selector, tokenId, _key(3))
        );
        vm.prank(registrar);
        registry.registerBatch(_batchOf(1, 5));
    }

    function test_RevertWhen_BatchHasRegisteredKey_StoresNothing() public {
        _register(_key(3));

        vm.prank(registrar);
        try registry.registerBatch(_batchOf(1, 5)) {
            revert("batch with a registered key succeeded");
        } catch {}

        assertEq(registry.orderOf(_tokenId(_key(1))).documentHash, bytes32(0), "entry before the duplicate");
        assertEq(registry.totalSupply(), 1, "totalSupply");
    }

    function test_RevertWhen_BatchRepeatsKey() public {
        bytes[] memory orders = new bytes[](3);
        orders[0] = _order(_key(1));
        orders[1] = _order(_key(2));
        orders[2] = _order(keccak256("corrected PDF"), _key(1));

        vm.expectRevert(
            abi.encodeWithSelector(
                IPurchaseOrderRegistry.PurchaseOrderAlreadyRegistered.selector, _tokenId(_key(1)), _key(1)
            )
        );
        vm.prank(registrar);
        registry.registerBatch(OrderBytes.batch(orders));
    }

    function test_RevertWhen_BatchEntryHasZeroHash() public {
        bytes[] memory orders = new bytes[](2);
        orders[0] = _order(_key(1));
        orders[1] = _order(bytes32(0), _key(2));

        vm.expectRevert(
            abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderEmptyDocumentHash.selector, _tokenId(_key(2)))
        );
        vm.prank(registrar);
        registry.registerBatch(OrderBytes.batch(orders));
    }

    function test_RevertWhen_BatchEntryIsTooShort() public {
        bytes[] memory orders = new bytes[](3);
        orders[0] = _order(_key(1));
        orders[1] = _order(_key(2));
        orders[2] = abi.encodePacked(HASH, uint8(2), "ab");

        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderMalformed.selector, 2));
        vm.prank(registrar);
        registry.registerBatch(OrderBytes.batch(orders));
    }

    function test_RevertWhen_BatchEntryIsEmpty() public {
        bytes memory orders = abi.encodePacked(OrderBytes.entry(_order(_key(1))), bytes2(0));

        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderMalformed.selector, 1));
        vm.prank(registrar);
        registry.registerBatch(orders);
    }

    function test_RevertWhen_BatchEntryKeyRunsPastEntry() public {
        // The entry claims a 60-byte key and holds 40 bytes after the length byte; the next entry's bytes
        // would complete it, but an entry is read on its own.
        bytes memory shortEntry = abi.encodePacked(HASH, uint8(60), new bytes(40));
        bytes[] memory orders = new bytes[](2);
        orders[0] = shortEntry;
        orders[1] = _order(_key(2));

        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderMalformed.selector, 0));
        vm.prank(registrar);
        registry.registerBatch(OrderBytes.batch(orders));
    }

    function test_RevertWhen_BatchLengthPrefixIsCut() public {
        // One complete entry, then a single byte where a 2-byte length should be.
        bytes memory orders = abi.encodePacked(OrderBytes.entry(_order(_key(1))), bytes1(0x01));

        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderMalformed.selector, 1));
        vm.prank(registrar);
        registry.registerBatch(orders);
    }

    function test_RevertWhen_BatchLengthBeyondData() public {
        bytes memory order = _order(_key(1));
        bytes memory orders = abi.encodePacked(bytes2(uint16(order.length + 1)), order);

        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderMalformed.selector, 0));
        vm.prank(registrar);
        registry.registerBatch(orders);
    }

    function test_RevertWhen_BatchLengthIsLittleEndian() public {
        // An order of n < 256 bytes, its length written little-endian, claims n * 256 bytes.
        bytes memory order = _order(_key(1));
        bytes memory orders = abi.encodePacked(bytes1(uint8(order.length)), bytes1(0), order);

        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderMalformed.selector, 0));
        vm.prank(registrar);
        registry.registerBatch(orders);
    }

    function test_RevertWhen_BatchCallerIsNotRegistrar() public {
        vm.expectRevert(_unauthorized(outsider, registrarRole));
        vm.prank(outsider);
        registry.registerBatch(_batchOf(1, 2));
    }

    function test_RevertWhen_BatchPaused() public {
        vm.prank(admin);
        registry.pause();

        vm.expectRevert(Pausable.EnforcedPause.selector);
        vm.prank(registrar);
        registry.registerBatch(_batchOf(1, 2));
    }

    // ----------------------------------------------------------------------------------------------
    // Fuzz

    function testFuzz_BatchCounts(uint8 n) public {
        uint256 count = bound(n, 1, 50);
        _register(_key(1000));

        vm.prank(registrar);
        uint256 registered = registry.registerBatch(_batchOf(1, count));

        assertEq(registered, count, "count");
        assertEq(registry.totalSupply(), count + 1, "totalSupply");
        assertEq(registry.balanceOf(address(registry)), count + 1, "balanceOf(registry)");
        assertEq(registry.orderOf(_tokenId(_key(count))).documentHash, _documentHashOf(_key(count)), "last entry");
    }

    function testFuzz_RevertWhen_BatchRepeatsAnyKey(uint8 n, uint256 firstSeed, uint256 secondSeed) public {
        uint256 count = bound(n, 2, 30);
        uint256 first = bound(firstSeed, 0, count - 2);
        uint256 second = bound(secondSeed, first + 1, count - 1);
        bytes[] memory orders = new bytes[](count);
        for (uint256 i; i < count; ++i) {
            orders[i] = _order(_key(i));
        }
        orders[second] = _order(_key(first));

        vm.expectRevert(
            abi.encodeWithSelector(
                IPurchaseOrderRegistry.PurchaseOrderAlreadyRegistered.selector, _tokenId(_key(first)), _key(first)
            )
        );
        vm.prank(registrar);
        registry.registerBatch(OrderBytes.batch(orders));
    }

    function testFuzz_RevertWhen_BatchHasTrailingBytes(uint8 n, bytes memory trailing) public {
        uint256 count = bound(n, 1, 10);
        // One stray byte can never be a length prefix; two or more bytes may claim any length, so keep one.
        vm.assume(trailing.length > 0);
        bytes memory orders = abi.encodePacked(_batchOf(1, count), trailing[0]);

        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderMalformed.selector, count));
        vm.prank(registrar);
        registry.registerBatch(orders);
    }
}
