"""How orders leave the fake venue on request: `cancel` (by oid), `cancelByCloid`, and
`scheduleCancel`, the dead man's switch that cancels every pending order of the account when
its time comes."""

from __future__ import annotations

from typing import Any, Iterable

from engine.domain.clock import Clock
from fake_hyperliquid import wire
from fake_hyperliquid.accounts import Account
from fake_hyperliquid.answers import Refusals, ok, usd
from fake_hyperliquid.orders import Orders

DAY_MS = 86_400_000
SCHEDULE_CANCEL_VOLUME = 1_000_000.0
SCHEDULE_CANCEL_PER_DAY = 10

MISSING_ORDER = "Order was never placed, already canceled, or filled."


class Cancels:
    def __init__(self, orders: Orders, clock: Clock, refusals: Refusals) -> None:
        self.orders = orders
        self.clock = clock
        self.refusals = refusals

    def _now_ms(self) -> int:
        return wire.ms(self.clock.now())

    def cancel(self, action: dict[str, Any], account: Account) -> dict[str, Any]:
        statuses = []
        for c in action["cancels"]:
            order = account.orders.get(c.get("o"))
            statuses.append(self._cancel_one(account, order, c.get("a")))
        return ok("cancel", statuses)

    def cancel_by_cloid(self, action: dict[str, Any], account: Account) -> dict[str, Any]:
        statuses = []
        for c in action["cancels"]:
            oid = account.by_cloid.get(str(c.get("cloid")))
            statuses.append(self._cancel_one(account, account.orders.get(oid) if oid else None, c.get("asset")))
        return ok("cancel", statuses)

    def _cancel_one(self, account: Account, order: wire.Order | None, asset: Any) -> Any:
        if order is None or order.status != "open" or order.asset != asset:
            return {"error": MISSING_ORDER}
        self.orders.close(account, order, "canceled")
        for oid in order.children:
            child = account.orders[oid]
            if child.status == "open":
                self.orders.close(account, child, "canceled")
        return "success"

    def schedule_cancel(self, action: dict[str, Any], account: Account) -> dict[str, Any]:
        """docs "Exchange endpoint", Schedule cancel (dead man's switch): at least 5 s ahead,
        at most 10 triggers a day (the count resets at 00:00 UTC), and only once the account has
        traded $1,000,000. What the venue does once 10 triggers fired today is not documented:
        the fake refuses to arm the switch again that day, with its own text."""
        at = action.get("time")
        if at is None:
            account.dead_man_ms = None
            return ok("default")
        if account.cum_volume < SCHEDULE_CANCEL_VOLUME:
            return self.refusals.refuse(f"Cannot set scheduled cancel time until enough volume traded. Required: "
                                        f"${SCHEDULE_CANCEL_VOLUME:.0f}. Traded: ${usd(account.cum_volume)}.")
        now = self._now_ms()
        if at < now + 5000:
            return self.refusals.refuse("Scheduled cancel time too early, must be at least 5 seconds after current "
                                        "time.")
        if self._fired_today(account) >= SCHEDULE_CANCEL_PER_DAY:
            return self.refusals.refuse(f"Scheduled cancel already triggered {SCHEDULE_CANCEL_PER_DAY} times today "
                                        f"(the count resets at 00:00 UTC).")
        account.dead_man_ms = int(at)
        return ok("default")

    def _fired_today(self, account: Account) -> int:
        day = self._now_ms() // DAY_MS
        return account.dead_man_fired if account.dead_man_day == day else 0

    def fire_due(self, accounts: Iterable[Account]) -> None:
        """The dead-man switches whose time has come: every pending order of the account goes."""
        now = self._now_ms()
        for account in accounts:
            if account.dead_man_ms is not None and now >= account.dead_man_ms:
                account.dead_man_ms = None
                day = now // DAY_MS
                account.dead_man_fired = self._fired_today(account) + 1
                account.dead_man_day = day
                for order in account.pending():  # every open order, trigger orders included
                    self.orders.close(account, order, "scheduledCancel")
