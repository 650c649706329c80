"""What the fake venue pushes to its websocket subscribers as things happen on an account: order
updates (`orderUpdates`), fills (`userFills`, and the same rows on `userEvents`) and funding
payments (`userEvents`). The server routes each to the sessions subscribed to that user."""

from __future__ import annotations

from typing import Any, Callable

from fake_hyperliquid import wire
from fake_hyperliquid.accounts import Account

Publish = Callable[[str, "str | None", dict[str, Any]], None]  # (subscription type, user or coin, message)


class Messages:
    def __init__(self, publish: Publish) -> None:
        self._publish = publish

    def order_update(self, account: Account, order: wire.Order) -> None:
        self._publish("orderUpdates", account.address, {"channel": "orderUpdates", "data": [order.update()]})

    def add_fill(self, account: Account, row: dict[str, Any]) -> None:
        account.fills.append(row)
        self._publish("userFills", account.address,
                      {"channel": "userFills", "data": {"user": account.address, "fills": [row]}})
        self._publish("userEvents", account.address, {"channel": "user", "data": {"fills": [row]}})

    def funding(self, account: Account, payment: dict[str, Any]) -> None:
        self._publish("userEvents", account.address, {"channel": "user", "data": {"funding": payment}})
