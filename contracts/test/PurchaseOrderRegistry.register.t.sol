// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {IERC721Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

import {IPurchaseOrderRegistry} from "../src/interfaces/IPurchaseOrderRegistry.sol";
import {OrderBytes} from "./utils/OrderBytes.sol";
import {RegistryFixture} from "./utils/RegistryFixture.sol";

/// @title register(bytes order)
contract RegisterTest is RegistryFixture {
    // ----------------------------------------------------------------------------------------------
    // What a registration stores and emits

    function test_Register_StoresHash() public {
        uint256 tokenId = _register(KEY);

        assertEq(registry.orderOf(tokenId).documentHash, _documentHashOf(KEY), "documentHash");
    }

    function test_Register_StoresTheGivenHash() public {
        vm.prank(registrar);
        uint256 tokenId = registry.register(_order(HASH, KEY));

        assertEq(registry.orderOf(tokenId).documentHash, HASH, "documentHash");
    }

    function test_Register_TokenIdIsKeccakOfKey() public {
        uint256 tokenId = _register(KEY);

        assertEq(tokenId, uint256(keccak256(bytes(KEY))), "tokenId");
        assertEq(tokenId, registry.tokenIdOf(KEY), "tokenIdOf");
    }

    function test_Register_StartsValid() public {
        uint256 tokenId = _register(KEY);

        IPurchaseOrderRegistry.OrderState memory state = registry.orderOf(tokenId);
        assertEq(uint256(state.status), uint256(IPurchaseOrderRegistry.Status.Valid), "status");
        assertEq(state.statusChangedAt, 0, "statusChangedAt");
        assertEq(state.replacedBy, 0, "replacedBy");
        assertEq(state.replaces, 0, "replaces");
    }

    function test_Register_EmitsTransferThenOrderRegistered() public {
        uint256 tokenId = _tokenId(KEY);

        vm.expectEmit(true, true, true, true, address(registry));
        emit IERC721.Transfer(address(0), address(registry), tokenId);
        vm.expectEmit(true, true, true, true, address(registry));
        emit IPurchaseOrderRegistry.OrderRegistered(HASH, registrar);

        vm.prank(registrar);
        registry.register(_order(HASH, KEY));
    }

    function test_Register_EmitsExactlyTwoEvents() public {
        vm.recordLogs();
        _register(KEY);

        assertEq(vm.getRecordedLogs().length, 2, "logs");
    }

    function test_Register_MintsToRegistry() public {
        uint256 tokenId = _register(KEY);

        assertEq(registry.ownerOf(tokenId), address(registry), "ownerOf");
    }

    function test_Register_CountsSupplyAndRegistryBalance() public {
        _register(_key(1));
        _register(_key(2));

        assertEq(registry.totalSupply(), 2, "totalSupply");
        assertEq(registry.balanceOf(address(registry)), 2, "balanceOf(registry)");
        assertEq(registry.balanceOf(registrar), 0, "balanceOf(registrar)");
    }

    function test_Register_TokenIsLocked() public {
        uint256 tokenId = _register(KEY);

        assertTrue(registry.locked(tokenId), "locked");
    }

    function test_Register_AdminMayRegister() public {
        vm.prank(admin);
        uint256 tokenId = registry.register(_order(KEY));

        assertEq(registry.ownerOf(tokenId), address(registry), "ownerOf");
    }

    function test_Register_AcceptsShortestOrder() public {
        // 32-byte hash, length 3, "a/b", no record: the 36 bytes of _MIN_ORDER_LENGTH.
        bytes memory order = abi.encodePacked(HASH, uint8(3), "a/b");
        assertEq(order.length, 36, "fixture length");

        vm.prank(registrar);
        uint256 tokenId = registry.register(order);

        assertEq(tokenId, _tokenId("a/b"), "tokenId");
        assertEq(registry.orderOf(tokenId).documentHash, HASH, "documentHash");
    }

    function test_Register_AcceptsKeyOf222Bytes() public {
        bytes memory key = _repeat("9", 222);

        vm.prank(registrar);
        uint256 tokenId = registry.register(OrderBytes.order(HASH, key, RECORD));

        assertEq(tokenId, uint256(keccak256(key)), "tokenId");
    }

    function test_Register_AcceptsKeyOf255Bytes() public {
        bytes memory key = _repeat("9", 255);

        vm.prank(registrar);
        uint256 tokenId = registry.register(OrderBytes.order(HASH, key, RECORD));

        assertEq(tokenId, uint256(keccak256(key)), "tokenId");
    }

    function test_RevertWhen_ClaimedKeyLengthOver222BeyondData() public {
        bytes memory order = abi.encodePacked(HASH, uint8(255), KEY);

        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderMalformed.selector, 0));
        vm.prank(registrar);
        registry.register(order);
    }

    function test_Register_RecordDoesNotChangeTokenId() public {
        vm.prank(registrar);
        uint256 tokenId = registry.register(OrderBytes.order(HASH, bytes(KEY), hex"01ffffffffffff"));

        assertEq(tokenId, _tokenId(KEY), "tokenId");
    }

    function test_OrderOf_UnknownTokenIsEmpty() public view {
        IPurchaseOrderRegistry.OrderState memory state = registry.orderOf(_tokenId(KEY));

        assertEq(state.documentHash, bytes32(0), "documentHash");
        assertEq(uint256(state.status), uint256(IPurchaseOrderRegistry.Status.None), "status");
    }

    function test_TokenIdOf_MatchesUnregisteredKey() public view {
        assertEq(registry.tokenIdOf(KEY), _tokenId(KEY), "tokenIdOf");
    }

    // ----------------------------------------------------------------------------------------------
    // Unknown tokens

    function test_RevertWhen_LockedOfUnknownToken() public {
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721NonexistentToken.selector, _tokenId(KEY)));
        registry.locked(_tokenId(KEY));
    }

    function test_RevertWhen_OwnerOfUnknownToken() public {
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721NonexistentToken.selector, _tokenId(KEY)));
        registry.ownerOf(_tokenId(KEY));
    }

    function test_RevertWhen_BalanceOfZeroAddress() public {
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721InvalidOwner.selector, address(0)));
        registry.balanceOf(address(0));
    }

    // ----------------------------------------------------------------------------------------------
    // Refusals

    function test_RevertWhen_KeyAlreadyRegistered() public {
        uint256 tokenId = _register(KEY);

        vm.expectRevert(
            abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderAlreadyRegistered.selector, tokenId, KEY)
        );
        vm.prank(registrar);
        registry.register(_order(KEY));
    }

    function test_RevertWhen_KeyAlreadyRegisteredWithAnotherHash() public {
        uint256 tokenId = _register(KEY);

        vm.expectRevert(
            abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderAlreadyRegistered.selector, tokenId, KEY)
        );
        vm.prank(admin);
        registry.register(_order(keccak256("another PDF"), KEY));
    }

    function test_RevertWhen_DocumentHashIsZero() public {
        vm.expectRevert(
            abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderEmptyDocumentHash.selector, _tokenId(KEY))
        );
        vm.prank(registrar);
        registry.register(_order(bytes32(0), KEY));
    }

    function test_RevertWhen_OrderIsEmpty() public {
        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderMalformed.selector, 0));
        vm.prank(registrar);
        registry.register("");
    }

    function test_RevertWhen_OrderIsTooShort() public {
        // 35 bytes: one short of a hash, a length byte and a 3-byte key.
        bytes memory order = abi.encodePacked(HASH, uint8(2), "ab");

        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderMalformed.selector, 0));
        vm.prank(registrar);
        registry.register(order);
    }

    function test_RevertWhen_KeyLengthBeyondData() public {
        // Claims a 27-byte key but carries 26 bytes and no record.
        bytes memory order = abi.encodePacked(HASH, uint8(bytes(KEY).length + 1), KEY);

        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderMalformed.selector, 0));
        vm.prank(registrar);
        registry.register(order);
    }

    function test_RevertWhen_KeyIsShorterThanThreeBytes() public {
        // Long enough overall (the record pads it), but the key is "ab".
        bytes memory order = abi.encodePacked(HASH, uint8(2), "ab", RECORD);

        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderMalformed.selector, 0));
        vm.prank(registrar);
        registry.register(order);
    }

    function test_RevertWhen_KeyIsEmpty() public {
        bytes memory order = abi.encodePacked(HASH, uint8(0), RECORD);

        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderMalformed.selector, 0));
        vm.prank(registrar);
        registry.register(order);
    }

    function test_RevertWhen_CallerIsNotRegistrar() public {
        vm.expectRevert(_unauthorized(outsider, registrarRole));
        vm.prank(outsider);
        registry.register(_order(KEY));
    }

    function test_RevertWhen_AnnullerRegisters() public {
        vm.expectRevert(_unauthorized(annuller, registrarRole));
        vm.prank(annuller);
        registry.register(_order(KEY));
    }

    function test_RevertWhen_Paused() public {
        vm.prank(admin);
        registry.pause();

        vm.expectRevert(Pausable.EnforcedPause.selector);
        vm.prank(registrar);
        registry.register(_order(KEY));
    }

    function test_RevertWhen_PausedEvenForNonRegistrar() public {
        // The pause is checked before the role: a paused registry answers EnforcedPause to everyone.
        vm.prank(admin);
        registry.pause();

        vm.expectRevert(Pausable.EnforcedPause.selector);
        vm.prank(outsider);
        registry.register(_order(KEY));
    }

    // ----------------------------------------------------------------------------------------------
    // Fuzz

    function testFuzz_Register(bytes32 documentHash, bytes memory key, bytes memory record) public {
        vm.assume(documentHash != bytes32(0));
        key = _clampKey(key);

        vm.prank(registrar);
        uint256 tokenId = registry.register(OrderBytes.order(documentHash, key, record));

        assertEq(tokenId, uint256(keccak256(key)), "tokenId");
        assertEq(tokenId, registry.tokenIdOf(string(key)), "tokenIdOf");
        assertEq(registry.orderOf(tokenId).documentHash, documentHash, "documentHash");
        assertEq(registry.ownerOf(tokenId), address(registry), "ownerOf");
        assertEq(registry.totalSupply(), 1, "totalSupply");
    }

    function testFuzz_RevertWhen_KeyRegisteredTwice(bytes32 firstHash, bytes32 secondHash, bytes memory key) public {
        vm.assume(firstHash != bytes32(0) && secondHash != bytes32(0));
        key = _clampKey(key);
        vm.prank(registrar);
        uint256 tokenId = registry.register(OrderBytes.order(firstHash, key, RECORD));

        vm.expectRevert(
            abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderAlreadyRegistered.selector, tokenId, key)
        );
        vm.prank(registrar);
        registry.register(OrderBytes.order(secondHash, key, RECORD));
    }

    function testFuzz_DistinctKeysDistinctTokens(bytes memory keyA, bytes memory keyB) public {
        keyA = _clampKey(keyA);
        keyB = _clampKey(keyB);
        vm.assume(keccak256(keyA) != keccak256(keyB));

        vm.startPrank(registrar);
        uint256 tokenA = registry.register(OrderBytes.order(HASH, keyA, RECORD));
        uint256 tokenB = registry.register(OrderBytes.order(HASH, keyB, RECORD));
        vm.stopPrank();

        assertNotEq(tokenA, tokenB, "token ids");
        assertEq(registry.totalSupply(), 2, "totalSupply");
        assertEq(registry.orderOf(tokenA).documentHash, HASH, "hash A");
        assertEq(registry.orderOf(tokenB).documentHash, HASH, "hash B");
    }

    function testFuzz_RevertWhen_OrderShorterThan36Bytes(bytes memory order) public {
        if (order.length > 35) assembly ("memory-safe") { mstore(order, 35) }

        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderMalformed.selector, 0));
        vm.prank(registrar);
        registry.register(order);
    }

    function testFuzz_RevertWhen_KeyLengthOutOfRange(uint8 claimedLength, uint8 recordLength) public {
        // With `recordLength` bytes after the length byte, a claimed key length is valid only in [3, recordLength].
        recordLength = uint8(bound(recordLength, 3, 255));
        vm.assume(claimedLength < 3 || claimedLength > recordLength);
        bytes memory order = abi.encodePacked(HASH, claimedLength, new bytes(recordLength));

        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderMalformed.selector, 0));
        vm.prank(registrar);
        registry.register(order);
    }

    function testFuzz_RevertWhen_CallerIsNotRegistrar(address caller) public {
        vm.assume(caller != admin && caller != registrar);

        vm.expectRevert(_unauthorized(caller, registrarRole));
        vm.prank(caller);
        registry.register(_order(KEY));
    }

    /// @dev Makes any fuzzed bytes a key the registry accepts: 3 to LONGEST_KEY bytes.
    function _clampKey(bytes memory key) private pure returns (bytes memory) {
        if (key.length < 3) return abi.encodePacked(key, "/x/");
        uint256 longest = LONGEST_KEY;
        if (key.length > longest) assembly ("memory-safe") { mstore(key, longest) }
        return key;
    }

    function _repeat(bytes1 char, uint256 count) private pure returns (bytes memory out) {
        out = new bytes(count);
        for (uint256 i; i < count; ++i) {
            out[i] = char;
        }
    }
}
