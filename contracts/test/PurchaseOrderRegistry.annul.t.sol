// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

import {IPurchaseOrderRegistry} from "../src/interfaces/IPurchaseOrderRegistry.sol";
import {RegistryFixture} from "./utils/RegistryFixture.sol";

/// @title annul(uint256 tokenId, string reason)
contract AnnulTest is RegistryFixture {
    string internal constant REASON = "Resolucion 045-2026: proveedor inhabilitado";
    uint256 internal constant ANNULLED_AT = 1_800_000_000;

    uint256 internal tokenId;

    function setUp() public override {
        super.setUp();
        tokenId = _register(KEY);
        vm.warp(ANNULLED_AT);
    }

    function test_Annul_SetsStatusAnnulled() public {
        vm.prank(annuller);
        registry.annul(tokenId, REASON);

        assertEq(_status(tokenId), uint256(IPurchaseOrderRegistry.Status.Annulled), "status");
    }

    function test_Annul_RecordsStatusChangedAt() public {
        vm.prank(annuller);
        registry.annul(tokenId, REASON);

        assertEq(registry.orderOf(tokenId).statusChangedAt, ANNULLED_AT, "statusChangedAt");
    }

    function test_Annul_EmitsOrderAnnulledWithReason() public {
        vm.expectEmit(true, true, true, true, address(registry));
        emit IPurchaseOrderRegistry.OrderAnnulled(tokenId, annuller, REASON);

        vm.prank(annuller);
        registry.annul(tokenId, REASON);
    }

    function test_Annul_EmitsMetadataUpdate() public {
        vm.expectEmit(true, true, true, true, address(registry));
        emit IPurchaseOrderRegistry.MetadataUpdate(tokenId);

        vm.prank(annuller);
        registry.annul(tokenId, REASON);
    }

    function test_Annul_KeepsTokenAndHash() public {
        vm.prank(annuller);
        registry.annul(tokenId, REASON);

        assertEq(registry.ownerOf(tokenId), address(registry), "ownerOf");
        assertEq(registry.orderOf(tokenId).documentHash, _documentHashOf(KEY), "documentHash");
        assertEq(registry.totalSupply(), 1, "totalSupply");
        assertTrue(registry.locked(tokenId), "locked");
    }

    function test_Annul_AdminMayAnnul() public {
        vm.prank(admin);
        registry.annul(tokenId, REASON);

        assertEq(_status(tokenId), uint256(IPurchaseOrderRegistry.Status.Annulled), "status");
    }

    function test_Annul_AcceptsOneByteReason() public {
        vm.prank(annuller);
        registry.annul(tokenId, "x");

        assertEq(_status(tokenId), uint256(IPurchaseOrderRegistry.Status.Annulled), "status");
    }

    function test_Annul_AcceptsReasonOf1000Bytes() public {
        vm.prank(annuller);
        registry.annul(tokenId, string(new bytes(1000)));

        assertEq(_status(tokenId), uint256(IPurchaseOrderRegistry.Status.Annulled), "status");
    }

    function test_Annul_ReplacementOfSupersededOrder() public {
        vm.prank(registrar);
        uint256 replacement = registry.supersede(tokenId, _order(_key(2)));

        vm.prank(annuller);
        registry.annul(replacement, REASON);

        assertEq(_status(replacement), uint256(IPurchaseOrderRegistry.Status.Annulled), "replacement");
        assertEq(_status(tokenId), uint256(IPurchaseOrderRegistry.Status.Superseded), "original");
    }

    function test_RevertWhen_KeyOfAnnulledOrderIsRegisteredAgain() public {
        vm.prank(annuller);
        registry.annul(tokenId, REASON);

        vm.expectRevert(
            abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderAlreadyRegistered.selector, tokenId, KEY)
        );
        vm.prank(registrar);
        registry.register(_order(KEY));
    }

    // ----------------------------------------------------------------------------------------------
    // Refusals

    function test_RevertWhen_CallerIsNotAnnuller() public {
        vm.expectRevert(_unauthorized(outsider, annullerRole));
        vm.prank(outsider);
        registry.annul(tokenId, REASON);
    }

    function test_RevertWhen_RegistrarAnnuls() public {
        vm.expectRevert(_unauthorized(registrar, annullerRole));
        vm.prank(registrar);
        registry.annul(tokenId, REASON);
    }

    function test_RevertWhen_ReasonIsEmpty() public {
        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderInvalidReason.selector, 0));
        vm.prank(annuller);
        registry.annul(tokenId, "");
    }

    function test_RevertWhen_ReasonIsOver1000Bytes() public {
        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderInvalidReason.selector, 1001));
        vm.prank(annuller);
        registry.annul(tokenId, string(new bytes(1001)));
    }

    function test_RevertWhen_TokenIsUnknown() public {
        uint256 unknown = _tokenId(_key(99));

        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderNotRegistered.selector, unknown));
        vm.prank(annuller);
        registry.annul(unknown, REASON);
    }

    function test_RevertWhen_AlreadyAnnulled() public {
        vm.prank(annuller);
        registry.annul(tokenId, REASON);

        vm.expectRevert(
            abi.encodeWithSelector(
                IPurchaseOrderRegistry.PurchaseOrderNotValid.selector, tokenId, IPurchaseOrderRegistry.Status.Annulled
            )
        );
        vm.prank(annuller);
        registry.annul(tokenId, "again");
    }

    function test_RevertWhen_Superseded() public {
        vm.prank(registrar);
        registry.supersede(tokenId, _order(_key(2)));

        vm.expectRevert(
            abi.encodeWithSelector(
                IPurchaseOrderRegistry.PurchaseOrderNotValid.selector, tokenId, IPurchaseOrderRegistry.Status.Superseded
            )
        );
        vm.prank(annuller);
        registry.annul(tokenId, REASON);
    }

    function test_RevertWhen_Paused() public {
        vm.prank(admin);
        registry.pause();

        vm.expectRevert(Pausable.EnforcedPause.selector);
        vm.prank(annuller);
        registry.annul(tokenId, REASON);
    }

    function test_AnnulledStatusSurvivesLaterTime() public {
        vm.prank(annuller);
        registry.annul(tokenId, REASON);
        vm.warp(ANNULLED_AT + 365 days);

        IPurchaseOrderRegistry.OrderState memory state = registry.orderOf(tokenId);
        assertEq(uint256(state.status), uint256(IPurchaseOrderRegistry.Status.Annulled), "status");
        assertEq(state.statusChangedAt, ANNULLED_AT, "statusChangedAt");
    }

    // ----------------------------------------------------------------------------------------------
    // Fuzz

    function testFuzz_Annul_ReasonLengthInRange(uint256 length) public {
        length = bound(length, 1, 1000);

        vm.prank(annuller);
        registry.annul(tokenId, string(new bytes(length)));

        assertEq(_status(tokenId), uint256(IPurchaseOrderRegistry.Status.Annulled), "status");
    }

    function testFuzz_RevertWhen_ReasonLengthOver1000(uint256 length) public {
        length = bound(length, 1001, 5000);

        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderInvalidReason.selector, length));
        vm.prank(annuller);
        registry.annul(tokenId, string(new bytes(length)));
    }

    function testFuzz_RevertWhen_TokenIsUnknown(uint256 unknown) public {
        vm.assume(unknown != tokenId);

        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderNotRegistered.selector, unknown));
        vm.prank(annuller);
        registry.annul(unknown, REASON);
    }
}
