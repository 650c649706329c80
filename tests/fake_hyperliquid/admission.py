"""What the fake venue checks before it applies an `/exchange` action: who signed it (the master
or one of its unexpired agents), its nonce, the `vaultAddress` it acts on, `expiresAfter`, and
the address request budget.

`/exchange`, in the venue's order: the EIP-712 signature must recover to an agent of the master
(or the master itself) that has not expired (`extraAgents.validUntil`), else `User or API
Wallet 0x… does not exist.` (the text as hyperliquid-python-sdk #54/#133 and nomeida/hyperliquid
#112 quote it; the older answers carried an `L1 error: ` prefix, today's do not); the nonce must
be fresh: inside (now − 2 days, now + 1 day), above the lowest of the signer's `nonces_kept`
highest (20; the venue keeps 100 for large accounts), never seen — texts `Invalid nonce:
duplicate nonce N`, `Invalid nonce: nonce too low N < M`, `Invalid nonce: nonce too high N > M`
(as answered live, quoted in public SDK code); `vaultAddress` must be a subaccount or vault of
the master (`Vault not registered: 0x…`, hyperliquid-python-sdk #172); `expiresAfter` not passed.
Without `vaultAddress` the action lands on the master, as on the venue (hummingbot #7312: a
connector that forgets it trades the main account).

Address budget (docs "Rate limits", address-based): each address (a subaccount is its own)
starts with 10,000 requests plus 1 per USDC of cumulative volume; an action spends 1 per order
or cancel in it; cancels may go to min(cap + 100,000, 2 × cap). Over the cap, one request per
10 s gets through; the others get HTTP 200 with a top-level err `Too many cumulative requests
sent (N > M) for cumulative volume traded $V. Place taker orders to free up 1 request per USDC
traded.` (the venue's text, quoted from live answers in public bots).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

from engine.domain.clock import Clock
from fake_hyperliquid import wire
from fake_hyperliquid.accounts import Account
from fake_hyperliquid.answers import usd
from fake_hyperliquid.signatures import recover_signer

DAY_MS = 86_400_000
AGENT_DAYS = 90
INITIAL_REQUESTS = 10_000
THROTTLED_EVERY_MS = 10_000


@dataclass(frozen=True)
class ReceivedAction:
    """An `/exchange` action that passed the signature, nonce, vault and budget checks."""

    signer: str
    nonce: int
    action: dict[str, Any]
    expires_after: int | None
    account: str = ""  # the account it acted on


@dataclass
class Agent:
    address: str
    name: str
    valid_until: int  # epoch ms


def approved_agents(entries: list[Any], now_ms: int) -> dict[str, Agent]:
    """The master's agents by address: an address (valid 90 days from now) or an
    `(address, valid_until_epoch_ms)` pair each."""
    agents: dict[str, Agent] = {}
    for entry in entries:
        address, until = (entry, now_ms + AGENT_DAYS * DAY_MS) if isinstance(entry, str) else entry
        agents[address.lower()] = Agent(address.lower(), "perpguard", int(until))
    return agents


def request_cap(account: Account) -> int:
    return INITIAL_REQUESTS + int(account.cum_volume)


class Admission:
    def __init__(self, master: str, agents: dict[str, Agent], accounts: dict[str, Account], clock: Clock, *,
                 mainnet: bool, nonces_kept: int) -> None:
        self.master = master
        self.agents = agents
        self.accounts = accounts
        self.clock = clock
        self.mainnet = mainnet
        self.nonces_kept = nonces_kept
        self._nonces: dict[str, list[int]] = {}

    def _now_ms(self) -> int:
        return wire.ms(self.clock.now())

    def admit(self, payload: dict[str, Any]) -> tuple[ReceivedAction, Account] | str:
        """The action as received and the account it acts on; or why the venue refuses it."""
        try:
            signer = recover_signer(payload, self.mainnet)
        except (KeyError, TypeError, ValueError) as exc:
            return f"Invalid signature: {exc}"
        now = self._now_ms()
        agent = self.agents.get(signer)
        if signer != self.master and (agent is None or agent.valid_until <= now):
            return f"User or API Wallet {signer} does not exist."
        problem = self._check_nonce(signer, payload["nonce"])
        if problem:
            return problem
        vault = payload.get("vaultAddress")
        if vault is not None:
            target = self.accounts.get(str(vault).lower())
            if target is None or target.master != self.master:
                return f"Vault not registered: {str(vault).lower()}"
        else:
            target = self.accounts[self.master]
        expires = payload.get("expiresAfter")
        if expires is not None and now > expires:
            return f"Action already expired: {expires} < {now}"
        action = payload["action"]
        refusal = self._spend(target, action, now)
        if refusal:
            return refusal
        return ReceivedAction(signer, payload["nonce"], action, expires, target.address), target

    def _check_nonce(self, signer: str, nonce: int) -> str | None:
        now = self._now_ms()
        if nonce <= now - 2 * DAY_MS:
            return f"Invalid nonce: nonce too low {nonce} < {now - 2 * DAY_MS}"
        if nonce >= now + DAY_MS:
            return f"Invalid nonce: nonce too high {nonce} > {now + DAY_MS}"
        kept = self._nonces.setdefault(signer, [])
        position = bisect.bisect_left(kept, nonce)
        if position < len(kept) and kept[position] == nonce:
            return f"Invalid nonce: duplicate nonce {nonce}"
        if len(kept) >= self.nonces_kept and nonce < kept[0]:
            return f"Invalid nonce: nonce too low {nonce} < {kept[0]}"
        kept.insert(position, nonce)
        del kept[:-self.nonces_kept]
        return None

    def _spend(self, account: Account, action: dict[str, Any], now: int) -> str | None:
        """docs "Rate limits": a batch of n orders or cancels counts n against the address."""
        kind = action.get("type")
        cost = len(action.get("orders", ())) if kind == "order" else \
            len(action.get("cancels", ())) if kind in ("cancel", "cancelByCloid") else 1
        cost = max(1, cost)
        cap = request_cap(account)
        if kind in ("cancel", "cancelByCloid"):
            cap = min(cap + 100_000, 2 * cap)
        if account.requests_used + cost > cap:
            if account.last_throttled_ms is not None and now - account.last_throttled_ms < THROTTLED_EVERY_MS:
                return (f"Too many cumulative requests sent ({account.requests_used + cost} > {cap}) for cumulative "
                        f"volume traded ${usd(account.cum_volume)}. Place taker orders to free up 1 request per USDC "
                        f"traded.")
            account.last_throttled_ms = now  # the one request per 10 s an address over its cap may send
        account.requests_used += cost
        return None
