"""Signed Hyperliquid actions, built and signed by the official SDK.

The SDK's `Exchange` builds each action (order wires, cancels, scheduleCancel, updateLeverage)
and signs it with EIP-712, then posts it with blocking `requests`. We keep everything but the
post: `_PayloadExchange.post` hands back the payload the SDK would have sent, and the connector
posts it with httpx on the engine loop. Signing is CPU work, so the connector calls these
methods through `asyncio.to_thread`.

The SDK decides the chain it signs for from its base URL (mainnet URL = mainnet); we give it
the real URL of the configured network whatever URL we post to, so a test server or a proxy
never changes what is signed.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from decimal import Decimal
from typing import Any

from eth_account.signers.local import LocalAccount
from hyperliquid.exchange import Exchange
from hyperliquid.utils.constants import MAINNET_API_URL, TESTNET_API_URL
from hyperliquid.utils.types import Cloid

from engine.connector import OrderRequest

_CLOID = re.compile(r"^0x[0-9a-fA-F]{32}$")


def cloid_for(client_id: str) -> str:
    """Hyperliquid's client order id (0x + 32 hex) for our `client_id`: the id itself when it is
    already one, else the first 16 bytes of its sha256. The same client_id always gives the
    same cloid, so a retry can be recognised by the venue and by `orderStatus`."""
    if _CLOID.match(client_id):
        return client_id.lower()
    return "0x" + hashlib.sha256(client_id.encode()).hexdigest()[:32]


class _PayloadExchange(Exchange):
    """The SDK's Exchange that returns the signed payload instead of posting it."""

    def post(self, url_path: str, payload: Any = None) -> Any:
        return payload


class ActionSigner:
    """Signs actions as the agent wallet. Thread-safe; nonces strictly increase."""

    def __init__(self, agent: LocalAccount, account_address: str, mainnet: bool, meta: dict[str, Any]) -> None:
        # meta and an empty spot meta are given so the SDK makes no request of its own
        self._exchange = _PayloadExchange(agent, MAINNET_API_URL if mainnet else TESTNET_API_URL,
                                          meta={"universe": meta["universe"]}, account_address=account_address,
                                          spot_meta={"universe": [], "tokens": []})
        self._lock = threading.Lock()
        self._last_nonce = 0

    @property
    def address(self) -> str:
        """The agent's address (what the venue recovers from each signature)."""
        return self._exchange.wallet.address

    def _signed(self, build, expires_after_ms: int | None = None) -> dict[str, Any]:
        """Run one SDK builder; sign again if its millisecond nonce is not above the last one
        (the venue refuses a nonce it has seen)."""
        with self._lock:
            self._exchange.set_expires_after(expires_after_ms)
            try:
                while True:
                    payload = build()
                    if payload["nonce"] > self._last_nonce:
                        self._last_nonce = payload["nonce"]
                        return payload
                    time.sleep(0.001)
            finally:
                self._exchange.set_expires_after(None)

    def order(self, order: OrderRequest, cloid: str, expires_after_ms: int | None = None) -> dict[str, Any]:
        """A limit order (size and price already on the market's increments). `expires_after_ms`:
        the venue drops the action if it arrives later (epoch ms), so a copy stuck in transit
        can never land after we gave up on it."""
        return self._signed(lambda: self._exchange.order(
            order.coin, order.side == "buy", _wire(order.size), _wire(order.limit_px),
            {"limit": {"tif": order.tif}}, reduce_only=order.reduce_only, cloid=Cloid.from_str(cloid),
        ), expires_after_ms)

    def cancel(self, orders: list[tuple[str, int]]) -> dict[str, Any]:
        """Cancel `(coin, oid)` pairs in one action."""
        return self._signed(lambda: self._exchange.bulk_cancel([{"coin": c, "oid": o} for c, o in orders]))

    def schedule_cancel(self, at_ms: int | None) -> dict[str, Any]:
        """The dead-man switch: cancel every open order at `at_ms` (epoch ms); None clears it."""
        return self._signed(lambda: self._exchange.schedule_cancel(at_ms))

    def update_leverage(self, coin: str, leverage: int, cross: bool) -> dict[str, Any]:
        return self._signed(lambda: self._exchange.update_leverage(leverage, coin, cross))


def _wire(value: Decimal) -> float:
    """The SDK takes floats and writes them with at most 8 decimals; a Decimal on the market's
    increments (at most 6 decimals) survives that exactly."""
    return float(value)
