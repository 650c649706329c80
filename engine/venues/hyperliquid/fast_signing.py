"""Hyperliquid L1 action signatures, byte-identical to the SDK's `sign_l1_action`, at a
fraction of its cost.

The scheme is the SDK's (and the venue's): the action is msgpack-encoded, followed by the
nonce (8 bytes big-endian), the vault flag (0x00, or 0x01 + the vault's 20 bytes) and, when
set, 0x00 + expiresAfter (8 bytes); its keccak is the `connectionId` of a phantom agent
`Agent(string source,bytes32 connectionId)` with source "a" (mainnet) or "b" (testnet),
signed as EIP-712 typed data in the domain `Exchange`, version 1, chainId 1337, verifying
contract 0x0.

The SDK rebuilds and re-encodes that typed data with eth-account on every call and parses the
private key again for each signature (about 90% of its ~500 µs per order). Here everything
but the connectionId is constant, so the domain separator, the Agent type hash and the hash of
each source are computed once at import; a signature is three keccaks and one RFC 6979
secp256k1 signature with libsecp256k1 (coincurve), which eth-account itself signs with when
coincurve is installed: same nonce, same low-s, same bytes.

Keccak comes from safe-pysha3 (the C Keccak code of CPython's hashlib behind a hashlib-style
object, ~1 µs a hash); pycryptodome's `Crypto.Hash.keccak`, which eth-hash uses, spends ~7 µs a
hash in its Python wrapper, which was a third of this signature's cost.

`tests/test_hyperliquid_signing.py` proves the identity against the SDK.
"""

from __future__ import annotations

from typing import Any

import msgpack
from coincurve import PrivateKey
from sha3 import keccak_256  # safe-pysha3


def keccak256(data: bytes) -> bytes:
    """Ethereum's keccak-256 (the original padding, not hashlib's sha3_256)."""
    return keccak_256(data).digest()


_DOMAIN_TYPE = b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
_AGENT_TYPE = b"Agent(string source,bytes32 connectionId)"
L1_CHAIN_ID = 1337

# keccak(typeHash . keccak(name) . keccak(version) . uint256(chainId) . address(0) as 32 bytes)
DOMAIN_SEPARATOR = keccak256(keccak256(_DOMAIN_TYPE) + keccak256(b"Exchange") + keccak256(b"1")
                             + L1_CHAIN_ID.to_bytes(32, "big") + bytes(32))
AGENT_TYPEHASH = keccak256(_AGENT_TYPE)

# the Agent struct hash before its connectionId: typeHash . keccak(source)
_AGENT_PREFIX = {True: AGENT_TYPEHASH + keccak256(b"a"), False: AGENT_TYPEHASH + keccak256(b"b")}
_DIGEST_PREFIX = b"\x19\x01" + DOMAIN_SEPARATOR


def signing_key(key: Any) -> PrivateKey:
    """A coincurve key from a `coincurve.PrivateKey`, an eth-account `LocalAccount`, 32 raw
    bytes or a hex string (with or without 0x). Building one derives the public key (~50 µs):
    build it once and pass the result to `sign_l1_action_fast`."""
    if isinstance(key, PrivateKey):
        return key
    secret = getattr(key, "key", key)  # LocalAccount.key: HexBytes
    if isinstance(secret, str):
        secret = bytes.fromhex(secret.removeprefix("0x"))
    return PrivateKey(bytes(secret))


def action_hash(action: Any, vault_address: str | None, nonce: int, expires_after: int | None) -> bytes:
    """The action's connectionId, as the SDK's `action_hash` computes it. `nonce` and
    `expires_after` in epoch milliseconds."""
    data = msgpack.packb(action)
    data += nonce.to_bytes(8, "big")
    if vault_address is None:
        data += b"\x00"
    else:
        data += b"\x01" + bytes.fromhex(vault_address[2:] if vault_address.startswith("0x") else vault_address)
    if expires_after is not None:
        data += b"\x00" + expires_after.to_bytes(8, "big")
    return keccak256(data)


def l1_digest(connection_id: bytes, is_mainnet: bool) -> bytes:
    """The EIP-712 digest of the phantom agent for this connectionId (what gets signed)."""
    return keccak256(_DIGEST_PREFIX + keccak256(_AGENT_PREFIX[is_mainnet] + connection_id))


def sign_l1_action_fast(private_key: Any, action: Any, vault_address: str | None, nonce: int,
                        expires_after: int | None, is_mainnet: bool) -> dict[str, Any]:
    """`{"r", "s", "v"}` exactly as `hyperliquid.utils.signing.sign_l1_action` returns them for
    the same arguments (r and s as unpadded 0x-hex, v 27 or 28). `private_key` as
    `signing_key` takes it; pass a prebuilt `coincurve.PrivateKey` on a hot path. `nonce` and
    `expires_after` in epoch milliseconds."""
    key = private_key if isinstance(private_key, PrivateKey) else signing_key(private_key)
    digest = l1_digest(action_hash(action, vault_address, nonce, expires_after), is_mainnet)
    signature = key.sign_recoverable(digest, hasher=None)  # r (32) . s (32) . recovery id (1)
    return {"r": hex(int.from_bytes(signature[:32], "big")), "s": hex(int.from_bytes(signature[32:64], "big")),
            "v": 27 + signature[64]}
