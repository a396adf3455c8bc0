// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {PurchaseOrderRegistry} from "../src/PurchaseOrderRegistry.sol";
import {IPurchaseOrderRegistry} from "../src/interfaces/IPurchaseOrderRegistry.sol";
import {MockForwarder} from "./mocks/MockForwarder.sol";
import {MockMetaTxHub} from "./mocks/MockMetaTxHub.sol";
import {MockRelayHub} from "./mocks/MockRelayHub.sol";
import {RegistryFixture} from "./utils/RegistryFixture.sol";

/// @title LACNet's open-standards model: the ERC-2771 hub fixed at deploy speaks for the signer through the last
/// 20 bytes of calldata; nobody else can, and the gas model's RelayHub keeps working beside it.
contract MetaTxHubTest is RegistryFixture {
    MockMetaTxHub internal hub;
    MockRelayHub internal relayHub;
    MockForwarder internal forwarder;
    /// @dev trusts the ERC-2771 hub and the gas model's forwarder, as a registry deployed on LACNet does
    PurchaseOrderRegistry internal lacnetRegistry;
    address internal signer;

    function setUp() public override {
        super.setUp();
        signer = makeAddr("signer");
        hub = new MockMetaTxHub();
        relayHub = new MockRelayHub();
        forwarder = new MockForwarder(address(relayHub));
        vm.label(address(hub), "metaTxHub");
        lacnetRegistry = new PurchaseOrderRegistry(admin, address(forwarder), address(hub), DOCUMENT_BASE_URI);
        vm.prank(admin);
        lacnetRegistry.grantRole(registrarRole, signer);
    }

    function _register(address as_, string memory key) internal returns (uint256) {
        bytes memory data = abi.encodeCall(PurchaseOrderRegistry.register, (_order(key)));
        return abi.decode(hub.forward(address(lacnetRegistry), data, as_), (uint256));
    }

    /// @dev For calls expected to revert (see the forwarder tests: a typed call cannot decode the revert).
    function _forwardRaw(address as_, bytes memory data) internal {
        (bool ok,) = address(hub).call(abi.encodeCall(MockMetaTxHub.forward, (address(lacnetRegistry), data, as_)));
        assertTrue(ok, "the expected revert did not happen");
    }

    function test_Hubs_AreStored() public view {
        assertEq(lacnetRegistry.trustedForwarder(), address(hub), "trustedForwarder (ERC-2771)");
        assertTrue(lacnetRegistry.isTrustedForwarder(address(hub)), "isTrustedForwarder(hub)");
        assertFalse(lacnetRegistry.isTrustedForwarder(address(relayHub)), "isTrustedForwarder(relayHub)");
        assertEq(lacnetRegistry.relayForwarder(), address(forwarder), "relayForwarder");
    }

    // ----------------------------------------------------------------------------------------------
    // The hub speaks for the signer

    function test_MetaTx_RegisterNamesSignerNotHub() public {
        vm.expectEmit(true, true, true, true, address(lacnetRegistry));
        emit IPurchaseOrderRegistry.OrderRegistered(_documentHashOf(KEY), signer);

        uint256 tokenId = _register(signer, KEY);

        assertEq(tokenId, _tokenId(KEY), "tokenId");
        assertEq(lacnetRegistry.ownerOf(tokenId), address(lacnetRegistry), "ownerOf");
    }

    function test_MetaTx_RegisterBatchBySigner() public {
        bytes memory data = abi.encodeCall(PurchaseOrderRegistry.registerBatch, (_batchOf(1, 3)));

        uint256 count = abi.decode(hub.forward(address(lacnetRegistry), data, signer), (uint256));

        assertEq(count, 3, "count");
        assertEq(lacnetRegistry.totalSupply(), 3, "totalSupply");
    }

    function test_MetaTx_SupersedeAndAnnulNameSigner() public {
        uint256 tokenId = _register(signer, KEY);
        vm.prank(admin);
        lacnetRegistry.grantRole(annullerRole, signer);
        bytes memory correction = abi.encodeCall(PurchaseOrderRegistry.supersede, (tokenId, _order(_key(2))));
        hub.forward(address(lacnetRegistry), correction, signer);

        vm.expectEmit(true, true, true, true, address(lacnetRegistry));
        emit IPurchaseOrderRegistry.OrderAnnulled(_tokenId(_key(2)), signer, "anulada");
        hub.forward(address(lacnetRegistry), abi.encodeCall(PurchaseOrderRegistry.annul, (_tokenId(_key(2)), "anulada")),
            signer);
    }

    function test_MetaTx_AdminGrantsAndPausesThroughHub() public {
        hub.forward(address(lacnetRegistry),
            abi.encodeWithSignature("grantRole(bytes32,address)", registrarRole, outsider), admin);
        hub.forward(address(lacnetRegistry), abi.encodeCall(PurchaseOrderRegistry.pause, ()), admin);

        assertTrue(lacnetRegistry.hasRole(registrarRole, outsider), "hasRole");
        assertTrue(lacnetRegistry.paused(), "paused");
    }

    function test_RevertWhen_SignerIsNotRegistrar() public {
        vm.expectRevert(_unauthorized(outsider, registrarRole));
        _forwardRaw(outsider, abi.encodeCall(PurchaseOrderRegistry.register, (_order(KEY))));
    }

    function test_RevertWhen_SignerIsNotAdmin() public {
        vm.expectRevert(_unauthorized(signer, adminRole));
        _forwardRaw(signer, abi.encodeCall(PurchaseOrderRegistry.pause, ()));
    }

    function test_Deploy_ThroughHubGivesRolesToAdminArgument() public {
        // The hub runs CREATE, so the constructor's msg.sender is the hub: the roles follow the argument.
        bytes memory code = abi.encodePacked(type(PurchaseOrderRegistry).creationCode,
            abi.encode(signer, address(0), address(hub), DOCUMENT_BASE_URI));
        PurchaseOrderRegistry deployed = PurchaseOrderRegistry(hub.deploy(code));

        assertTrue(deployed.hasRole(adminRole, signer), "admin");
        assertFalse(deployed.hasRole(adminRole, address(hub)), "hub is not admin");
        assertEq(deployed.trustedForwarder(), address(hub), "trustedForwarder");
    }

    function testFuzz_MetaTx_ActsForAnySigner(address anyone) public {
        vm.assume(anyone != admin && anyone != signer);
        bytes memory data = abi.encodeCall(PurchaseOrderRegistry.register, (_order(KEY)));

        vm.expectRevert(_unauthorized(anyone, registrarRole));
        _forwardRaw(anyone, data);

        vm.prank(admin);
        lacnetRegistry.grantRole(registrarRole, anyone);
        vm.expectEmit(true, true, true, true, address(lacnetRegistry));
        emit IPurchaseOrderRegistry.OrderRegistered(_documentHashOf(KEY), anyone);
        hub.forward(address(lacnetRegistry), data, anyone);
    }

    // ----------------------------------------------------------------------------------------------
    // Nobody else speaks for a signer

    function test_RevertWhen_ForgedSuffixFromOrdinaryCaller() public {
        // An outsider appends the registrar's address to its own call: not the hub, so it stays the outsider.
        bytes memory forged = abi.encodePacked(abi.encodeCall(PurchaseOrderRegistry.register, (_order(KEY))), signer);
        vm.prank(outsider);
        (bool ok, bytes memory reason) = address(lacnetRegistry).call(forged);

        assertFalse(ok, "forged call succeeded");
        assertEq(reason, _unauthorized(outsider, registrarRole), "revert");
    }

    function test_ForgedSuffixFromRegistrarIsStillTheRegistrar() public {
        // The same trailing bytes on a direct call by a registrar change nothing: msg.sender is used.
        bytes memory data = abi.encodePacked(abi.encodeCall(PurchaseOrderRegistry.register, (_order(KEY))), outsider);
        vm.expectEmit(true, true, true, true, address(lacnetRegistry));
        emit IPurchaseOrderRegistry.OrderRegistered(_documentHashOf(KEY), signer);
        vm.prank(signer);
        (bool ok,) = address(lacnetRegistry).call(data);
        assertTrue(ok, "call");
    }

    function test_RevertWhen_OtherErc2771HubForwards() public {
        MockMetaTxHub other = new MockMetaTxHub();
        bytes memory data = abi.encodeCall(PurchaseOrderRegistry.register, (_order(KEY)));

        vm.expectRevert(_unauthorized(address(other), registrarRole));
        other.forward(address(lacnetRegistry), data, signer);
    }

    function test_RevertWhen_HubCallsWithShortCalldata() public {
        // pause() is 4 bytes, under the 20 of an address: ERC2771Context falls back to msg.sender, the hub.
        vm.expectRevert(_unauthorized(address(hub), adminRole));
        hub.raw(address(lacnetRegistry), abi.encodeCall(PurchaseOrderRegistry.pause, ()));
    }

    function test_RevertWhen_HubCallsWithoutSuffix() public {
        // A hub call is always read as suffixed: without the signer, the last 20 bytes of the order are no
        // registrar (and never the hub itself).
        bytes memory data = abi.encodeCall(PurchaseOrderRegistry.register, (_order(KEY)));
        address tail = address(bytes20(_slice(data, data.length - 20)));
        vm.expectRevert(_unauthorized(tail, registrarRole));
        hub.raw(address(lacnetRegistry), data);
    }

    function test_RevertWhen_HubForwardsToRegistryWithoutHub() public {
        // The fixture's registry trusts no hub: the hub is an ordinary caller there.
        vm.expectRevert(_unauthorized(address(hub), registrarRole));
        hub.forward(address(registry), abi.encodeCall(PurchaseOrderRegistry.register, (_order(KEY))), admin);
    }

    // ----------------------------------------------------------------------------------------------
    // The gas model beside it

    function test_RelayHub_WithLacnetSuffixStillActsForItsSigner() public {
        // The gas model's hub passes the data as signed: calldata + abi.encode(node, expiration). Its last 20
        // bytes are the tail of the expiration word, never read as an address, because the caller is not the
        // ERC-2771 hub.
        bytes memory data = abi.encodePacked(abi.encodeCall(PurchaseOrderRegistry.register, (_order(KEY))),
            abi.encode(makeAddr("writer node"), uint256(1_836_394_529)));
        vm.expectEmit(true, true, true, true, address(lacnetRegistry));
        emit IPurchaseOrderRegistry.OrderRegistered(_documentHashOf(KEY), signer);

        relayHub.relay(address(lacnetRegistry), data, signer);
    }

    function _slice(bytes memory data, uint256 from) internal pure returns (bytes memory out) {
        out = new bytes(data.length - from);
        for (uint256 i; i < out.length; ++i) {
            out[i] = data[from + i];
        }
    }
}
