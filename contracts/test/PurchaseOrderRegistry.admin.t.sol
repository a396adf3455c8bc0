// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

import {PurchaseOrderRegistry} from "../src/PurchaseOrderRegistry.sol";
import {IPurchaseOrderRegistry} from "../src/interfaces/IPurchaseOrderRegistry.sol";
import {RegistryFixture} from "./utils/RegistryFixture.sol";

/// @title Deployment, roles, pause and the document base URI.
contract AdminTest is RegistryFixture {
    // ----------------------------------------------------------------------------------------------
    // Deployment

    function test_Constructor_GrantsAdminEveryRole() public view {
        assertTrue(registry.hasRole(adminRole, admin), "DEFAULT_ADMIN_ROLE");
        assertTrue(registry.hasRole(registrarRole, admin), "REGISTRAR_ROLE");
        assertTrue(registry.hasRole(annullerRole, admin), "ANNULLER_ROLE");
    }

    function test_Constructor_StoresDocumentBaseURI() public view {
        assertEq(registry.documentBaseURI(), DOCUMENT_BASE_URI, "documentBaseURI");
    }

    function test_Constructor_StartsEmptyAndUnpaused() public view {
        assertEq(registry.totalSupply(), 0, "totalSupply");
        assertEq(registry.balanceOf(address(registry)), 0, "balanceOf(registry)");
        assertFalse(registry.paused(), "paused");
    }

    function test_Constructor_WithoutForwarderOrHub() public view {
        assertEq(registry.relayForwarder(), address(0), "relayForwarder");
        assertEq(registry.trustedForwarder(), address(0), "trustedForwarder (ERC-2771)");
    }

    function test_Roles_AreTheNamedHashes() public view {
        assertEq(registrarRole, keccak256("REGISTRAR_ROLE"), "REGISTRAR_ROLE");
        assertEq(annullerRole, keccak256("ANNULLER_ROLE"), "ANNULLER_ROLE");
        assertEq(adminRole, bytes32(0), "DEFAULT_ADMIN_ROLE");
    }

    function test_Constructor_AcceptsEmptyDocumentBaseURI() public {
        PurchaseOrderRegistry bare = new PurchaseOrderRegistry(admin, address(0), address(0), "");

        assertEq(bare.documentBaseURI(), "", "documentBaseURI");
    }

    // ----------------------------------------------------------------------------------------------
    // Roles

    function test_GrantRegistrar_AllowsRegistering() public {
        vm.prank(admin);
        registry.grantRole(registrarRole, outsider);

        vm.prank(outsider);
        uint256 tokenId = registry.register(_order(KEY));

        assertEq(registry.ownerOf(tokenId), address(registry), "ownerOf");
    }

    function test_GrantRegistrar_EmitsRoleGranted() public {
        vm.expectEmit(true, true, true, true, address(registry));
        emit IAccessControl.RoleGranted(registrarRole, outsider, admin);

        vm.prank(admin);
        registry.grantRole(registrarRole, outsider);
    }

    function test_RevokeRegistrar_StopsRegistering() public {
        vm.prank(admin);
        registry.revokeRole(registrarRole, registrar);

        vm.expectRevert(_unauthorized(registrar, registrarRole));
        vm.prank(registrar);
        registry.register(_order(KEY));
    }

    function test_RenounceRegistrar_StopsRegistering() public {
        vm.prank(registrar);
        registry.renounceRole(registrarRole, registrar);

        vm.expectRevert(_unauthorized(registrar, registrarRole));
        vm.prank(registrar);
        registry.register(_order(KEY));
    }

    function test_RevokeAnnuller_StopsAnnulling() public {
        uint256 tokenId = _register(KEY);
        vm.prank(admin);
        registry.revokeRole(annullerRole, annuller);

        vm.expectRevert(_unauthorized(annuller, annullerRole));
        vm.prank(annuller);
        registry.annul(tokenId, "anulada");
    }

    function test_RevertWhen_NonAdminGrantsRegistrar() public {
        vm.expectRevert(_unauthorized(registrar, adminRole));
        vm.prank(registrar);
        registry.grantRole(registrarRole, outsider);
    }

    function test_RevertWhen_NonAdminRevokesRegistrar() public {
        vm.expectRevert(_unauthorized(outsider, adminRole));
        vm.prank(outsider);
        registry.revokeRole(registrarRole, registrar);
    }

    // ----------------------------------------------------------------------------------------------
    // Pause

    function test_Pause_SetsPaused() public {
        vm.prank(admin);
        registry.pause();

        assertTrue(registry.paused(), "paused");
    }

    function test_Pause_EmitsPaused() public {
        vm.expectEmit(true, true, true, true, address(registry));
        emit Pausable.Paused(admin);

        vm.prank(admin);
        registry.pause();
    }

    function test_Unpause_AllowsRegisteringAgain() public {
        vm.startPrank(admin);
        registry.pause();
        registry.unpause();
        vm.stopPrank();

        uint256 tokenId = _register(KEY);

        assertFalse(registry.paused(), "paused");
        assertEq(registry.ownerOf(tokenId), address(registry), "ownerOf");
    }

    function test_Pause_KeepsReadsWorking() public {
        uint256 tokenId = _register(KEY);
        vm.prank(admin);
        registry.pause();

        assertEq(registry.orderOf(tokenId).documentHash, _documentHashOf(KEY), "orderOf");
        assertEq(registry.ownerOf(tokenId), address(registry), "ownerOf");
        assertTrue(registry.locked(tokenId), "locked");
        assertTrue(bytes(registry.tokenURI(tokenId)).length > 0, "tokenURI");
    }

    function test_Pause_AllowsAdministration() public {
        vm.startPrank(admin);
        registry.pause();
        registry.grantRole(registrarRole, outsider);
        registry.setDocumentBaseURI("https://other.example/");
        vm.stopPrank();

        assertTrue(registry.hasRole(registrarRole, outsider), "grantRole");
        assertEq(registry.documentBaseURI(), "https://other.example/", "documentBaseURI");
    }

    function test_RevertWhen_NonAdminPauses() public {
        vm.expectRevert(_unauthorized(registrar, adminRole));
        vm.prank(registrar);
        registry.pause();
    }

    function test_RevertWhen_NonAdminUnpauses() public {
        vm.prank(admin);
        registry.pause();

        vm.expectRevert(_unauthorized(annuller, adminRole));
        vm.prank(annuller);
        registry.unpause();
    }

    function test_RevertWhen_PausedTwice() public {
        vm.prank(admin);
        registry.pause();

        vm.expectRevert(Pausable.EnforcedPause.selector);
        vm.prank(admin);
        registry.pause();
    }

    function test_RevertWhen_UnpausedWhileRunning() public {
        vm.expectRevert(Pausable.ExpectedPause.selector);
        vm.prank(admin);
        registry.unpause();
    }

    // ----------------------------------------------------------------------------------------------
    // Document base URI

    function test_SetDocumentBaseURI_ChangesIt() public {
        vm.prank(admin);
        registry.setDocumentBaseURI("https://docs.example.pe/");

        assertEq(registry.documentBaseURI(), "https://docs.example.pe/", "documentBaseURI");
    }

    function test_SetDocumentBaseURI_EmitsDocumentBaseURIChanged() public {
        vm.expectEmit(true, true, true, true, address(registry));
        emit IPurchaseOrderRegistry.DocumentBaseURIChanged("https://docs.example.pe/");

        vm.prank(admin);
        registry.setDocumentBaseURI("https://docs.example.pe/");
    }

    function test_SetDocumentBaseURI_MayClearIt() public {
        vm.prank(admin);
        registry.setDocumentBaseURI("");

        assertEq(registry.documentBaseURI(), "", "documentBaseURI");
    }

    function test_RevertWhen_NonAdminSetsDocumentBaseURI() public {
        vm.expectRevert(_unauthorized(registrar, adminRole));
        vm.prank(registrar);
        registry.setDocumentBaseURI("https://evil.example/");
    }
}
