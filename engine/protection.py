"""The engine's protection, mixed into `Engine` (same state, same loop): after every update
the breakers and the margin buffer are recomputed and acted on (SPEC section 6).

- Loss limits and drawdown stop trading (REDUCE_ONLY with their cause and when it lifts).
- buffer < warnBuffer: REDUCE_ONLY, cancel resting orders that add exposure, and send ONE
  reduce-only order toward targetBuffer, waiting for its lifecycle result before the next.
- buffer < panicBuffer: panic exit (cancel all, flatten with reduce-only IOCs from the live
  size, re-read, repeat), then HALTED (latched). The kill switch is the same, HALTED first.
- De-risk and panic act on fresh marks only; the kill switch always acts.
"""

from __future__ import annotations

import logging

from engine import connector as venue
from engine.derisk import ReduceOrder, flatten_orders, reduction_to_target
from engine.events import EngineEvent
from engine.model import TradingState
from engine.trading_state import LATCHED

log = logging.getLogger("perpguard.engine")

PANIC_ATTEMPTS = 20  # a thin book may fill only part of each IOC: keep taking the remainder
PANIC_SLIPPAGE = 0.05  # panic exits accept up to 5% from mark: getting out beats the price


class Protection:
    """Breakers, de-risk, panic exit, kill and resume. Needs the Engine's attributes."""

    def _after_update(self, now: float) -> None:
        """Recompute the buffer and the breakers after any update; act on what they say."""
        book, trading = self.book, self.trading
        equity = book.equity
        if equity is None:
            return
        self.counters.on_equity(equity, now)
        self._record(trading.tick(now))
        if trading.state is TradingState.HALTED or self._panicking:
            return
        for policy in self.drawdowns:
            dd = policy.drawdown(equity, self.counters.peak_equity)
            if policy.breached(dd):
                if policy.rules.action == "PANIC":
                    return self._start_panic(f"drawdown {dd:.1%} reached MAX_DRAWDOWN")
                self._stop("max_drawdown", now, LATCHED, f"drawdown {dd:.1%} reached MAX_DRAWDOWN {policy.rules.maxDrawdown:.0%}")
        for policy in self.loss_limits:
            breach = policy.breach(equity, self.counters)
            if isinstance(breach, tuple) and f"loss_limit:{breach[0]}" not in trading.causes:
                period = breach[0]
                until = {"daily": self.counters.next_day(now), "weekly": self.counters.next_week(now)}.get(period, LATCHED)
                self._stop(f"loss_limit:{period}", now, until, f"{period} loss {breach[2]:,.0f} USD reached LOSS_LIMIT {breach[1]:,.0f} USD")
        rules = self.buffer_rules
        buffer = book.margin_buffer
        if rules is None or buffer is None:
            return
        if buffer < rules.warnBuffer and not self._fresh(now):
            if not self._reported_stale:
                self._reported_stale = True
                self.emit("derisk_skipped", f"buffer {buffer:.1%} is below warn, but marks are older than "
                          f"{self.max_mark_age:g} s: de-risk acts on fresh data only", buffer=buffer)
            return
        self._reported_stale = False
        if buffer < rules.panicBuffer:
            return self._start_panic(f"margin buffer {buffer:.1%} below panic {rules.panicBuffer:.0%}")
        if buffer < rules.warnBuffer:
            if "margin_buffer" not in trading.causes:
                self._stop("margin_buffer", now, None, f"margin buffer {buffer:.1%} below warn {rules.warnBuffer:.0%}")
                self._spawn(self._cancel_risk_adding_orders())
            if not self._reducing:
                self._reducing = True
                self._spawn(self._reduce_once(buffer))
        elif buffer > rules.warnBuffer + rules.hysteresis and "margin_buffer" in trading.causes:
            self._record(trading.lift("margin_buffer", now))

    def _fresh(self, now: float) -> bool:
        """Every open position's mark is recent enough to act on."""
        times = self.book.mark_times
        return all(now - times.get(p.coin, float("-inf")) <= self.max_mark_age for p in self.book.positions())

    def _stop(self, cause: str, now: float, until: float | None, why: str) -> None:
        """Add a REDUCE_ONLY cause ("stop trading"), once, and say so."""
        if cause in self.trading.causes:
            return
        self._record(self.trading.reduce_only(cause, now, until))
        self.emit("breaker_tripped", f"STOP TRADING: {why}", cause=cause, until=until)

    def _record(self, change) -> None:
        if change is None:
            return
        if change.state is TradingState.HALTED:
            self._cancel_pending_risk(change.cause)
        self.emit("state_changed", f"trading {change.previous.value} -> {change.state.value}: {change.cause}",
                  previous=change.previous.value, state=change.state.value, cause=change.cause)

    async def _cancel_risk_adding_orders(self) -> None:
        for order in list(self.book.open_orders.values()):
            position = self.book.position(order.coin)
            size = position.size if position else 0.0
            adds = not order.reduce_only and (size == 0 or (size > 0) == (order.side == "buy"))
            if adds:
                await self.connector.cancel(order.coin, order.oid)
                self.emit("order_cancelled", f"cancelled resting {order.side} {order.size:g} {order.coin}: it would add exposure",
                          coin=order.coin, oid=order.oid)

    async def _reduce_once(self, buffer: float) -> None:
        """One reducing order toward targetBuffer; waits for its result, then re-checks."""
        try:
            rules = self.buffer_rules
            order = reduction_to_target(self.book, rules.targetBuffer, self.gate.slippage)
            if order is None:
                return
            self.emit("derisk_order", f"DE-RISK: buffer {buffer:.1%} < warn {rules.warnBuffer:.0%}: reduce-only "
                      f"{order.side} {order.size} {order.coin} @ {order.limit_px} toward {rules.targetBuffer:.0%}",
                      coin=order.coin, side=order.side, size=float(order.size), buffer=buffer)
            await self._send_reduce(order, "derisk")
        finally:
            self._reducing = False
        if self.book.margin_buffer is not None:
            self._after_update(self.clock.now())

    async def _send_reduce(self, order: ReduceOrder, purpose: str) -> venue.OrderAck:
        ack = await self.executor.place_reduce(order)
        filled = ack.filled_size
        kind = "reduce_filled" if filled > 0 else "reduce_failed"
        self.emit(kind, f"{purpose}: {order.side} {order.coin} {ack.status}, filled {filled:g} of {order.size}"
                  + (f" ({ack.error})" if ack.error else ""),
                  coin=order.coin, status=ack.status, filled=filled, asked=float(order.size), purpose=purpose)
        await self.resync()
        return ack

    def _start_panic(self, cause: str) -> None:
        if not self._panicking:
            self._panicking = True
            self._spawn(self._panic_exit(cause, halt_first=False))

    async def _panic_exit(self, cause: str, halt_first: bool) -> None:
        """Cancel all, close every position with reduce-only IOCs from the live size, re-read,
        repeat until flat or attempts run out; then HALTED (latched) and alert."""
        self._panicking = True
        now = self.clock.now()
        try:
            if halt_first:
                self._record(self.trading.halt(cause, now))
            else:
                self._record(self.trading.reduce_only("panic_exit", now, LATCHED))
            self.emit("panic_exit", f"PANIC EXIT: {cause}: cancelling all orders and closing every position", cause=cause)
            await self.connector.cancel_all()
            await self.resync()
            for attempt in range(1, PANIC_ATTEMPTS + 1):
                orders = flatten_orders(self.book, max(PANIC_SLIPPAGE, self.gate.slippage))
                if not orders:
                    break
                for order in orders:
                    await self._send_reduce(order, f"panic attempt {attempt}")
            flat = not self.book.positions()
            self._record(self.trading.halt(cause, self.clock.now()))
            self.emit("panic_done", f"panic exit {'complete: flat' if flat else 'INCOMPLETE: positions remain'}; trading HALTED",
                      flat=flat, positions=len(self.book.positions()))
        finally:
            self._panicking = False

    async def kill(self, cause: str = "kill switch") -> None:
        """Panic exit + HALTED, at once, whatever the buffer."""
        if self._panicking:
            self._record(self.trading.halt(cause, self.clock.now()))
            return
        await self._panic_exit(cause, halt_first=True)

    def resume(self) -> EngineEvent | None:
        """Lift HALTED and latched stops (the caller has checked the master password)."""
        change = self.trading.resume(self.clock.now())
        self._record(change)
        return self.recent[-1] if change else None
