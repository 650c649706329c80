"""Bot tokens: `pg_` + random, shown once; only the sha256 is stored.

A plain sha256 (not argon2) is right here: the token is 256 random bits, so there is nothing
to brute-force, and every API request looks one up, which must stay cheap.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

from engine.store.tables import TokenRow

SCOPES = frozenset({"trade", "read", "kill"})
PREFIX = "pg_"


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What a token may do. Times epoch seconds; `expires_at` None = never."""

    id: str
    name: str
    scopes: frozenset[str]
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None

    def usable(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    def as_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "scopes": sorted(self.scopes), "created_at": self.created_at,
                "expires_at": self.expires_at, "revoked_at": self.revoked_at}


def checked_scopes(scopes: set[str] | frozenset[str]) -> frozenset[str]:
    """The scopes, if they are a non-empty subset of SCOPES; else ValueError naming the bad ones."""
    unknown = set(scopes) - SCOPES
    if unknown:
        raise ValueError(f"unknown scope(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(SCOPES))}")
    if not scopes:
        raise ValueError(f"a token needs at least one scope of {', '.join(sorted(SCOPES))}")
    return frozenset(scopes)


def new_plaintext() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def new_token_id() -> str:
    return f"tok_{uuid.uuid4().hex[:16]}"


def digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def token_info(row: TokenRow) -> TokenInfo:
    return TokenInfo(row.id, row.name, frozenset(row.scopes.split(",")), row.created_at, row.expires_at, row.revoked_at)
