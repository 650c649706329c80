"""The risk gate: one synchronous function every order passes (`RiskGate.evaluate`).

Every enabled policy is evaluated (no first-match-wins); any DENY denies; the tier is the
highest asked for. Reducing orders are never delayed and pass entry rules. The trading state
denies new risk at once (REDUCE_ONLY) or everything (HALTED).

A policy scoped to a bot (`Policy.bot`) judges only that bot's orders (`OrderIntent.bot`); a
bot's orders pass the account's policies and its own. Each bot's set is compiled when the
policies are set, so an order costs one dict lookup to find its set, never a filter.

Evaluation is pure: it changes nothing. The engine records what it forwarded
(`note_submission`, `note_forwarded`) so the rolling budgets count it: the account's, and the
bot's own where a policy of that bot counts them.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from engine.risk.book import Book
from engine.domain.clock import Clock
from engine.risk.counters import RiskCounters
from engine.domain.model import Decision, MarginMode, OrderIntent, Projected, Reason, Tier, TradingState, Verdict
from engine.risk.policies import Policy
from engine.risk.policies.base import bot_metric
from engine.risk.policies.compiled import compile_clear
from engine.risk.policies.market_data import PriceBand
from engine.risk.projection import Projection
from engine.risk.trading_state import TradingStateMachine

# Slippage cap for market orders (sent as IOC limits at mark ± cap) when no PRICE_BAND is set.
DEFAULT_SLIPPAGE = 0.05
_GATE = "gate"
# Enum members read once: looking one up costs ~90 ns in CPython 3.11, on a path of a few µs.
_ACTIVE, _INSTANT, _ALLOW, _DENY = TradingState.ACTIVE, Tier.INSTANT, Verdict.ALLOW, Verdict.DENY


class PolicySet(NamedTuple):
    """The enabled policies one order is judged by (the account's, or the account's and one
    bot's), their compiled fast check, the market-order slippage cap they give, and PRICE_BAND's
    cap on an IOC limit's price (None without a PRICE_BAND)."""

    policies: tuple[Policy, ...]
    clear: Callable[[Projection], bool]
    slippage: float
    band: float | None


class RiskGate:
    def __init__(self, policies: list[Policy], book: Book, counters: RiskCounters, clock: Clock,
                 trading: TradingStateMachine | None = None, default_slippage: float = DEFAULT_SLIPPAGE) -> None:
        self.book = book
        self.counters = counters
        self.clock = clock
        self.trading = trading or TradingStateMachine()
        self.default_slippage = default_slippage
        self.set_policies(policies)

    def set_policies(self, policies: list[Policy]) -> None:
        self.policies = list(policies)
        active = tuple(p for p in self.policies if p.enabled)
        for policy in active:
            for metric, seconds in policy.windows():
                self.counters.window(metric, seconds)
        self.counters.vol_lookback_minutes = max((p.vol_lookback_minutes() for p in active), default=0)
        self.account_set = self._policy_set(tuple(p for p in active if p.bot is None))
        bots = dict.fromkeys(p.bot for p in active if p.bot is not None)  # in the policies' order
        self.bot_sets: dict[str, PolicySet] = {
            bot: self._policy_set(tuple(p for p in active if p.bot is None or p.bot == bot)) for bot in bots}
        # Bots whose own policies count orders: only their orders are counted a second time.
        self._counted_bots = frozenset(p.bot for p in active if p.bot is not None and p.windows())
        self.slippage = self.account_set.slippage

    def _policy_set(self, policies: tuple[Policy, ...]) -> PolicySet:
        bands = [p.rules.maxDeviation for p in policies if isinstance(p, PriceBand)]
        band = min(bands) if bands else None
        slippage = band if band is not None else self.default_slippage
        return PolicySet(policies, compile_clear(policies, self.counters), slippage, band)

    def evaluate(self, intent: OrderIntent, now: float | None = None) -> Decision:
        """The decision for one intent against the state of this moment. Changes nothing."""
        now = self.clock.now() if now is None else now
        state = self.trading.state
        policies, clear, slippage, band = self.bot_sets.get(intent.bot, self.account_set)
        p = Projection(intent, self.book, self.counters, state, now)
        wrong_margin = self._needs_isolated(p)
        bracket = self.bracket_problems(p) if intent.stop_loss is not None or intent.take_profit is not None else ()
        if (state is _ACTIVE and not p.reducing and not p.would_increase_reduce_only and not wrong_margin
                and not bracket and self.book.feed_stale_since is None and clear(p)):
            # The common case: an entry no rule has anything to say about (one compiled check).
            return self._decision(p, now, (), False, _INSTANT, None, slippage, band)
        reasons: list[Reason] = []
        if state is TradingState.HALTED:
            reasons.append(Reason(_GATE, "TRADING_STATE", "HALTED",
                                  "Trading is HALTED (kill switch): nothing but the engine's own flattening; resume needs the master password"))
        elif state is TradingState.REDUCE_ONLY and not p.reducing:
            reasons.append(Reason(_GATE, "TRADING_STATE", "REDUCE_ONLY",
                                  f"Trading is REDUCE_ONLY ({', '.join(self.trading.causes) or 'stopped'}): only orders that reduce a position pass"))
        if self.book.feed_stale_since is not None and not p.reducing:
            reasons.append(Reason(_GATE, "MARKET_DATA", "DATA_UNAVAILABLE",
                                  "The venue's market feed is stale: new risk is denied until it is restored and reconciled",
                                  None, None, "DENY"))
        if wrong_margin:
            reasons.append(Reason(_GATE, "ORDER", "ISOLATED_ONLY",
                                  f"{p.coin} is isolated-only on the venue: send the entry with "
                                  f'margin_mode "isolated" (and its leverage)'))
        reasons.extend(bracket)
        if p.would_increase_reduce_only:
            # the venue's own words first: clients (ccxt) know them for an order that cannot pass
            reasons.append(Reason(_GATE, "ORDER", "REDUCE_ONLY_WOULD_INCREASE",
                                  f"Reduce only order would increase position. (a reduce-only {intent.side} on "
                                  f"{p.coin}, position {p.s0:g})"))
        for policy in policies:
            reason = policy.evaluate(p)
            if reason is not None:
                reasons.append(reason)

        denied = False
        tier, hold = Tier.INSTANT, None
        for r in reasons:
            if r.effect == "DENY":
                denied = True
            elif r.tier is not None and r.tier.rank >= tier.rank:
                if r.tier is not tier:
                    hold = None
                tier = r.tier
                if r.hold_seconds is not None:
                    hold = r.hold_seconds if hold is None else max(hold, r.hold_seconds)
        if p.reducing:
            tier, hold = Tier.INSTANT, None
        return self._decision(p, now, tuple(reasons), denied, tier, hold, slippage, band)

    def bracket_problems(self, p: Projection) -> tuple[Reason, ...]:
        """An entry's `stop_loss` / `take_profit` become reduce-only children resting on the venue
        (Hyperliquid's normalTpsl): a child on the wrong side of the entry or the mark would fire
        at once, so it is a VALIDATION error naming the field; a stop that the liquidation
        would beat is denied (STOP_BEYOND_LIQUIDATION) with both prices."""
        if p.reducing:
            return ()
        intent, sign, problems = p.intent, p.sign, []
        for field, px, below in (("stop_loss", intent.stop_loss, True), ("take_profit", intent.take_profit, False)):
            if px is None:
                continue
            # a buy's stop sits below the entry and the mark, its take-profit above; a sell's the other way
            want_below = below == (sign > 0)
            for what, ref in (("entry", p.px), ("mark", p.mark)):
                if ref is not None and (px >= ref if want_below else px <= ref):
                    side = "below" if want_below else "above"
                    problems.append(Reason(_GATE, "ORDER", "VALIDATION",
                                           f"{field} {px:g} must be {side} the {intent.side}'s {what} {ref:g}: "
                                           f"it would fire at once", ref, px, field=field))
                    break
        liq = p.liquidation_px
        stop = intent.stop_loss
        if stop is not None and liq is not None and (stop <= liq if sign > 0 else stop >= liq):
            problems.append(Reason(_GATE, "ORDER", "STOP_BEYOND_LIQUIDATION",
                                   f"stop_loss {stop:g} is beyond the projected liquidation price {liq:,.6g}: the venue "
                                   f"would liquidate the position before the stop fires", liq, stop, field="stop_loss"))
        return tuple(problems)

    def _needs_isolated(self, p: Projection) -> bool:
        """An entry on an isolated-only market (`onlyIsolated`, HIP-3 dexes) that would open cross
        margin: the venue refuses it, so the gate says why first."""
        info = self.book.markets.get(p.coin)
        if info is None or not info.only_isolated or p.reducing or p.intent.margin_mode == "isolated":
            return False
        leg = self.book.leg(p.coin)
        return leg is None or leg.position.margin_mode is not MarginMode.ISOLATED

    def _decision(self, p: Projection, now: float, reasons: tuple[Reason, ...], denied: bool, tier: Tier,
                  hold: float | None, slippage: float, band: float | None) -> Decision:
        intent = p.intent
        px = p.px
        if p.mark is not None:
            if intent.type == "market":
                px = p.mark * (1.0 + p.sign * slippage)
            elif band is not None and intent.tif == "Ioc":  # its worst price, capped by the band
                cap = p.mark * (1.0 + p.sign * band)
                px = min(px, cap) if p.sign > 0 else max(px, cap)
        projected = Projected._make((p.s1, p.position_notional, p.gross, p.equity, p.account_leverage,
                                     p.market_leverage, p.margin_buffer, p.liquidation_px, p.distance))
        return Decision._make((_DENY if denied else _ALLOW, tier, reasons, projected, intent, p.coin, p.size, px,
                               p.notional, p.reducing, now, hold))

    # ---- what the engine records ----------------------------------------------------------

    def note_submission(self, at: float, bot: str | None = None) -> None:
        """Every non-dry-run submission counts toward RATE_LIMIT, denied or not (a bot's, toward
        its own RATE_LIMIT too)."""
        self.counters.record("submissions", at)
        if bot is not None and bot in self._counted_bots:
            self.counters.record(bot_metric("submissions", bot), at)

    def note_forwarded(self, decision: Decision) -> None:
        """An entry was sent to the venue: it spends the rolling budgets (a bot's, its own too)."""
        if decision.reducing or decision.notional is None:
            return
        intent = decision.intent
        metrics = ("spend", f"spend:{intent.category}")
        if intent.bot is not None and intent.bot in self._counted_bots:
            metrics += tuple(bot_metric(m, intent.bot) for m in metrics)
        for metric in metrics:
            self.counters.record(metric, decision.at, decision.notional)
