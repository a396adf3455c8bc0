// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IRelayHub} from "../src/interfaces/IRelayHub.sol";
import {RlpReader} from "./RlpReader.sol";

/// @title A TxRelay-like hub for the LACNet emulator (tests only). Our own code, written from what
/// LACNET.md and LACNet's published sources say the hub does; it copies none of them.
/// @notice The writer node (the emulator's relay front, tests/lacnet/emulator.py) calls {relayMetaTx} or
/// {deployMetaTx} with `gasLimit` = its own transaction's gas, `signingData` = the RLP of the client's six
/// unsigned fields [nonce, gasPrice, gas, to, value, data] and the client's v, r, s.
///
/// Where each behaviour comes from ("TxRelay" = LACNetNetworks/gas-management, branch test/pegasys,
/// relayhub/contracts/TxRelay.sol; "GasLimit" = GasLimit.sol and "IRelayHub" = IRelayHub.sol there):
/// - the 5-argument ABI, the ErrorCode list, the events and their fields (TxRelay, IRelayHub);
/// - the sender recovered from keccak256(signingData) and v, r, s (TxRelay `_getOriginalSender`);
/// - nonces per writer node and sender, `getNonce` answering for the calling node (TxRelay `nonces`);
/// - the order of checks: signature, nonce, destination, the hub's maximum, the node's allowance; the nonce
///   taken and `Relayed` emitted only when they all pass (TxRelay `_verifyTransaction`);
/// - the call made with the data exactly as signed, LACNet's 64-byte suffix included, and gas = the user's
///   gas + 600, only when more than the user's gas + 35,000 is left; a deployment by CREATE on the data
///   (suffix included) with what is left, when more than the user's gas + 70,000 is (TxRelay);
/// - a per-node, per-block gas allowance reset at the node's first transaction of a block, charged with
///   `gasLimit - gasleft() + 6494` after each call: a charge over what is left zeroes it, and the hub then
///   returns NotEnoughGas at once — on a refusal of relayMetaTx *before* any BadTransactionSent, so the
///   receipt (status 1) carries no hub event but GasUsedByTransaction (TxRelay, GasLimit);
/// - a refusal is never a revert: status 1 and BadTransactionSent (TxRelay).
/// Guesses and simplifications (marked "guess" below): the allowance is one number per node set by the
/// admin (GasLimit derives it from node types and recent blocks), a node over its allowance is not
/// penalized (GasLimit removes it from the account rules), `getGasLimit` answers what the node would have
/// in the current block, the destination check refuses only the `forbidden` address (GasLimit's account
/// ingress), and `getMsgSender` is cleared after the call (TxRelay leaves it set).
contract EmulatedRelayHub is IRelayHub {
    /// @notice Why the hub did not run a transaction (IRelayHub.ErrorCode, in its order).
    enum ErrorCode {
        MaxBlockGasLimit,
        BadOriginalSender,
        BadNonce,
        NotEnoughGas,
        IsNotContract,
        EmptyCode,
        InvalidSignature,
        InvalidDestination,
        OK
    }

    event Relayed(address indexed sender, address indexed from);
    event GasUsedByTransaction(address node, uint256 blockNumber, uint256 gasUsed, uint256 gasLimit, uint256 gasUsedLastBlocks);
    event ContractDeployed(address indexed relay, address indexed from, address contractDeployed);
    event BadTransactionSent(address node, address originalSender, ErrorCode errorCode);
    event TransactionRelayed(address indexed relay, address indexed from, address indexed to, bool executed, bytes output);

    /// @notice Thrown when the caller of an admin function is not the admin.
    error EmulatedRelayHubNotAdmin();
    /// @notice Thrown when the signing data is not an RLP list of six strings.
    error EmulatedRelayHubMalformedTransaction();

    /// @dev TxRelay: 6494 gas is the cost of recording the gas used, added to each charge.
    uint256 private constant _CHARGE_EXTRA = 6494;
    /// @dev TxRelay: the 64 suffix bytes cost the target up to 600 more gas.
    uint256 private constant _SUFFIX_GAS = 600;
    uint256 private constant _CALL_RESERVE = 35_000;
    uint256 private constant _CREATE_RESERVE = 70_000;

    address private immutable _admin;
    address private immutable _forbidden;
    uint256 public maxGasBlockLimit = 150_000_000; // GasLimit's initial value
    uint256 private _gasUsedLastBlocks;
    address private _msgSenderNow;

    mapping(address node => mapping(address sender => uint256)) private _nonces;
    mapping(address node => uint256) private _allowance; // guess: one number per node
    mapping(address node => uint256) private _left;
    mapping(address node => uint256) private _lastBlock;

    struct Original {
        address from;
        uint256 nonce;
        uint256 gasLimit;
        address to;
        bytes data; // as signed: LACNet's suffix included
    }

    /// @param forbidden The one destination the hub refuses (LACNet: the account rules' ingress).
    constructor(address forbidden) {
        _admin = msg.sender;
        _forbidden = forbidden;
    }

    // -- admin (the emulator's knobs) -----------------------------------------------------------------

    /// @notice Sets `node`'s gas allowance per block (0: the node may relay nothing).
    function setGasLimit(address node, uint256 perBlock) external {
        if (msg.sender != _admin) revert EmulatedRelayHubNotAdmin();
        _allowance[node] = perBlock;
        _left[node] = perBlock;
        _lastBlock[node] = block.number;
    }

    // -- what a writer node asks ----------------------------------------------------------------------

    /// @notice The next nonce this hub accepts from `from` through the calling node.
    function getNonce(address from) external view returns (uint256) {
        return _nonces[msg.sender][from];
    }

    /// @inheritdoc IRelayHub
    function getMsgSender() external view returns (address) {
        return _msgSenderNow;
    }

    /// @notice The gas the calling node may still use in this block (guess: GasLimit answers the value
    /// stored at the node's last transaction, which may be an earlier block's).
    function getGasLimit() external view returns (uint256) {
        return block.number > _lastBlock[msg.sender] ? _allowance[msg.sender] : _left[msg.sender];
    }

    // -- relaying -------------------------------------------------------------------------------------

    /// @notice Relays the client's signed call.
    function relayMetaTx(uint256 gasLimit, bytes calldata signingData, uint8 v, bytes32 r, bytes32 s)
        external
        returns (ErrorCode)
    {
        _newBlock();
        (ErrorCode code, Original memory original) = _verify(signingData, v, r, s, false);
        if (code != ErrorCode.OK) {
            // charged first: with the allowance used up, the hub returns before any BadTransactionSent
            if (!_charge(gasLimit)) return ErrorCode.NotEnoughGas;
            emit BadTransactionSent(msg.sender, original.from, code);
            return code;
        }
        if (original.to.code.length == 0) {
            emit BadTransactionSent(msg.sender, original.from, ErrorCode.IsNotContract);
        } else if (gasleft() > original.gasLimit + _CALL_RESERVE) {
            _msgSenderNow = original.from;
            (bool executed, bytes memory output) = original.to.call{gas: original.gasLimit + _SUFFIX_GAS}(original.data);
            _msgSenderNow = address(0); // guess: TxRelay leaves it set
            emit TransactionRelayed(msg.sender, original.from, original.to, executed, output);
        } else {
            emit BadTransactionSent(msg.sender, original.from, ErrorCode.NotEnoughGas);
            _charge(gasLimit);
            return ErrorCode.NotEnoughGas;
        }
        if (!_charge(gasLimit)) return ErrorCode.NotEnoughGas;
        return ErrorCode.OK;
    }

    /// @notice Relays the client's signed deployment (CREATE on the data as signed).
    function deployMetaTx(uint256 gasLimit, bytes calldata signingData, uint8 v, bytes32 r, bytes32 s)
        external
        returns (ErrorCode, address deployed)
    {
        _newBlock();
        (ErrorCode code, Original memory original) = _verify(signingData, v, r, s, true);
        if (code != ErrorCode.OK) {
            emit BadTransactionSent(msg.sender, original.from, code); // here TxRelay emits before charging
            if (!_charge(gasLimit)) return (ErrorCode.NotEnoughGas, address(0));
            return (code, address(0));
        }
        if (original.data.length == 0) {
            emit BadTransactionSent(msg.sender, original.from, ErrorCode.EmptyCode);
        } else if (gasleft() > original.gasLimit + _CREATE_RESERVE) {
            _msgSenderNow = original.from;
            bytes memory code_ = original.data;
            assembly ("memory-safe") {
                deployed := create(0, add(code_, 0x20), mload(code_))
            }
            _msgSenderNow = address(0);
            if (deployed.code.length > 0) emit ContractDeployed(msg.sender, original.from, deployed);
            // a constructor that reverted leaves no event at all (as TxRelay)
        } else {
            emit BadTransactionSent(msg.sender, original.from, ErrorCode.NotEnoughGas);
            _charge(gasLimit);
            return (ErrorCode.NotEnoughGas, address(0));
        }
        if (!_charge(gasLimit)) return (ErrorCode.NotEnoughGas, address(0));
        return (ErrorCode.OK, deployed);
    }

    // -- inside ---------------------------------------------------------------------------------------

    /// @dev The node's first transaction of a block resets its allowance.
    function _newBlock() private {
        if (block.number > _lastBlock[msg.sender]) {
            _lastBlock[msg.sender] = block.number;
            _left[msg.sender] = _allowance[msg.sender];
        }
    }

    /// @dev Charges the node for what this transaction used so far; false when that was more than was left.
    function _charge(uint256 gasLimit) private returns (bool) {
        uint256 used = gasLimit - gasleft() + _CHARGE_EXTRA;
        uint256 left = _left[msg.sender];
        left = used > left ? 0 : left - used;
        _left[msg.sender] = left;
        _gasUsedLastBlocks += used;
        emit GasUsedByTransaction(msg.sender, block.number, used, left, _gasUsedLastBlocks);
        return left != 0;
    }

    function _verify(bytes calldata signingData, uint8 v, bytes32 r, bytes32 s, bool deployment)
        private
        returns (ErrorCode, Original memory original)
    {
        original.from = _recover(keccak256(signingData), v, r, s);
        if (original.from == address(0)) return (ErrorCode.InvalidSignature, original);
        (uint256[] memory starts, uint256[] memory lengths) = RlpReader.items(signingData);
        if (starts.length != 6 || lengths[3] > 20) revert EmulatedRelayHubMalformedTransaction();
        original.nonce = RlpReader.toUint(signingData, starts[0], lengths[0]);
        original.gasLimit = RlpReader.toUint(signingData, starts[2], lengths[2]);
        if (!deployment) original.to = address(uint160(RlpReader.toUint(signingData, starts[3], lengths[3])));
        original.data = signingData[starts[5]:starts[5] + lengths[5]];
        if (original.nonce != _nonces[msg.sender][original.from]) return (ErrorCode.BadNonce, original);
        if (original.to == _forbidden && !deployment) return (ErrorCode.InvalidDestination, original);
        if (original.gasLimit > maxGasBlockLimit) return (ErrorCode.MaxBlockGasLimit, original);
        if (original.gasLimit > _left[msg.sender]) return (ErrorCode.NotEnoughGas, original);
        emit Relayed(original.from, msg.sender);
        _nonces[msg.sender][original.from] += 1;
        return (ErrorCode.OK, original);
    }

    /// @dev ecrecover with the checks a careful ECDSA library makes (v 27/28, low s); zero when invalid.
    function _recover(bytes32 digest, uint8 v, bytes32 r, bytes32 s) private pure returns (address) {
        if (v != 27 && v != 28) return address(0);
        if (uint256(s) > 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0) return address(0);
        return ecrecover(digest, v, r, s);
    }
}
