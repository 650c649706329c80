"""Configuration of the Hyperliquid connector, and the one place the agent key is read.

perpguard trades through an API (agent) wallet: a key Hyperliquid lets act for the account but
never withdraw. The config names where that key lives (an environment variable or a 0600
file) and never holds the key itself, so no repr, log line or error message can show it.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Literal

from eth_account import Account
from eth_account.signers.local import LocalAccount
from hyperliquid.utils.constants import MAINNET_API_URL, TESTNET_API_URL
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.domain.coins import canonical_coin

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")

API_WALLET_HELP = """\
perpguard trades on Hyperliquid through an API wallet (an "agent"): a key that may place and
cancel orders for your account but can never withdraw or transfer your funds. Your master key
stays in your wallet; perpguard never needs it and never asks for it.

1. Open https://app.hyperliquid.xyz (testnet: https://app.hyperliquid-testnet.xyz) and connect
   the wallet that holds your trading account.
2. Go to More -> API. Give the API wallet a name (e.g. "perpguard") and click Generate.
3. Choose how many days it stays valid, click "Authorize API Wallet" and approve the agent by
   signing with your master wallet.
4. Copy the API wallet's private key now: it is shown once. This is the agent key.
5. Hand perpguard the agent key in one of two ways:
     - an environment variable:   agent_key_env = "HL_AGENT_KEY"
     - a file only you can read:  (umask 077; cat > ~/.config/perpguard/agent.key)
       then paste the key, press Enter and Ctrl-D;  agent_key_file = "~/.config/perpguard/agent.key"
       (perpguard refuses a key file that group or others can read).
6. Set account_address to the address of the account perpguard guards (the one holding the
   funds, as the app shows it), never the API wallet's address:
     - your own (master) account: its address; the API wallet is approved by it (steps 1-3).
     - a subaccount: the SUBACCOUNT's address (app: More -> Subaccounts). The API wallet is
       approved by the MASTER account that owns the subaccount (steps 1-3 with the master
       wallet connected); perpguard signs for the subaccount with its address as vaultAddress.
     - a vault you lead: the VAULT's address (app: Vaults -> your vault). The API wallet is
       approved by the vault's LEADER (the wallet that created the vault, steps 1-3 with it
       connected); perpguard trades the vault with its address as vaultAddress.
   perpguard asks Hyperliquid at start what the address is (userRole) and refuses to start
   when it is an API wallet, when Hyperliquid does not know it, or when the API wallet is not
   approved or has expired (it warns from 7 days before the expiry you chose in step 3).

Never paste your master private key or seed phrase into perpguard, a config file or a terminal.
If an agent key leaks, revoke it on the same API page and generate a new one.
"""


class AgentKeyError(ValueError):
    """The agent key cannot be used. The message says what to fix and never contains the key."""


class HyperliquidConfig(BaseModel):
    """Where and as whom the connector trades.

    `account_address` is the guarded account (the one holding the funds: a master account, a
    subaccount or a vault); the agent key signs for it. Exactly one of `agent_key_env` (an environment variable's name) or `agent_key_file` (a
    path, mode 0600) says where the agent key is. `base_url` overrides the network's API URL (the
    tests point it at a local fake server); signatures are made for `network` whatever the URL.
    `stale_after_seconds`: market data silent this long marks the feed stale (the gate then fails
    closed). `markets`: coins whose mark and funding are streamed (`activeAssetCtx`) besides
    the ones the account holds a position in.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    network: Literal["testnet", "mainnet"] = "testnet"
    account_address: str
    agent_key_env: str | None = None
    agent_key_file: Path | None = None
    base_url: str | None = None
    stale_after_seconds: float = Field(default=5.0, gt=0, allow_inf_nan=False)
    markets: tuple[str, ...] = ()
    request_timeout_seconds: float = Field(default=10.0, gt=0, allow_inf_nan=False)

    @field_validator("account_address")
    @classmethod
    def _address(cls, value: str) -> str:
        if not _ADDRESS.match(value):
            raise ValueError("account_address must be 0x followed by 40 hex digits (the guarded account's address)")
        return value

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("markets")
    @classmethod
    def _coins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(canonical_coin(c) for c in value)

    @model_validator(mode="after")
    def _one_key_source(self) -> HyperliquidConfig:
        if (self.agent_key_env is None) == (self.agent_key_file is None):
            raise ValueError("give exactly one of agent_key_env or agent_key_file")
        return self

    @property
    def mainnet(self) -> bool:
        return self.network == "mainnet"

    @property
    def api_url(self) -> str:
        return self.base_url or (MAINNET_API_URL if self.mainnet else TESTNET_API_URL)

    @property
    def ws_url(self) -> str:
        return "ws" + self.api_url[len("http"):] + "/ws"

    def load_agent(self) -> LocalAccount:
        """The agent wallet, from the environment variable or the key file.

        Refuses a key file that group or others may read, and the account's own (master) key.
        """
        if self.agent_key_env is not None:
            key = os.environ.get(self.agent_key_env, "").strip()
            if not key:
                raise AgentKeyError(f"environment variable {self.agent_key_env} is not set or empty "
                                    "(it should hold the API wallet's private key)")
            where = f"environment variable {self.agent_key_env}"
        else:
            path = self.agent_key_file.expanduser()
            try:
                mode = path.stat().st_mode
            except OSError as exc:
                raise AgentKeyError(f"cannot read agent key file {path}: {exc.strerror}") from None
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise AgentKeyError(f"agent key file {path} is accessible by group or others "
                                    f"(mode {stat.S_IMODE(mode):04o}); run: chmod 600 {path}")
            try:
                key = path.read_text().strip()
            except OSError as exc:
                raise AgentKeyError(f"cannot read agent key file {path}: {exc.strerror}") from None
            where = f"agent key file {path}"
        try:
            agent = Account.from_key(key)
        except Exception:  # the library's message may quote the input: say nothing of it
            raise AgentKeyError(f"{where} does not hold a valid private key (expected 64 hex digits)") from None
        if agent.address.lower() == self.account_address.lower():
            raise AgentKeyError(f"{where} holds the account's own (master) key: create an API wallet "
                                "and use its key instead; perpguard never needs the master key")
        return agent
