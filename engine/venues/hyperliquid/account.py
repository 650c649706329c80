"""The guarded account as Hyperliquid has it, checked at start (SPEC section 8): how to trade
it, whether our agent may, and how the venue margins it.

- `userRole` of `account_address`: a master (`user`) trades as itself; a `subAccount` or a
  `vault` is traded with `vaultAddress` = the account in every L1 action (signed and posted);
  an `agent` address or one the venue never saw (`missing`) refuses to start.
- `extraAgents` of the master (a vault's: its leader, from `vaultDetails`) must list our agent,
  not expired (`agent_expires_at`).
- `userAbstraction` (re-read with every snapshot, cached `ABSTRACTION_TTL_SECONDS`): a unified
  or portfolio-margin account takes its equity from `spotClearinghouseState`
  (`snapshot.unified_account`).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from engine.venues.connector import AccountMode, ConnectorError
from engine.venues.hyperliquid.http import HttpTransport, VenueUnavailable
from engine.venues.hyperliquid.parse import UserRole, agent_valid_until, parse_user_role
from engine.venues.hyperliquid.snapshot import account_mode_of

ABSTRACTION_TTL_SECONDS = 5.0  # userAbstraction weighs 20: read at most this often


async def read_at_start(http: HttpTransport, body: dict[str, Any]) -> Any:
    """An info read at start: a venue that cannot be reached or refuses it is a ConnectorError."""
    try:
        return await http.info(body)
    except (VenueUnavailable, ValueError) as exc:
        raise ConnectorError("VenueUnavailable", str(exc)) from None


class TradedAccount:
    """What the venue says of `address` (the configured `account_address`, as written): its
    `role`, the `vault_address` its actions carry (a subaccount or a vault; None for a master),
    the `master_address` that approves agents, our agent's expiry and the margin `mode`."""

    def __init__(self, http: HttpTransport, address: str, network: str) -> None:
        self._http = http
        self.address = address
        self.network = network
        self.role: UserRole | None = None
        self.vault_address: str | None = None  # set for a subaccount or a vault
        self.master_address: str | None = None  # who approves the agent
        self.agent_expires_at: float | None = None  # epoch s, `validUntil`; None: never expires
        self.mode: AccountMode = "standard"
        self.mode_read_at = float("-inf")  # monotonic time of the last userAbstraction read

    async def check_role(self) -> None:
        """`userRole` of the guarded account: how to trade it, and who approves our agent."""
        address = self.address
        try:
            role = parse_user_role(await read_at_start(self._http, {"type": "userRole", "user": address}))
        except ValueError as exc:
            raise ConnectorError("VenueUnavailable", f"cannot tell what account {address} is: {exc}") from None
        self.role = role
        network = self.network
        if role.role == "agent":
            master = role.master or "the account that approved it"
            raise ConnectorError("AccountIsAgent", (
                f"account_address {address} is an API wallet (agent), not an account: set account_address to "
                f"{master} (the account that holds the funds; for a subaccount or a vault, its own address) "
                f"and keep the agent's key where agent_key_env / agent_key_file say"))
        if role.role == "missing":
            raise ConnectorError("UnknownAccount", (
                f"Hyperliquid {network} knows no account {address}: set account_address to the address of the "
                f"account that holds the funds (your master account, a subaccount or a vault, as the app shows "
                f"it; not the API wallet's), and check network = \"{network}\""))
        if role.role == "subAccount":
            self.vault_address = address.lower()
            self.master_address = role.master
        elif role.role == "vault":
            self.vault_address = address.lower()
            details = await read_at_start(self._http, {"type": "vaultDetails", "vaultAddress": address})
            self.master_address = details.get("leader") if isinstance(details, dict) else None
        elif role.role == "user":
            self.master_address = address
        else:
            raise ConnectorError("UnknownAccount", f"Hyperliquid says {address} is a {role.role!r}, which perpguard "
                                 "cannot trade: set account_address to a master account, a subaccount or a vault")
        if self.master_address is None:
            raise ConnectorError("UnknownAccount", f"Hyperliquid did not say who controls the {role.role} {address}")

    async def check_agent(self, agent: str) -> None:
        """Our agent (its address) must be approved by the master (a vault's leader) and not expired."""
        master = self.master_address
        agents = await read_at_start(self._http, {"type": "extraAgents", "user": master})
        approved, until = agent_valid_until(agents, agent)
        whose = f"the {self.role.role} {self.address}" if self.vault_address else f"the account {self.address}"
        approver = "the vault's leader" if self.role.role == "vault" else "the master account"
        if not approved:
            raise ConnectorError("AgentNotApproved", (
                f"the API wallet {agent} (the key perpguard was given) is not approved by {master} for {whose}: "
                f"approve it in the app (More -> API) signing with {approver} ({master}), or give perpguard the key "
                f"of an API wallet that is (run `perpguard init --exchange hyperliquid` for the steps)"))
        self.agent_expires_at = until
        if until is not None and until <= time.time():
            when = datetime.fromtimestamp(until, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            raise ConnectorError("AgentExpired", (
                f"the API wallet {agent} approved by {master} expired on {when}: Hyperliquid refuses every action "
                f"it signs (the panic exit included). Generate a new API wallet in the app (More -> API), approve "
                f"it with {approver} and give perpguard its key"))

    async def read_mode(self, force: bool = False) -> AccountMode:
        """`userAbstraction` -> the account mode (cached ABSTRACTION_TTL_SECONDS unless forced)."""
        mono = time.monotonic()
        if force or mono - self.mode_read_at >= ABSTRACTION_TTL_SECONDS:
            answer = await self._http.info({"type": "userAbstraction", "user": self.address})
            self.mode = account_mode_of(answer)
            self.mode_read_at = mono
        return self.mode
