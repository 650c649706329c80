"""Hyperliquid's nonce rule, per signer (docs "Nonces and API wallets"): a nonce must lie within
(now − 2 days, now + 1 day), must not be one already used, and must be above the smallest of
the signer's 100 highest nonces once it has 100. The refusals are the venue's texts.

Across a restart: the nonces used before are not kept; instead every nonce below the moment
this book was made is refused as too low, so an action signed before a restart can never be
replayed after it (a bot's client stamps nonces with its clock: its next action passes).
"""

from __future__ import annotations

import bisect

DAY_MS = 86_400_000
KEPT = 100


class NonceBook:
    def __init__(self, now_ms: int, kept: int = KEPT) -> None:
        self.floor = now_ms  # nothing signed before this book existed
        self.kept = kept
        self._used: dict[str, list[int]] = {}

    def check(self, signer: str, nonce: int, now_ms: int) -> str | None:
        """None when `nonce` is fresh for `signer` (it is then used up), else the venue's text."""
        if nonce <= now_ms - 2 * DAY_MS:
            return f"Invalid nonce: nonce too low {nonce} < {now_ms - 2 * DAY_MS}"
        if nonce >= now_ms + DAY_MS:
            return f"Invalid nonce: nonce too high {nonce} > {now_ms + DAY_MS}"
        if nonce < self.floor:
            return f"Invalid nonce: nonce too low {nonce} < {self.floor}"
        used = self._used.setdefault(signer, [])
        at = bisect.bisect_left(used, nonce)
        if at < len(used) and used[at] == nonce:
            return f"Invalid nonce: duplicate nonce {nonce}"
        if len(used) >= self.kept and nonce < used[0]:
            return f"Invalid nonce: nonce too low {nonce} < {used[0]}"
        used.insert(at, nonce)
        del used[:-self.kept]
        return None
