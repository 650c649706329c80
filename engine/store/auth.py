"""Who may do what (SPEC sections 9 and 12): the master password and bot-token scopes.

The master password is kept only as an argon2id hash (setting `master_password_hash`).
Checking it costs tens of milliseconds of CPU by design, so it runs in a worker thread and
the engine loop keeps ticking. Wrong guesses slow every following attempt down, doubling
each time up to a cap, and attempts are taken one at a time so parallel guessing gains
nothing; a correct password resets the delay.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets

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
    """Checks master-password attempts. After n consecutive failures the next attempt waits
    `base_delay * 2**(n-1)` seconds (capped at `max_delay`) before it is even looked at."""

    def __init__(self, store: Store, base_delay: float = 0.5, max_delay: float = 8.0) -> None:
        self.store = store
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.failures = 0
        self._one_at_a_time = asyncio.Lock()
        self._key = secrets.token_bytes(32)
        self._known: tuple[str | None, bytes] | None = None

    def delay(self) -> float:
        """Seconds the next attempt will wait."""
        if self.failures == 0:
            return 0.0
        return min(self.base_delay * 2 ** min(self.failures - 1, 30), self.max_delay)  # bounded exponent: no overflow

    async def check(self, password: str | None) -> bool:
        """True if `password` is the master password. False if not, or if none is set (fail
        closed). A store error propagates (the caller refuses the request).

        The password that last passed is remembered as a keyed digest (HMAC with a key that
        lives only in this process) with the stored hash it passed against, so a console or
        script sending it on every call is answered at once instead of costing an argon2 run
        each time; a changed master password invalidates it. Wrong guesses always pay."""
        stored = self.store.get_setting(MASTER_HASH_KEY)
        if password and self._known is not None and self._known[0] == stored and hmac.compare_digest(
                self._known[1], self._digest(password)):
            return True
        async with self._one_at_a_time:
            if wait := self.delay():
                await asyncio.sleep(wait)
            ok = await asyncio.to_thread(self._verify, password or "")
            self.failures = 0 if ok else self.failures + 1
            if ok:
                self._known = (stored, self._digest(password))
            return ok

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
