"""Signed Hyperliquid actions: built with the official SDK's wire helpers and asset map,
signed by `fast_signing` (byte-identical to the SDK's `sign_l1_action`; ~40 µs against ~500 µs).

Each payload is what the SDK's `Exchange` would post for the same action and nonce (the
tests compare them byte for byte); the connector signs and posts on the engine loop: one
signature takes tens of microseconds, less than handing it to a thread and back would.

The chain signed for is the configured network's, whatever URL we post to, so a test server
or a proxy never changes what is signed.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from decimal import Decimal
from typing import Any

from eth_account.signers.local import LocalAccount
from hyperliquid.info import Info
from hyperliquid.utils.constants import MAINNET_API_URL, TESTNET_API_URL
from hyperliquid.utils.signing import order_request_to_order_wire, order_wires_to_order_action
from hyperliquid.utils.types import Cloid

from engine.venues.connector import Grouping, OrderRequest
from engine.venues.hyperliquid.fast_signing import sign_l1_action_fast, signing_key

_CLOID = re.compile(r"^0x[0-9a-fA-F]{32}$")


def cloid_for(client_id: str) -> str:
    """Hyperliquid's client order id (0x + 32 hex) for our `client_id`: the id itself when it is
    already one, else the first 16 bytes of its sha256. The same client_id always gives the
    same cloid, so a retry can be recognised by the venue and by `orderStatus`."""
    if _CLOID.match(client_id):
        return client_id.lower()
    return "0x" + hashlib.sha256(client_id.encode()).hexdigest()[:32]


class _AssetMap(Info):
    """The SDK's own coin -> asset map (`Info.name_to_asset`), built from answers we already
    have: the main meta, `perpDexs` and the meta of each builder-deployed (HIP-3) dex we trade,
    so it makes no request. The SDK numbers a HIP-3 dex's assets 100000 + 10000 × (its index in
    `perpDexs`) + the asset's index in that dex's universe."""

    def __init__(self, mainnet: bool, meta: dict[str, Any], perp_dexs: list[Any] | None,
                 dex_metas: dict[str, dict[str, Any]]) -> None:
        self._perp_dexs_answer = perp_dexs or [None]
        self._dex_metas = dex_metas
        super().__init__(MAINNET_API_URL if mainnet else TESTNET_API_URL, skip_ws=True,
                         meta={"universe": meta["universe"]}, spot_meta={"universe": [], "tokens": []},
                         perp_dexs=[""] + list(dex_metas) if dex_metas else None)

    def perp_dexs(self) -> Any:  # the SDK asks the venue; we answer from what was read at start
        return self._perp_dexs_answer

    def meta(self, dex: str = "") -> Any:
        return self._dex_metas[dex]


class ActionSigner:
    """Signs actions as the agent wallet for `account_address`. For a subaccount or a vault,
    `vault_address` (the account itself) goes into every L1 action's hash and body, as the
    SDK's `Exchange(..., vault_address=...)` does; for the agent's own master account it is None
    (the venue finds the master from the agent). Thread-safe; nonces strictly increase.

    `perp_dexs` (the `perpDexs` answer) and `dex_metas` (dex name -> its `meta`) add the
    builder-deployed (HIP-3) markets `dex:COIN` to the asset map."""

    def __init__(self, agent: LocalAccount, account_address: str, mainnet: bool, meta: dict[str, Any], *,
                 vault_address: str | None = None, perp_dexs: list[Any] | None = None,
                 dex_metas: dict[str, dict[str, Any]] | None = None) -> None:
        self._info = _AssetMap(mainnet, meta, perp_dexs, dex_metas or {})
        self._key = signing_key(agent)  # parsed once: the SDK parses the key for every signature
        self._address = agent.address
        self.account_address = account_address
        self.vault_address = vault_address
        self.mainnet = mainnet
        self._lock = threading.Lock()
        self._last_nonce = 0

    @property
    def address(self) -> str:
        """The agent's address (what the venue recovers from each signature)."""
        return self._address

    def _next_nonce(self) -> int:
        """Wall-clock epoch ms, or one above the last nonce when that is not below it (the venue
        refuses a nonce it has seen; it takes any within a day of its clock)."""
        with self._lock:
            self._last_nonce = max(int(time.time() * 1000), self._last_nonce + 1)
            return self._last_nonce

    def _signed(self, action: dict[str, Any], expires_after_ms: int | None = None) -> dict[str, Any]:
        """The `/exchange` payload, keys in the order the SDK's `Exchange._post_action` writes them."""
        nonce = self._next_nonce()
        signature = sign_l1_action_fast(self._key, action, self.vault_address, nonce, expires_after_ms, self.mainnet)
        return {"action": action, "nonce": nonce, "signature": signature, "vaultAddress": self.vault_address,
                "expiresAfter": expires_after_ms}

    def asset(self, coin: str) -> int:
        """The venue's asset id of a perp (`BTC` 0..., `xyz:TSLA` 110000...), from the SDK's map."""
        return self._info.name_to_asset(coin)

    def order(self, order: OrderRequest, cloid: str, expires_after_ms: int | None = None) -> dict[str, Any]:
        """One order (size and price already on the market's increments), grouping `na`: a limit
        order, or a trigger order when `order.trigger` is set. `expires_after_ms`: the venue drops
        the action if it arrives later (epoch ms), so a copy stuck in transit can never land
        after we gave up on it."""
        return self.orders([(order, cloid)], "na", expires_after_ms)

    def orders(self, orders: list[tuple[OrderRequest, str]], grouping: Grouping = "na",
               expires_after_ms: int | None = None) -> dict[str, Any]:
        """Several `(order, cloid)` in one action with this `grouping`, as the SDK's
        `Exchange.bulk_orders(order_requests, grouping=grouping)` posts them."""
        wires = [order_request_to_order_wire(self._request(order, cloid), self._info.name_to_asset(order.coin))
                 for order, cloid in orders]
        code = orders[0][0].builder  # one builder per action, as the venue takes it
        builder = {"b": code[0], "f": code[1]} if code else None
        return self._signed(order_wires_to_order_action(wires, builder, grouping), expires_after_ms)

    @staticmethod
    def _request(order: OrderRequest, cloid: str) -> dict[str, Any]:
        """The SDK's `OrderRequest` dict for our order."""
        if order.trigger is None:
            order_type: dict[str, Any] = {"limit": {"tif": order.tif}}
        else:
            order_type = {"trigger": {"triggerPx": _wire(order.trigger.trigger_px), "isMarket": order.trigger.is_market,
                                      "tpsl": order.trigger.tpsl}}
        return {"coin": order.coin, "is_buy": order.side == "buy", "sz": _wire(order.size),
                "limit_px": _wire(order.limit_px), "order_type": order_type, "reduce_only": order.reduce_only,
                "cloid": Cloid.from_str(cloid)}

    def cancel(self, orders: list[tuple[str, int]]) -> dict[str, Any]:
        """Cancel `(coin, oid)` pairs in one action."""
        return self._signed({"type": "cancel",
                             "cancels": [{"a": self._info.name_to_asset(c), "o": o} for c, o in orders]})

    def schedule_cancel(self, at_ms: int | None) -> dict[str, Any]:
        """The dead-man switch: cancel every open order at `at_ms` (epoch ms); None clears it."""
        action: dict[str, Any] = {"type": "scheduleCancel"}
        if at_ms is not None:
            action["time"] = at_ms
        return self._signed(action)

    def update_isolated_margin(self, coin: str, ntli: int) -> dict[str, Any]:
        """Move `ntli` (USD with 6 decimals; < 0 takes it out) into an isolated position's margin,
        as the SDK's `Exchange.update_isolated_margin` signs it (`isBuy` has no effect yet)."""
        return self._signed({"type": "updateIsolatedMargin", "asset": self._info.name_to_asset(coin),
                             "isBuy": True, "ntli": ntli})

    def update_leverage(self, coin: str, leverage: int, cross: bool) -> dict[str, Any]:
        return self._signed({"type": "updateLeverage", "asset": self._info.name_to_asset(coin),
                             "isCross": cross, "leverage": leverage})


def _wire(value: Decimal) -> float:
    """The SDK takes floats and writes them with at most 8 decimals; a Decimal on the market's
    increments (at most 6 decimals) survives that exactly."""
    return float(value)
