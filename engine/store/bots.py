"""Bot identities for the Hyperliquid-compatible API (`/hl/exchange`): a name, the Ethereum
address whose signatures perpguard accepts from it, and what it may do (`trade`, `read`).

Only the address is kept. A bot signs with its own key, one Hyperliquid has never seen; perpguard
recovers the signer, looks it up here (`find_bot`), and re-signs what passes with its own agent.

    info = store.add_bot("alpha", "0xAbC...", {"trade", "read"}, actor="master")
    store.find_bot("0xabc...")   # -> BotInfo, whatever the case of the hex digits
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from engine.store.tables import BotRow

if TYPE_CHECKING:
    from engine.store.store import Store

SCOPES = frozenset({"trade", "read"})
# A bot's name is a URL path segment (`DELETE /v1/bots/{name}`), a CLI argument and a policy's
# `bot`: letters, digits, '.', '_', '-', starting with a letter or digit, 1-64 long.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"


class BotError(ValueError):
    """A bot that cannot be added: `field` names what is wrong (name, address, scopes)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class BotExists(BotError):
    """The name or the address is already registered (to the bot the message names)."""


@dataclass(frozen=True, slots=True)
class BotInfo:
    """A registered bot. `address` lower case; `created_at` epoch seconds."""

    name: str
    address: str
    scopes: frozenset[str]
    created_at: float

    def may(self, scope: str) -> bool:
        """Whether the bot holds `scope` (trade or read)."""
        return scope in self.scopes

    def as_dict(self) -> dict:
        return {"name": self.name, "address": self.address, "scopes": sorted(self.scopes),
                "created_at": self.created_at}


def checked_name(name: str) -> str:
    if not isinstance(name, str) or re.fullmatch(NAME_PATTERN, name) is None:
        raise BotError("name", f"a bot's name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or "
                               f"digit (got {str(name)[:80]!r})")
    return name


def checked_address(address: str) -> str:
    """The address in lower case, or BotError: it must be 0x and 40 hex digits."""
    if not isinstance(address, str) or re.fullmatch(ADDRESS_PATTERN, address) is None:
        raise BotError("address", f"an address is 0x and 40 hex digits (got {str(address)[:80]!r})")
    return address.lower()


def checked_scopes(scopes: set[str] | frozenset[str]) -> frozenset[str]:
    unknown = set(scopes) - SCOPES
    if unknown:
        raise BotError("scopes", f"unknown scope(s) {', '.join(sorted(unknown))}; "
                                 f"a bot's are {', '.join(sorted(SCOPES))}")
    if not scopes:
        raise BotError("scopes", f"a bot needs at least one scope of {', '.join(sorted(SCOPES))}")
    return frozenset(scopes)


def new_row(name: str, address: str, scopes: set[str] | frozenset[str], now: float | None) -> BotRow:
    """A row from checked input (BotError naming the field otherwise)."""
    return BotRow(name=checked_name(name), address=checked_address(address),
                  scopes=",".join(sorted(checked_scopes(scopes))), created_at=time.time() if now is None else now)


def bot_info(row: BotRow) -> BotInfo:
    return BotInfo(row.name, row.address, frozenset(row.scopes.split(",")), row.created_at)


class BotCache:
    """Every bot by address, read from the store at most once per `TTL` seconds, so a request
    of `/hl/exchange` costs a dict lookup. An add or a removal through this process calls
    `clear()` (seen at once); one made elsewhere (another process on the database) is seen
    within TTL. An unknown address is answered from the cache too: a flood of unregistered
    signers does not reach the database."""

    TTL = 1.0

    def __init__(self, store: Store, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self._clock = clock
        self._by_address: dict[str, BotInfo] = {}
        self._loaded_at = float("-inf")

    def find(self, address: str) -> BotInfo | None:
        now = self._clock()
        if now - self._loaded_at >= self.TTL:
            self._by_address = {bot.address: bot for bot in self.store.list_bots()}
            self._loaded_at = now
        return self._by_address.get(address.lower()) if isinstance(address, str) else None

    def clear(self) -> None:
        self._loaded_at = float("-inf")
