// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

import {IPurchaseOrderRegistry} from "../src/interfaces/IPurchaseOrderRegistry.sol";
import {RegistryFixture} from "./utils/RegistryFixture.sol";

/// @title supersede(uint256 supersededTokenId, bytes order)
contract SupersedeTest is RegistryFixture {
    uint256 internal constant SUPERSEDED_AT = 1_800_000_000;
    string internal constant CORRECTED_KEY = "20131370998/OC-2026-004512-R1";

    uint256 internal original;

    function setUp() public override {
        super.setUp();
        original = _register(KEY);
        vm.warp(SUPERSEDED_AT);
    }

    function _supersede() internal returns (uint256 replacement) {
        vm.prank(registrar);
        replacement = registry.supersede(original, _order(CORRECTED_KEY));
    }

    function test_Supersede_ReturnsTokenIdOfNewKey() public {
        uint256 replacement = _supersede();

        assertEq(replacement, _tokenId(CORRECTED_KEY), "tokenId");
    }

    function test_Supersede_LinksBothWays() public {
        uint256 replacement = _supersede();

        assertEq(registry.orderOf(original).replacedBy, replacement, "replacedBy");
        assertEq(registry.orderOf(replacement).replaces, original, "replaces");
    }

    function test_Supersede_MarksOriginalSuperseded() public {
        _supersede();

        IPurchaseOrderRegistry.OrderState memory state = registry.orderOf(original);
        assertEq(uint256(state.status), uint256(IPurchaseOrderRegistry.Status.Superseded), "status");
        assertEq(state.statusChangedAt, SUPERSEDED_AT, "statusChangedAt");
        assertEq(state.documentHash, _documentHashOf(KEY), "documentHash kept");
    }

    function test_Supersede_NewOrderIsValid() public {
        uint256 replacement = _supersede();

        IPurchaseOrderRegistry.OrderState memory state = registry.orderOf(replacement);
        assertEq(uint256(state.status), uint256(IPurchaseOrderRegistry.Status.Valid), "status");
        assertEq(state.statusChangedAt, 0, "statusChangedAt");
        assertEq(state.replacedBy, 0, "replacedBy");
        assertEq(state.documentHash, _documentHashOf(CORRECTED_KEY), "documentHash");
        assertEq(registry.ownerOf(replacement), address(registry), "ownerOf");
    }

    function test_Supersede_CountsNewToken() public {
        _supersede();

        assertEq(registry.totalSupply(), 2, "totalSupply");
        assertEq(registry.balanceOf(address(registry)), 2, "balanceOf(registry)");
        assertEq(registry.ownerOf(original), address(registry), "original still exists");
    }

    function test_Supersede_EmitsEventsInOrder() public {
        uint256 replacement = _tokenId(CORRECTED_KEY);

        vm.expectEmit(true, true, true, true, address(registry));
        emit IERC721.Transfer(address(0), address(registry), replacement);
        vm.expectEmit(true, true, true, true, address(registry));
        emit IPurchaseOrderRegistry.OrderRegistered(_documentHashOf(CORRECTED_KEY), registrar);
        vm.expectEmit(true, true, true, true, address(registry));
        emit IPurchaseOrderRegistry.OrderSuperseded(original, replacement, registrar);
        vm.expectEmit(true, true, true, true, address(registry));
        emit IPurchaseOrderRegistry.MetadataUpdate(original);

        _supersede();
    }

    function test_Supersede_Chain() public {
        uint256 second = _supersede();
        vm.prank(registrar);
        uint256 third = registry.supersede(second, _order(_key(3)));

        assertEq(registry.orderOf(original).replacedBy, second, "first -> second");
        assertEq(registry.orderOf(second).replaces, original, "second <- first");
        assertEq(registry.orderOf(second).replacedBy, third, "second -> third");
        assertEq(registry.orderOf(third).replaces, second, "third <- second");
        assertEq(_status(second), uint256(IPurchaseOrderRegistry.Status.Superseded), "second status");
        assertEq(_status(third), uint256(IPurchaseOrderRegistry.Status.Valid), "third status");
    }

    // ----------------------------------------------------------------------------------------------
    // Refusals

    function test_RevertWhen_AlreadySuperseded() public {
        _supersede();

        vm.expectRevert(
            abi.encodeWithSelector(
                IPurchaseOrderRegistry.PurchaseOrderNotValid.selector, original, IPurchaseOrderRegistry.Status.Superseded
            )
        );
        vm.prank(registrar);
        registry.supersede(original, _order(_key(3)));
    }

    function test_RevertWhen_Annulled() public {
        vm.prank(annuller);
        registry.annul(original, "anulada");

        vm.expectRevert(
            abi.encodeWithSelector(
                IPurchaseOrderRegistry.PurchaseOrderNotValid.selector, original, IPurchaseOrderRegistry.Status.Annulled
            )
        );
        vm.prank(registrar);
        registry.supersede(original, _order(CORRECTED_KEY));
    }

    function test_RevertWhen_TokenIsUnknown() public {
        uint256 unknown = _tokenId(_key(99));

        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderNotRegistered.selector, unknown));
        vm.prank(registrar);
        registry.supersede(unknown, _order(CORRECTED_KEY));
    }

    function test_RevertWhen_NewKeyIsTheSupersededKey() public {
        vm.expectRevert(
            abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderAlreadyRegistered.selector, original, KEY)
        );
        vm.prank(registrar);
        registry.supersede(original, _order(keccak256("corrected PDF"), KEY));
    }

    function test_RevertWhen_NewKeyIsRegistered() public {
        uint256 other = _register(_key(2));

        vm.expectRevert(
            abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderAlreadyRegistered.selector, other, _key(2))
        );
        vm.prank(registrar);
        registry.supersede(original, _order(_key(2)));
    }

    function test_RevertWhen_NewOrderIsMalformed() public {
        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderMalformed.selector, 0));
        vm.prank(registrar);
        registry.supersede(original, abi.encodePacked(HASH, uint8(1), "a"));
    }

    function test_RevertWhen_NewOrderHasZeroHash() public {
        vm.expectRevert(
            abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderEmptyDocumentHash.selector, _tokenId(CORRECTED_KEY))
        );
        vm.prank(registrar);
        registry.supersede(original, _order(bytes32(0), CORRECTED_KEY));
    }

    function test_RevertWhen_CallerIsNotRegistrar() public {
        vm.expectRevert(_unauthorized(annuller, registrarRole));
        vm.prank(annuller);
        registry.supersede(original, _order(CORRECTED_KEY));
    }

    function test_RevertWhen_Paused() public {
        vm.prank(admin);
        registry.pause();

        vm.expectRevert(Pausable.EnforcedPause.selector);
        vm.prank(registrar);
        registry.supersede(original, _order(CORRECTED_KEY));
    }
}
