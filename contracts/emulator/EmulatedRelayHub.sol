// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IRelayHub} from "../src/interfaces/IRelayHub.sol";
import {RlpReader} from "./RlpReader.sol";

/// @title A RelayHub for the LACNet emulator (tests only), written from the description in LACNET.md.
/// @notice The writer node (the emulator's JSON-RPC front) calls {relayMetaTx} or {deployMetaTx} with
/// `signingData` = the RLP of the client's unsigned legacy transaction [nonce, gasPrice, gas, to, value,
/// data], exactly the bytes the client signed without a chain id, and the client's v, r, s. The hub
/// recovers the signer from keccak256(signingData), checks it, and runs the call (data minus LACNet's
/// 64-byte suffix abi.encode(nodeAddress, expiration)) while {getMsgSender} names the signer.
/// A refusal is not a revert: the hub emits {BadTransactionSent} and the node's transaction succeeds,
/// as LACNet's does; a target that reverts is reported by {TransactionRelayed} with executed = false.
contract EmulatedRelayHub is IRelayHub {
    /// @notice Why the hub refused a transaction (the codes LACNET.md lists).
    enum ErrorCode {
        MaxBlockGasLimit,
        BadOriginalSender,
        BadNonce,
        NotEnoughGas,
        IsNotContract,
        EmptyCode,
        InvalidSignature,
        InvalidDestination
    }

    /// @notice A relayed call ran (`executed`) or reverted (`output` is then its revert data).
    event TransactionRelayed(address indexed relay, address indexed from, address indexed to, bool executed, bytes output);
    /// @notice A relayed deployment created `contractDeployed`.
    event ContractDeployed(address indexed relay, address indexed from, address contractDeployed);
    /// @notice The hub refused the transaction: nothing ran and the sender's nonce did not move.
    event BadTransactionSent(address node, address originalSender, ErrorCode errorCode);

    /// @notice Thrown when a meta-transaction's signing data cannot be decoded.
    error RelayHubMalformedTransaction();

    uint256 private constant SUFFIX_BYTES = 64;
    /// @dev Gas the hub keeps for its own work after the call (event, bookkeeping).
    uint256 private constant RESERVE_GAS = 50_000;

    mapping(address sender => uint256 nonce) private _nonces;
    address private _msgSenderNow;

    struct Original {
        address signer;
        uint256 nonce;
        uint256 gasLimit;
        address to;
        bytes data;
        address node;
    }

    /// @notice The next nonce the hub accepts from `from` (what the writer node reports as its nonce).
    function getNonce(address from) external view returns (uint256) {
        return _nonces[from];
    }

    /// @inheritdoc IRelayHub
    function getMsgSender() external view returns (address) {
        return _msgSenderNow;
    }

    /// @notice Relays the client's signed call. Emits {TransactionRelayed}, or {BadTransactionSent}.
    function relayMetaTx(bytes calldata signingData, uint8 v, bytes32 r, bytes32 s) external returns (bool executed) {
        Original memory original = _decode(signingData, v, r, s);
        if (!_accept(original, false)) return false;
        _msgSenderNow = original.signer;
        bytes memory output;
        (executed, output) = original.to.call{gas: original.gasLimit}(original.data);
        _msgSenderNow = address(0);
        emit TransactionRelayed(msg.sender, original.signer, original.to, executed, output);
    }

    /// @notice Relays the client's signed deployment. Emits {ContractDeployed}, or {TransactionRelayed}
    /// with executed = false when the constructor reverted, or {BadTransactionSent}.
    function deployMetaTx(bytes calldata signingData, uint8 v, bytes32 r, bytes32 s)
        external
        returns (bool executed, address deployed)
    {
        Original memory original = _decode(signingData, v, r, s);
        if (!_accept(original, true)) return (false, address(0));
        _msgSenderNow = original.signer;
        bytes memory code = original.data;
        // the creation gets what is left (all but 1/64), which {_accept} checked covers the gas limit
        assembly ("memory-safe") {
            deployed := create(0, add(code, 0x20), mload(code))
        }
        _msgSenderNow = address(0);
        executed = deployed != address(0);
        if (executed) {
            emit ContractDeployed(msg.sender, original.signer, deployed);
        } else {
            bytes memory output = new bytes(0);
            assembly ("memory-safe") {
                let size := returndatasize()
                output := mload(0x40)
                mstore(output, size)
                returndatacopy(add(output, 0x20), 0, size)
                mstore(0x40, add(add(output, 0x20), size))
            }
            emit TransactionRelayed(msg.sender, original.signer, address(0), false, output);
        }
    }

    /// @dev The hub's checks, in order; a failed one emits {BadTransactionSent} and returns false.
    function _accept(Original memory original, bool deployment) private returns (bool) {
        ErrorCode code;
        if (original.signer == address(0)) {
            code = ErrorCode.InvalidSignature;
        } else if (original.node != tx.origin) {
            code = ErrorCode.BadOriginalSender;
        } else if (original.gasLimit > block.gaslimit) {
            code = ErrorCode.MaxBlockGasLimit;
        } else if (original.nonce != _nonces[original.signer]) {
            code = ErrorCode.BadNonce;
        } else if (deployment ? original.to != address(0) : original.to == address(0)) {
            code = ErrorCode.InvalidDestination;
        } else if (deployment && original.data.length == 0) {
            code = ErrorCode.EmptyCode;
        } else if (!deployment && original.to.code.length == 0) {
            code = ErrorCode.IsNotContract;
        } else if (gasleft() < original.gasLimit + original.gasLimit / 63 + RESERVE_GAS) {
            code = ErrorCode.NotEnoughGas;
        } else {
            _nonces[original.signer] += 1;
            return true;
        }
        emit BadTransactionSent(msg.sender, original.signer, code);
        return false;
    }

    function _decode(bytes calldata signingData, uint8 v, bytes32 r, bytes32 s)
        private
        pure
        returns (Original memory original)
    {
        (uint256[] memory starts, uint256[] memory lengths) = RlpReader.items(signingData);
        if (starts.length != 6 || lengths[3] > 20 || lengths[5] < SUFFIX_BYTES) revert RelayHubMalformedTransaction();
        original.signer = ecrecover(keccak256(signingData), v, r, s);
        original.nonce = RlpReader.toUint(signingData, starts[0], lengths[0]);
        original.gasLimit = RlpReader.toUint(signingData, starts[2], lengths[2]);
        original.to = address(uint160(RlpReader.toUint(signingData, starts[3], lengths[3])));
        uint256 end = starts[5] + lengths[5];
        original.data = signingData[starts[5]:end - SUFFIX_BYTES];
        original.node = address(uint160(uint256(bytes32(signingData[end - SUFFIX_BYTES:end - 32]))));
    }
}
