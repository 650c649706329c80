"""Who signed a Hyperliquid L1 action: written from the venue's documented scheme, not with the
SDK's helpers, so a test checks the SDK's signatures instead of trusting them.

The action is msgpack-encoded, followed by the nonce (8 bytes big-endian), the vault address
(0x00, or 0x01 + its 20 bytes) and, when set, 0x00 + expiresAfter (8 bytes); its keccak is the
`connectionId` of a "phantom agent" `{source: "a" (mainnet) | "b" (testnet), connectionId}`
signed as EIP-712 typed data in the domain `Exchange`, version 1, chainId 1337.
"""

from __future__ import annotations

from typing import Any

import msgpack
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

_DOMAIN = {"chainId": 1337, "name": "Exchange", "verifyingContract": "0x" + "00" * 20, "version": "1"}
_TYPES = {
    "Agent": [{"name": "source", "type": "string"}, {"name": "connectionId", "type": "bytes32"}],
    "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                     {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
}


def connection_id(action: Any, nonce: int, vault_address: str | None, expires_after: int | None) -> bytes:
    data = msgpack.packb(action) + nonce.to_bytes(8, "big")
    data += b"\x00" if vault_address is None else b"\x01" + bytes.fromhex(vault_address.removeprefix("0x"))
    if expires_after is not None:
        data += b"\x00" + expires_after.to_bytes(8, "big")
    return keccak(data)


def recover_signer(payload: dict[str, Any], mainnet: bool) -> str:
    """The address that signed this `/exchange` payload (lower case). Raises ValueError when the
    signature is malformed."""
    signature = payload["signature"]
    message = {"source": "a" if mainnet else "b",
               "connectionId": connection_id(payload["action"], payload["nonce"], payload.get("vaultAddress"),
                                             payload.get("expiresAfter"))}
    typed = encode_typed_data(full_message={"domain": _DOMAIN, "types": _TYPES, "primaryType": "Agent", "message": message})
    vrs = (signature["v"], int(signature["r"], 16), int(signature["s"], 16))
    return Account.recover_message(typed, vrs=vrs).lower()
