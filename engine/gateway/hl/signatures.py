"""Who signed a Hyperliquid L1 action: the signer's address recovered from its EIP-712
signature, exactly as the venue recovers it.

The signed digest is the phantom agent `Agent(source, connectionId)` of
`engine.venues.hyperliquid.fast_signing` (the same hash perpguard signs with), where `source` is
"a" on mainnet and "b" on testnet. A bot signs for whichever network its client believes it is
on: the official SDK signs as testnet at any base URL other than mainnet's (so behind perpguard
it signs "b"), ccxt signs by its sandbox option. So both sources are tried; the one that gives a
registered bot is the one the bot used, and it is recorded.

Recovery is libsecp256k1's (coincurve): one public-key recovery and three keccaks per source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from coincurve import PublicKey

from engine.venues.hyperliquid.fast_signing import action_hash, keccak256, l1_digest

SOURCES = (("testnet", False), ("mainnet", True))


class BadSignature(ValueError):
    """The payload carries no readable signature (the venue's text follows the message)."""


@dataclass(frozen=True, slots=True)
class Recovered:
    address: str  # 0x + 40 hex, lower case
    source: str  # "mainnet" (phantom agent source "a") or "testnet" ("b")


def _signature_bytes(signature: Any) -> bytes:
    """r . s . recovery id (65 bytes) from the venue's `{"r", "s", "v"}`."""
    if not isinstance(signature, dict):
        raise BadSignature("signature must be an object {r, s, v}")
    r, s, v = signature.get("r"), signature.get("s"), signature.get("v")
    if not isinstance(r, str) or not isinstance(s, str) or isinstance(v, bool) or not isinstance(v, int):
        raise BadSignature("signature needs r and s as hex strings and v as 27 or 28")
    if v not in (27, 28):
        raise BadSignature(f"signature v must be 27 or 28, not {v}")
    try:
        r_int, s_int = int(r, 16), int(s, 16)
    except ValueError:
        raise BadSignature("signature r and s must be hex") from None
    if not (0 < r_int < 2**256 and 0 < s_int < 2**256):
        raise BadSignature("signature r and s out of range")
    return r_int.to_bytes(32, "big") + s_int.to_bytes(32, "big") + bytes([v - 27])


def _address(signature: bytes, digest: bytes) -> str:
    try:
        public = PublicKey.from_signature_and_message(signature, digest, hasher=None)
    except ValueError:
        raise BadSignature("the signature recovers no key") from None
    return "0x" + keccak256(public.format(compressed=False)[1:])[-20:].hex()


def candidates(action: Any, nonce: int, signature: Any, vault_address: str | None,
               expires_after: int | None, first: str = "testnet") -> Iterator[Recovered]:
    """The address that signed, for each phantom-agent source (`first` first), recovered one at
    a time as they are asked for: a caller that finds its signer in the first stops there.
    Raises BadSignature (at once) for a signature or action that cannot be read."""
    raw = _signature_bytes(signature)
    try:
        connection = action_hash(action, vault_address, nonce, expires_after)
    except (TypeError, ValueError, OverflowError) as exc:
        raise BadSignature(f"the action cannot be hashed: {exc}") from None
    ordered = sorted(SOURCES, key=lambda source: source[0] != first)
    return (Recovered(_address(raw, l1_digest(connection, mainnet)), name) for name, mainnet in ordered)
