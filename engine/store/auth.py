"""Who may do what (SPEC sections 9 and 12): the master password and bot-token scopes.

The master password is kept only as an argon2id hash (setting `master_password_hash`).
Checking it costs tens of milliseconds of CPU by design, so it runs in a worker thread and
the engine loop keeps ticking. A wrong guess is answered only after a penalty that doubles
with each consecutive failure up to a cap; the penalty is served by the failing caller alone,
after its check and holding nothing, so a wrong guess never holds up the trader's right
password by more than its own verification. A correct password resets the count.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from typing import Awaitable, Callable

from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError

from engine.store import SCOPES, Store, TokenInfo

MASTER_HASH_KEY = "master_password_hash"
MIN_PASSWORD_LENGTH = 8

_hasher = PasswordHasher()  # argon2id, the library's recommended parameters


def set_master_password(store: Store, password: str) -> None:
    """Hash and store a new master password (replacing any old one). ValueError if too short."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ValueError(f"master password must be at least {MIN_PASSWORD_LENGTH} characters "
                         f"(got {len(password or '')})")
    store.set_setting(MASTER_HASH_KEY, _hasher.hash(password))


def has_master_password(store: Store) -> bool:
    return store.get_setting(MASTER_HASH_KEY) is not None


def has_scope(info: TokenInfo | None, scope: str) -> bool:
    """True if the (already found, so valid) token carries `scope` (trade, read or kill)."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; known: {', '.join(sorted(SCOPES))}")
    return info is not None and scope in info.scopes


class MasterGuard:
    """Checks master-password attempts.

    Each attempt is verified as it comes, one argon2 run at a time (`_lane`: a burst of guesses
    costs one core, not the machine, and never the worker threads the venue connector signs
    with). The lane is held only while verifying. A wrong attempt is then held back by its own
    caller's penalty: the n-th consecutive failure waits `base_delay * 2**(n-1)` seconds (capped
    at `max_delay`) before it is answered, so a guesser taking turns gets one guess per penalty,
    while the right password waits at most for the verifications already queued, one each,
    never for anyone's penalty. Parallel guessers are bounded by argon2's cost through the lane.
    `sleep` is injectable for tests."""

    def __init__(self, store: Store, base_delay: float = 0.5, max_delay: float = 8.0,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self.store = store
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.failures = 0
        self._sleep = sleep
        self._lane = asyncio.Semaphore(1)
        self._key = secrets.token_bytes(32)
        self._known: tuple[str | None, bytes] | None = None

    def penalty(self, failures: int | None = None) -> float:
        """Seconds a wrong attempt is held after its check, at `failures` consecutive failures
        counting itself (default: what the next wrong attempt would be held)."""
        n = self.failures + 1 if failures is None else failures
        if n <= 0:
            return 0.0
        return min(self.base_delay * 2 ** min(n - 1, 30), self.max_delay)  # bounded exponent: no overflow

    async def check(self, password: str | None) -> bool:
        """True if `password` is the master password. False if not, or if none is set (fail
        closed), after the penalty. A store error propagates (the caller refuses the request).

        The password that last passed is remembered as a keyed digest (HMAC with a key that
        lives only in this process) with the stored hash it passed against, so a console or
        script sending it on every call is answered at once instead of costing an argon2 run
        each time; a changed master password invalidates it. Wrong guesses always pay."""
        stored = self.store.get_setting(MASTER_HASH_KEY)
        if password and self._known is not None and self._known[0] == stored and hmac.compare_digest(
                self._known[1], self._digest(password)):
            return True
        async with self._lane:  # held for the verification only, never while anyone sleeps
            ok = await asyncio.to_thread(self._verify, password or "")
        if ok:
            self.failures = 0
            self._known = (stored, self._digest(password))
            return True
        self.failures += 1
        await self._sleep(self.penalty(self.failures))
        return False

    def _digest(self, password: str) -> bytes:
        return hmac.new(self._key, password.encode(), hashlib.sha256).digest()

    def _verify(self, password: str) -> bool:
        stored = self.store.get_setting(MASTER_HASH_KEY)
        if stored is None:
            return False
        try:
            return _hasher.verify(stored, password)
        except VerifyMismatchError:
            return False
