"""`perpguard report`: an offline audit of a `clearinghouseState` snapshot.

Per position: computed liquidation price, distance, margin buffer, leverage, and which
policies would stop adding to it now. The venue's `liquidationPx` is never used.
"""

from __future__ import annotations

from engine.risk.book import Book
from engine.domain.clock import ManualClock
from engine.risk.counters import RiskCounters
from engine.risk.gate import RiskGate
from engine.domain.margin import margin_buffer
from engine.domain.model import MarginMode, MarketInfo, OrderIntent
from engine.risk.policies import Policy
from engine.risk.policies.buffer import MinMarginBuffer
from engine.risk.policies.base import fmt
from engine.venues.connector import VenueSnapshot


def build_report(state: VenueSnapshot, policies: list[Policy], markets: dict[str, MarketInfo] | None = None) -> dict:
    book = state.book(markets)
    equity = book.equity
    at = state.time or 0.0
    counters = RiskCounters()
    counters.on_equity(equity, at)  # the snapshot is the start of every period: no loss yet
    judging = [p for p in policies if p.enabled and p.judges_state]
    gate = RiskGate(judging, book, counters, ManualClock(at))
    cross_buffer = _cross_buffer(book)
    positions = []
    for pos in state.positions:
        coin = pos.coin
        notional, mm, iso = book.leg_figures(coin)
        mark = book.marks.get(coin)
        backing = iso if pos.margin_mode is MarginMode.ISOLATED else book.cross_account_value
        buffer = book.isolated_buffer(coin) if pos.margin_mode is MarginMode.ISOLATED else cross_buffer
        # Which rules would stop the trader adding to this position now: a nominal add.
        probe = OrderIntent(market=coin, side="buy" if pos.size > 0 else "sell", size=abs(pos.size) * 1e-9)
        fired = [r.as_dict() for r in gate.evaluate(probe).reasons if r.effect == "DENY"]
        positions.append({
            "coin": coin,
            "side": pos.side,
            "size": pos.size,
            "entry_px": pos.entry_px,
            "mark_px": mark,
            "notional": notional if mark is not None else None,
            "margin_mode": pos.margin_mode.value,
            "leverage": notional / backing if mark is not None and backing else None,
            "leverage_setting": pos.leverage,
            "unrealized_pnl": pos.unrealized_pnl,
            "maintenance_margin": mm,
            "liquidation_px": book.liquidation_px(coin),
            "distance": book.distance(coin),
            "margin_buffer": buffer,
            "policies_fired": fired,
        })
    thresholds = next((p.rules for p in policies if p.enabled and isinstance(p, MinMarginBuffer)), None)
    buffer = book.margin_buffer
    return {
        "time": state.time,
        "account": {
            "equity": equity,
            "account_value": equity,
            "cross_account_value": book.cross_account_value,
            "withdrawable": state.account.withdrawable,
            "maintenance_margin": book.maintenance_margin,
            "cross_maintenance_margin": book.cross_maintenance_margin,
            "venue_cross_maintenance_margin": state.venue_cross_maintenance,
            "margin_buffer": buffer,
            "cross_margin_buffer": cross_buffer,
            "gross_notional": book.gross_notional if book.all_priced else None,
            "account_leverage": book.account_leverage,
            "de_risk": _de_risk(buffer, thresholds),
        },
        "positions": positions,
        "unknown": list(state.unknown),
    }


def _cross_buffer(book: Book) -> float | None:
    value, mm = book.cross_account_value, book.cross_maintenance_margin
    if value is None or mm is None:
        return None
    return margin_buffer(value, mm)


def _de_risk(buffer: float | None, rules) -> str:
    """What the de-risk controller would do at this buffer."""
    if rules is None:
        return "no MIN_MARGIN_BUFFER policy"
    if buffer is None:
        return "unknown (maintenance margin cannot be computed)"
    if buffer < rules.panicBuffer:
        return f"PANIC EXIT (buffer below panic {fmt(rules.panicBuffer)})"
    if buffer < rules.warnBuffer:
        return f"REDUCE_ONLY and reduce toward {fmt(rules.targetBuffer)} (buffer below warn {fmt(rules.warnBuffer)})"
    if buffer < rules.minBuffer:
        return f"no new risk (buffer below min {fmt(rules.minBuffer)})"
    return "ok"


def _pct(value: float | None) -> str:
    return "unknown" if value is None else f"{value * 100:.2f}%"


def _lev(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.2f}x"


def _usd(value: float | None) -> str:
    return "unknown" if value is None else f"{value:,.2f}"


def render_report(report: dict) -> str:
    a = report["account"]
    lines = [
        f"Account value {_usd(a['equity'])} USD   maintenance {_usd(a['maintenance_margin'])}   "
        f"margin buffer {_pct(a['margin_buffer'])}   leverage {_lev(a['account_leverage'])}",
        f"De-risk: {a['de_risk']}",
        "",
        f"{'market':<8}{'side':<6}{'size':>12}{'entry':>12}{'mark':>12}{'notional':>14}{'lev':>9}{'liq px':>14}{'distance':>10}{'buffer':>9}",
    ]
    for p in report["positions"]:
        liq = "none" if p["liquidation_px"] is None and p["maintenance_margin"] is not None else (
            "unknown" if p["liquidation_px"] is None else f"{p['liquidation_px']:.6g}")
        lines.append(
            f"{p['coin']:<8}{p['side']:<6}{p['size']:>12g}{p['entry_px']:>12g}{(p['mark_px'] or 0):>12.6g}"
            f"{_usd(p['notional']):>14}{_lev(p['leverage']):>9}{liq:>14}{_pct(p['distance']):>10}{_pct(p['margin_buffer']):>9}")
        for r in p["policies_fired"]:
            lines.append(f"    ! {r['type']}: {r['message']}")
    if not report["positions"]:
        lines.append("(no open positions)")
    if report["unknown"]:
        lines.append("")
        lines.append("Not in the snapshot (reported as unknown): " + ", ".join(report["unknown"]))
    return "\n".join(lines)
