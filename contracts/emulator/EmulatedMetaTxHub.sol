// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

/// @title A PermissionedMetaTxHub for the LACNet emulator (tests only), our own code.
/// @notice Published (LACNet's deployContract-metaTx, lib/src/metaTxAbi.ts and its scripts, read 2026-12-01):
/// the ABI of `execute(Forward, bytes callData, bytes signature)` (payable, no outputs), `isNonceUsed(from,
/// space, nonce)`, `isCallerAllowed(caller)` and the event `ContractDeployed(address indexed signer, address
/// deployed, bytes32 dataHash)`; the EIP-712 domain {name "PermissionedMetaTxHub", version "1", chainId,
/// verifyingContract = hub} and the Forward type; `to = 0` deploys `callData` with CREATE; targets extend
/// OpenZeppelin's ERC2771Context(hub), so the hub appends the signer's 20 bytes to `callData`.
/// INFERRED (the hub's source is not published): every check below, its order, that a failure reverts (and
/// with which error), that a reverting target reverts the whole call (so its nonce stays unused), and what
/// `isCallerAllowed` is backed by. The client must not depend on these error names.
contract EmulatedMetaTxHub is EIP712 {
    struct Forward {
        address from;
        address to;
        uint256 value;
        uint32 space;
        uint256 nonce;
        uint256 deadline;
        bytes32 dataHash;
        address caller;
    }

    bytes32 private constant _FORWARD_TYPEHASH = keccak256(
        "Forward(address from,address to,uint256 value,uint32 space,uint256 nonce,uint256 deadline,bytes32 dataHash,address caller)"
    );

    /// @notice Published: the hub's deployment event.
    event ContractDeployed(address indexed signer, address deployed, bytes32 dataHash);

    // Inferred refusals (names ours).
    error HubCallerNotAllowed(address caller);
    error HubWrongCaller(address expected, address actual);
    error HubExpired(uint256 deadline, uint256 timestamp);
    error HubNonceUsed(address from, uint32 space, uint256 nonce);
    error HubDataHashMismatch();
    error HubInvalidSignature(address recovered, address from);
    error HubValueMismatch();
    error HubDeploymentFailed();
    error HubNotAdmin();

    address private immutable _admin;
    mapping(address caller => bool allowed) private _allowed;
    mapping(address from => mapping(uint32 space => mapping(uint256 nonce => bool used))) private _used;

    constructor() EIP712("PermissionedMetaTxHub", "1") {
        _admin = msg.sender;
    }

    /// @notice Emulator only: LNet permissions a relayer (its per-block gas limit is not modelled).
    function setCallerAllowed(address caller, bool allowed) external {
        if (msg.sender != _admin) revert HubNotAdmin();
        _allowed[caller] = allowed;
    }

    /// @notice Published view: whether `caller` may call {execute}.
    function isCallerAllowed(address caller) external view returns (bool) {
        return _allowed[caller];
    }

    /// @notice Published view: whether `from` has used `nonce` in `space` (nonces are unordered).
    function isNonceUsed(address from, uint32 space, uint256 nonce) external view returns (bool) {
        return _used[from][space][nonce];
    }

    /// @notice Published entry point: runs `callData` for `forward.from` after the (inferred) checks.
    function execute(Forward calldata forward, bytes calldata callData, bytes calldata signature) external payable {
        if (!_allowed[msg.sender]) revert HubCallerNotAllowed(msg.sender);
        if (forward.caller != msg.sender) revert HubWrongCaller(forward.caller, msg.sender);
        // slither-disable-next-line timestamp
        if (block.timestamp > forward.deadline) revert HubExpired(forward.deadline, block.timestamp);
        if (keccak256(callData) != forward.dataHash) revert HubDataHashMismatch();
        if (msg.value != forward.value) revert HubValueMismatch();
        if (_used[forward.from][forward.space][forward.nonce]) {
            revert HubNonceUsed(forward.from, forward.space, forward.nonce);
        }
        (address recovered, ECDSA.RecoverError failure,) = ECDSA.tryRecover(_digest(forward), signature);
        if (failure != ECDSA.RecoverError.NoError || recovered != forward.from) {
            revert HubInvalidSignature(recovered, forward.from);
        }
        _used[forward.from][forward.space][forward.nonce] = true;
        if (forward.to == address(0)) {
            bytes memory code = callData;
            address deployed;
            assembly ("memory-safe") {
                deployed := create(callvalue(), add(code, 0x20), mload(code))
            }
            if (deployed == address(0)) revert HubDeploymentFailed();
            emit ContractDeployed(forward.from, deployed, forward.dataHash);
            return;
        }
        (bool ok, bytes memory output) = forward.to.call{value: msg.value}(abi.encodePacked(callData, forward.from));
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(output, 0x20), mload(output))
            }
        }
    }

    function _digest(Forward calldata forward) private view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(_FORWARD_TYPEHASH, forward.from, forward.to, forward.value,
            forward.space, forward.nonce, forward.deadline, forward.dataHash, forward.caller)));
    }
}
