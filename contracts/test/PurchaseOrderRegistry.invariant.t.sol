// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {PurchaseOrderRegistry} from "../src/PurchaseOrderRegistry.sol";
import {IPurchaseOrderRegistry} from "../src/interfaces/IPurchaseOrderRegistry.sol";
import {RegistryHandler} from "./handlers/RegistryHandler.sol";
import {Test} from "./utils/Test.sol";

/// @title Properties that hold after any sequence of registrations, batches, annulments, supersessions,
/// transfer attempts, pauses and role changes, by registrars and by others.
contract RegistryInvariantTest is Test {
    /// @dev forge-std's StdInvariant.FuzzSelector; forge reads it through {targetSelectors}.
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    PurchaseOrderRegistry internal registry;
    RegistryHandler internal handler;

    function setUp() public {
        address admin = makeAddr("admin");
        address registrar = makeAddr("registrar");
        address annuller = makeAddr("annuller");
        address rotating = makeAddr("rotating");
        registry = new PurchaseOrderRegistry(admin, address(0), address(0), "");
        handler = new RegistryHandler(registry, admin, registrar, annuller, rotating);
        vm.startPrank(admin);
        registry.grantRole(registry.REGISTRAR_ROLE(), registrar);
        registry.grantRole(registry.ANNULLER_ROLE(), annuller);
        vm.stopPrank();
    }

    /// @notice Read by forge (as forge-std's StdInvariant would provide it): fuzz only the handler.
    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    /// @notice Read by forge: only the handler's actions, not its views.
    function targetSelectors() public view returns (FuzzSelector[] memory targets) {
        targets = new FuzzSelector[](1);
        targets[0] = FuzzSelector({addr: address(handler), selectors: handler.actions()});
    }

    function invariant_EveryTokenHasAHash() public view {
        uint256[] memory minted = handler.minted();
        for (uint256 i; i < minted.length; ++i) {
            bytes32 documentHash = registry.orderOf(minted[i]).documentHash;
            assertNotEq(documentHash, bytes32(0), "minted token without hash");
            assertEq(documentHash, handler.hashOf(minted[i]), "hash differs from the registered one");
            assertEq(registry.ownerOf(minted[i]), address(registry), "ownerOf");
        }
    }

    function invariant_KeysUnique() public view {
        uint256 supply = registry.totalSupply();
        assertEq(handler.successfulRegistrations(), supply, "successful registrations vs totalSupply");
        assertEq(handler.distinctKeys(), supply, "distinct keys vs totalSupply");
        assertEq(handler.minted().length, supply, "minted ids vs totalSupply");
        assertEq(registry.balanceOf(address(registry)), supply, "balanceOf(registry) vs totalSupply");
    }

    function invariant_OnlyRegistrarsMint() public view {
        assertEq(handler.unauthorizedMints(), 0, "a caller without REGISTRAR_ROLE minted");
    }

    function invariant_AnnulledStaysAnnulled() public view {
        uint256[] memory annulled = handler.annulled();
        for (uint256 i; i < annulled.length; ++i) {
            IPurchaseOrderRegistry.OrderState memory state = registry.orderOf(annulled[i]);
            assertEq(uint256(state.status), uint256(IPurchaseOrderRegistry.Status.Annulled), "status");
            assertEq(state.statusChangedAt, handler.changedAtOf(annulled[i]), "statusChangedAt");
        }
    }

    function invariant_SupersededLinksBothWays() public view {
        uint256[] memory superseded = handler.superseded();
        for (uint256 i; i < superseded.length; ++i) {
            IPurchaseOrderRegistry.OrderState memory state = registry.orderOf(superseded[i]);
            assertEq(uint256(state.status), uint256(IPurchaseOrderRegistry.Status.Superseded), "status");
            assertEq(state.replacedBy, handler.replacedByOf(superseded[i]), "replacedBy");
            assertEq(registry.orderOf(state.replacedBy).replaces, superseded[i], "replaces");
        }
    }

    function invariant_RegistryMatchesModel() public view {
        assertEq(handler.unexpectedOutcomes(), 0, "a call's outcome contradicted the model");
        assertEq(handler.successfulTransfers(), 0, "a transfer succeeded");
        assertEq(registry.paused(), handler.paused(), "paused");
    }
}
