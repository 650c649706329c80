"""The Book: what the engine knows of the venue (account, positions, marks, resting orders,
funding), with the aggregates the gate needs kept incrementally so a check is O(1) whatever
the number of positions.

Owned and mutated by the engine loop only; everything else reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from engine.domain.margin import MarginTable, buffer_price, distance_to_liquidation, liquidation_price, margin_buffer
from engine.domain.model import Account, MarginMode, MarketInfo, OpenOrder, Position


@dataclass(slots=True)
class Leg:
    """Per-coin working figures (kept by the Book; read-only to everyone else)."""

    position: Position
    mark: float | None
    notional: float  # |size| × mark, USD (0 while the mark is unknown)
    maintenance: float | None  # USD, None when the margin table is unknown
    isolated_margin: float | None


class Book:
    def __init__(self, markets: dict[str, MarketInfo] | None = None) -> None:
        self.markets: dict[str, MarketInfo] = dict(markets or {})
        self.account: Account | None = None
        self.account_time: float | None = None
        self.loads = 0  # snapshots loaded so far: what the positions were last read with
        self.marks: dict[str, float] = {}
        self.mark_times: dict[str, float] = {}
        self.funding: dict[str, float] = {}  # hourly rate, fraction; longs pay when > 0
        self.open_orders: dict[str, OpenOrder] = {}
        self.feed_stale_since: float | None = None  # the venue said its feed went silent (FeedStale)
        self._legs: dict[str, Leg] = {}
        self._equity = 0.0
        self._cross_value = 0.0
        self.gross_notional = 0.0
        self._mm_total = 0.0
        self._mm_cross = 0.0
        self._unknown_mm = 0  # legs whose maintenance margin cannot be computed
        self._unpriced = 0  # legs without a mark

    # ---- loading -------------------------------------------------------------------------

    def load(self, account: Account, positions: list[Position] | tuple[Position, ...],
             open_orders: list[OpenOrder] | tuple[OpenOrder, ...] = (), marks: dict[str, float] | None = None,
             at: float | None = None, mark_times: dict[str, float] | None = None) -> None:
        """Replace everything with a fresh venue snapshot. `marks` are USD per coin, observed at
        `mark_times` (epoch s) when the venue says, else at the snapshot's time."""
        self.account = account
        self.account_time = at if at is not None else account.time
        self.loads += 1
        if marks:
            default_time = self.account_time if self.account_time is not None else 0.0
            for coin, px in marks.items():
                self.marks[coin] = px
                self.mark_times[coin] = (mark_times or {}).get(coin, default_time)
        self.open_orders = {o.oid: o for o in open_orders}
        self._legs = {}
        for p in positions:
            if p.size != 0:
                self._legs[p.coin] = Leg(p, None, 0.0, None, p.isolated_margin)
        self._equity = account.account_value
        self._cross_value = account.cross_account_value if account.cross_account_value is not None else account.account_value
        self._recompute()

    def note_resting(self, order: OpenOrder) -> None:
        """An order the venue just said rests (until the next snapshot replaces the list)."""
        self.open_orders[order.oid] = order

    def forget_order(self, oid: str) -> None:
        """An order the venue just said it cancelled."""
        self.open_orders.pop(oid, None)

    def _recompute(self) -> None:
        self.gross_notional = self._mm_total = self._mm_cross = 0.0
        self._unknown_mm = self._unpriced = 0
        for coin, leg in self._legs.items():
            leg.mark = self.marks.get(coin)
            self._price_leg(leg)
            self._add(leg, 1.0)

    def _price_leg(self, leg: Leg) -> None:
        if leg.mark is None:
            leg.notional, leg.maintenance = 0.0, None
            return
        leg.notional = abs(leg.position.size) * leg.mark
        table = self.margin_table(leg.position.coin)
        leg.maintenance = table.maintenance_margin(leg.notional) if table is not None else None

    def _add(self, leg: Leg, sign: float) -> None:
        self.gross_notional += sign * leg.notional
        if leg.mark is None:
            self._unpriced += int(sign)
        if leg.maintenance is None:
            self._unknown_mm += int(sign)
            return
        self._mm_total += sign * leg.maintenance
        if leg.position.margin_mode is MarginMode.CROSS:
            self._mm_cross += sign * leg.maintenance

    # ---- live updates --------------------------------------------------------------------

    def set_mark(self, coin: str, px: float, at: float) -> None:
        """A new mark (USD): moves the unrealized PnL, notional and maintenance of that coin."""
        old = self.marks.get(coin)
        self.marks[coin] = px
        self.mark_times[coin] = at
        leg = self._legs.get(coin)
        if leg is None:
            return
        if old is not None and leg.mark is not None:
            pnl = leg.position.size * (px - leg.mark)
            self._equity += pnl
            if leg.position.margin_mode is MarginMode.ISOLATED and leg.isolated_margin is not None:
                leg.isolated_margin += pnl
            else:
                self._cross_value += pnl
        self._add(leg, -1.0)
        leg.mark = px
        self._price_leg(leg)
        self._add(leg, 1.0)

    def set_marks(self, marks: Mapping[str, float], at: float) -> None:
        """Many marks (USD by coin) observed together at `at` (epoch s): the Book ends exactly as
        after `set_mark` for each in turn (same arithmetic, same order), with the per-mark
        overheads paid once. Judge the account after the whole batch, not in between."""
        self.marks.update(marks)
        self.mark_times.update(dict.fromkeys(marks, at))
        legs = self._legs
        if not legs:
            return
        markets, cross_mode = self.markets, MarginMode.CROSS
        equity, cross_value, gross = self._equity, self._cross_value, self.gross_notional
        mm_total, mm_cross, unknown, unpriced = self._mm_total, self._mm_cross, self._unknown_mm, self._unpriced
        for coin, px in marks.items():
            leg = legs.get(coin)
            if leg is None:
                continue
            position = leg.position
            cross = position.margin_mode is cross_mode
            if leg.mark is None:
                unpriced -= 1
            else:
                pnl = position.size * (px - leg.mark)
                equity += pnl
                if not cross and leg.isolated_margin is not None:
                    leg.isolated_margin += pnl
                else:
                    cross_value += pnl
            # the leg leaves the totals at its old figures and comes back at the new ones
            gross -= leg.notional
            maintenance = leg.maintenance
            if maintenance is None:
                unknown -= 1
            else:
                mm_total -= maintenance
                if cross:
                    mm_cross -= maintenance
            leg.mark = px
            notional = leg.notional = abs(position.size) * px
            info = markets.get(coin)
            table = info.margin_table if info is not None else self.margin_table(coin)
            maintenance = leg.maintenance = table.maintenance_margin(notional) if table is not None else None
            gross += notional
            if maintenance is None:
                unknown += 1
            else:
                mm_total += maintenance
                if cross:
                    mm_cross += maintenance
        self._equity, self._cross_value, self.gross_notional = equity, cross_value, gross
        self._mm_total, self._mm_cross, self._unknown_mm, self._unpriced = mm_total, mm_cross, unknown, unpriced

    def set_funding(self, coin: str, hourly_rate: float) -> None:
        self.funding[coin] = hourly_rate

    def touch_account(self, at: float) -> None:
        """The venue confirmed the account at `at` (a heartbeat or a fresh snapshot)."""
        self.account_time = at

    # ---- reading -------------------------------------------------------------------------

    def margin_table(self, coin: str) -> MarginTable | None:
        info = self.markets.get(coin)
        if info is not None:
            return info.margin_table  # type: ignore[return-value]
        leg = self._legs.get(coin)
        if leg is not None and leg.position.max_leverage:
            return MarginTable.flat(leg.position.max_leverage)
        return None

    def position(self, coin: str) -> Position | None:
        leg = self._legs.get(coin)
        return leg.position if leg else None

    def positions(self) -> list[Position]:
        return [leg.position for leg in self._legs.values()]

    def leg(self, coin: str) -> Leg | None:
        """The open position of a coin with its figures, None when flat."""
        return self._legs.get(coin)

    def leg_figures(self, coin: str) -> tuple[float, float | None, float | None]:
        """(notional USD, maintenance USD or None, isolated margin USD or None) of a coin."""
        leg = self._legs.get(coin)
        if leg is None:
            return 0.0, 0.0, None
        return leg.notional, leg.maintenance, leg.isolated_margin

    @property
    def equity(self) -> float | None:
        """Account value now (USD), None before the first snapshot."""
        return self._equity if self.account is not None else None

    @property
    def cross_account_value(self) -> float | None:
        return self._cross_value if self.account is not None else None

    @property
    def all_priced(self) -> bool:
        return self._unpriced == 0

    @property
    def maintenance_margin(self) -> float | None:
        """Total maintenance margin (USD), None when a position's table or mark is unknown."""
        return self._mm_total if self._unknown_mm == 0 else None

    @property
    def cross_maintenance_margin(self) -> float | None:
        return self._mm_cross if self._unknown_mm == 0 else None

    @property
    def margin_buffer(self) -> float | None:
        """Account margin buffer (fraction): (account value − maintenance) / account value."""
        mm = self.maintenance_margin
        if self.account is None or mm is None:
            return None
        return margin_buffer(self._equity, mm)

    def isolated_buffer(self, coin: str) -> float | None:
        leg = self._legs.get(coin)
        if leg is None or leg.isolated_margin is None or leg.maintenance is None:
            return None
        return margin_buffer(leg.isolated_margin, leg.maintenance)

    @property
    def account_leverage(self) -> float | None:
        eq = self.equity
        if eq is None or self._unpriced:
            return None
        return self.gross_notional / eq if eq > 0 else float("inf") if self.gross_notional else 0.0

    def liquidation_px(self, coin: str) -> float | None:
        """Computed liquidation price of the open position (USD), None if none or unknown."""
        leg = self._legs.get(coin)
        if leg is None or leg.mark is None or leg.maintenance is None:
            return None
        table = self.margin_table(coin)
        rate = table.maintenance_rate(leg.notional)
        if leg.position.margin_mode is MarginMode.ISOLATED:
            if leg.isolated_margin is None:
                return None
            available = leg.isolated_margin - leg.maintenance
        else:
            mm_cross = self.cross_maintenance_margin
            if mm_cross is None:
                return None
            available = self._cross_value - mm_cross
        return liquidation_price(leg.mark, leg.position.size, available, rate)

    def buffer_px(self, coin: str, buffer: float) -> float | None:
        """The price of `coin` at which the margin buffer backing its position (the account's,
        or the leg's own when isolated) would reach `buffer`; None if none or unknown."""
        leg = self._legs.get(coin)
        if leg is None or leg.mark is None or leg.maintenance is None:
            return None
        rate = self.margin_table(coin).maintenance_rate(leg.notional)
        if leg.position.margin_mode is MarginMode.ISOLATED:
            if leg.isolated_margin is None:
                return None
            value, maintenance = leg.isolated_margin, leg.maintenance
        else:
            maintenance = self.cross_maintenance_margin
            if maintenance is None or self._cross_value is None:
                return None
            value = self._cross_value
        return buffer_price(leg.mark, leg.position.size, value, maintenance, rate, buffer)

    def distance(self, coin: str) -> float | None:
        mark = self.marks.get(coin)
        return distance_to_liquidation(mark, self.liquidation_px(coin)) if mark else None
