"""What the engine shows the world: one typed picture of its state (`engine.api.state.EngineState`:
`GET /v1/state`, the stream's snapshots, the console). Read-only: it never changes the engine.

`breakers` turns the policies that count something (losses, drawdown, the losing streak, the
rate limit, the spend windows, the margin buffer) into usage rows a trader can read at a
glance: what is used, against what limit, whether it has tripped, and the cooldown left.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.api.state import (
    AccountView, BreakerRow, DeadManView, EngineState, FlatteningView, OrderRow, PendingRow, PositionRow,
    StopCause, VenueStopView,
)
from engine.venues.connector import DEAD_MAN_DAILY_FIRES
from engine.domain.model import Position
from engine.live.pending import PendingAction
from engine.risk.counters import DAY
from engine.domain.model import MarginMode
from engine.risk.policies.buffer import MinMarginBuffer
from engine.risk.policies.flow import RateLimit
from engine.risk.policies.losses import CircuitBreaker, LossLimit, MaxDrawdown
from engine.risk.policies.spending import SpendingLimit
from engine.risk.trading_state import LATCHED
from engine.live.venue_watch import refused

if TYPE_CHECKING:
    from engine.live.engine import Engine


def engine_state(engine: Engine) -> EngineState:
    book, now = engine.book, engine.clock.now()
    equity = book.equity
    mark_times = [book.mark_times[p.coin] for p in book.positions() if p.coin in book.mark_times]
    feed_age = now - min(mark_times) if mark_times else (now - max(book.mark_times.values()) if book.mark_times else None)
    rules = engine.protection.buffer_rules
    build = EngineState.model_construct  # the engine's own figures: no validation on the hot path
    return build(
        time=now,
        trading_state=engine.trading.state,
        causes=tuple(
            StopCause.model_construct(cause=cause, until=until if until is not None and until != LATCHED else None,
                                      latched=until == LATCHED)
            for cause, until in engine.trading.causes.items()
        ),
        halt_cause=engine.trading.halt_cause,
        account=AccountView.model_construct(
            address=engine.connector.account_address,
            equity=equity,
            maintenance_margin=book.maintenance_margin,
            margin_buffer=book.margin_buffer,
            account_leverage=book.account_leverage,
            peak_equity=engine.counters.peak_equity,
            warn_buffer=rules.warnBuffer if rules else None,
            panic_buffer=rules.panicBuffer if rules else None,
            target_buffer=rules.targetBuffer if rules else None,
            mode=engine.venue_watch.account_mode,
        ),
        positions=tuple(position_row(engine, p) for p in book.positions()),
        open_orders=tuple(
            OrderRow.model_construct(oid=o.oid, coin=o.coin, side=o.side, size=o.size, limit_px=o.limit_px,
                                     reduce_only=o.reduce_only)
            for o in book.open_orders.values()
        ),
        breakers=tuple(breakers(engine, now)),
        pending=tuple(pending_row(a) for a in engine.pending.open_actions()),
        feed_age_seconds=feed_age,
        feed_stale=book.feed_stale_since is not None,
        liquidated=engine.liquidated,
        dead_man=dead_man_view(engine),
        agent_expires_at=engine.venue_watch.agent_expires_at,
        flattening=flattening_view(engine),
    )


def flattening_view(engine: Engine) -> FlatteningView | None:
    """The panic exit still flattening the account, or None."""
    protection = engine.protection
    record = protection.flattening
    if record is None:
        return None
    return FlatteningView.model_construct(attempt=protection.flatten_attempt, since=record.since, cause=record.cause,
                                          positions=len(engine.book.positions()),
                                          next_attempt_at=protection.next_attempt_at)


def dead_man_view(engine: Engine) -> DeadManView:
    status = engine.venue_watch.dead_man
    return DeadManView.model_construct(armed=status.armed, until=status.until, reason=status.reason,
                                       fired_today=status.fired_today, daily_cap=DEAD_MAN_DAILY_FIRES,
                                       refused=refused(status))


def pending_row(action: PendingAction) -> PendingRow:
    return PendingRow.model_construct(**action.as_dict())


def position_row(engine: Engine, pos: Position) -> PositionRow:
    book = engine.book
    notional, _mm, iso = book.leg_figures(pos.coin)
    mark = book.marks.get(pos.coin)
    backing = iso if pos.margin_mode is MarginMode.ISOLATED else book.cross_account_value
    upnl = pos.size * (mark - pos.entry_px) if mark is not None else pos.unrealized_pnl
    stop = engine.venue_stops.stop_of(pos.coin)
    return PositionRow.model_construct(
        coin=pos.coin,
        side="long" if pos.size > 0 else "short",
        size=pos.size,
        entry_px=pos.entry_px,
        mark_px=mark,
        notional=notional if mark is not None else None,
        leverage=notional / backing if mark is not None and backing else None,
        margin_mode=pos.margin_mode.value,
        unrealized_pnl=upnl,
        liquidation_px=book.liquidation_px(pos.coin),
        distance=book.distance(pos.coin),
        venue_stop=VenueStopView.model_construct(trigger_px=stop.trigger_px, oid=stop.oid) if stop else None,
        unprotected=stop is None and engine.venue_stops.needs_stop(pos.coin),
    )


def _row(policy, name: str, used: float | None, limit: float | None, tripped: bool, cooldown: float = 0.0,
         unit: str = "") -> BreakerRow:
    if policy.bot is not None:  # a bot's own rule: named for it (`alpha orders per minute`)
        name = f"{policy.bot} {name}"
    return BreakerRow.model_construct(policy_id=policy.id, type=policy.type, name=name, used=used, limit=limit,
                                      unit=unit, tripped=tripped, cooldown_seconds=cooldown)


def breakers(engine: Engine, now: float) -> list[BreakerRow]:
    """Usage of every counting rule, plus the buffer, in policy order; last, the venue's dead-man
    switch when it is refused or has fired today (its fires against the venue's daily cap)."""
    book, counters, causes = engine.book, engine.counters, engine.trading.causes
    rows: list[BreakerRow] = []
    for policy in engine.gate.policies:
        if not policy.enabled:
            continue
        r = policy.rules
        if isinstance(policy, MinMarginBuffer):
            buffer = book.margin_buffer
            rows.append(_row(policy, "margin buffer", buffer, r.warnBuffer, "margin_buffer" in causes, unit="ratio"))
        elif isinstance(policy, LossLimit):
            for period, limit, loss in policy.losses(book.equity, counters):
                if loss is not None:
                    cause = f"loss_limit:{period}"
                    rows.append(_row(policy, f"{period} loss", max(0.0, loss), limit, cause in causes or loss >= limit,
                                     _left(causes.get(cause), now), "USD"))
        elif isinstance(policy, MaxDrawdown):
            dd = policy.drawdown(book.equity, counters.peak_equity)
            rows.append(_row(policy, "drawdown", dd, r.maxDrawdown, "max_drawdown" in causes or policy.breached(dd),
                             unit="ratio"))
        elif isinstance(policy, CircuitBreaker):
            left = policy.cooldown_left(counters, now)
            rows.append(_row(policy, "losing streak", counters.consecutive_losses, r.maxConsecutiveLosses, left > 0, left))
        elif isinstance(policy, RateLimit):
            used = counters.window(policy.metric("submissions"), r.seconds).total(now)
            rows.append(_row(policy, f"orders per {r.period}", used, r.maxTransactions, used >= r.maxTransactions))
        elif isinstance(policy, SpendingLimit) and r.daily_limit_usd is not None:
            used = counters.window(policy.metric("spend"), DAY).total(now)
            rows.append(_row(policy, "daily spend", used, r.daily_limit_usd, used >= r.daily_limit_usd, unit="USD"))
    dead_man = engine.venue_watch.dead_man
    if refused(dead_man) or dead_man.fired_today:  # only when the venue has something to say: the trader acts on it
        rows.append(BreakerRow.model_construct(policy_id="venue", type="DEAD_MAN", name="dead-man fires",
                                               used=dead_man.fired_today, limit=DEAD_MAN_DAILY_FIRES, unit="",
                                               tripped=refused(dead_man), cooldown_seconds=0.0))
    return rows


def _left(until: float | None, now: float) -> float:
    return max(0.0, until - now) if until is not None and until != LATCHED else 0.0
