"""The compiled fast check says "nothing to say" exactly when every policy's `evaluate` does.

The gate sends an entry on the compiled check alone when it is true (engine/risk/policies/compiled.py),
so a fast form that is true where its policy would deny or hold lets a bad order through. Each
policy type is checked on random books, counters and orders, with its limits drawn *at* the
order's own figures (and a hair either side of them), where a tolerance slip would show.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.gate import ALL_POLICIES
from builders import MARKETS, MARKS, T0
from engine.risk.book import Book
from engine.risk.counters import DAY, MONTH, RiskCounters
from engine.risk.gate import RiskGate
from engine.domain.clock import ManualClock
from engine.domain.margin import MarginTable
from engine.domain.model import Account, MarginMode, MarketInfo, OpenOrder, OrderIntent, Position, TradingState, Verdict
from engine.domain.margin import MarginTier
from engine.risk.policies import POLICY_TYPES, PolicyError, parse_policies, parse_policy
from engine.risk.policies.base import Policy
from engine.risk.policies.base import Rules as NoRules
from engine.risk.policies.compiled import compile_clear
from engine.risk.projection import Projection

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
TIERED = MarginTable.from_tiers([MarginTier(0.0, 20.0), MarginTier(20_000.0, 10.0), MarginTier(200_000.0, 5.0)])
ALL_MARKETS = MARKETS | {"TIER": MarketInfo("TIER", 2, TIERED)}
ALL_MARKS = MARKS | {"TIER": 250.0}
COINS = tuple(ALL_MARKETS)
RATE_SECONDS = 60.0
# At a limit, a hair either side of it, and well clear of it both ways.
FACTORS = (0.5, 1 - 2e-9, 1 - 1e-9, 1.0, 1 + 1e-9, 1 + 2e-9, 1.5)


# ---- a random account, history and order ---------------------------------------------------

@st.composite
def situations(draw):
    """(book, counters, intent, now): everything a policy reads, drawn at random."""
    now = T0 + draw(st.floats(0, 7 * DAY))
    equity = draw(st.floats(1_000, 1_000_000))
    marks = {c: ALL_MARKS[c] * draw(st.floats(0.7, 1.3)) for c in COINS}
    book = Book(ALL_MARKETS)
    positions = []
    for coin in draw(st.lists(st.sampled_from(COINS), unique=True, max_size=4)):
        size = draw(st.floats(0.05, 3.0)) * equity / marks[coin] * draw(st.sampled_from((-1, 1)))
        if draw(st.booleans()):
            positions.append(Position(coin, size, marks[coin], leverage=10))
        else:
            iso = abs(size) * marks[coin] * draw(st.floats(0.05, 1.0))
            positions.append(Position(coin, size, marks[coin], leverage=10, margin_mode=MarginMode.ISOLATED, isolated_margin=iso))
    orders = [OpenOrder(f"o{i}", "BTC", "buy", 0.01, 40_000.0) for i in range(draw(st.integers(0, 4)))]
    mark_times = {c: now - draw(st.floats(0, 30)) for c in COINS}
    book.load(Account(equity, equity, equity, now), positions, orders, marks=marks, at=now - draw(st.floats(0, 60)),
              mark_times=mark_times)
    for coin in COINS:
        if draw(st.booleans()):
            book.set_funding(coin, draw(st.floats(-0.002, 0.002)))

    counters = RiskCounters()
    counters.vol_lookback_minutes = 60
    for key in (("spend", DAY), ("spend", MONTH), ("submissions", RATE_SECONDS), ("spend:derivatives", DAY), ("spend:derivatives", MONTH)):
        counters.window(*key)
    counters.on_equity(equity * draw(st.floats(0.8, 1.25)), now - draw(st.floats(0, 6 * DAY)))
    counters.on_equity(equity * draw(st.floats(0.8, 1.25)), now - 1)
    counters.on_equity(book.equity, now)
    for _ in range(draw(st.integers(0, 6))):
        counters.on_close(draw(st.floats(-500, 200)), now - draw(st.floats(0, 7200)))
    for _ in range(draw(st.integers(0, 6))):
        at, usd = now - draw(st.floats(0, 40 * DAY)), draw(st.floats(10, 20_000))
        counters.record("spend", at, usd)
        counters.record("spend:derivatives", at, usd)
    for _ in range(draw(st.integers(0, 8))):
        counters.record("submissions", now - draw(st.floats(0, 120)))

    coin = draw(st.sampled_from(COINS + ("NEWC",)))
    mark = marks.get(coin, 10.0)
    steps = draw(st.integers(0, 70))  # minutes of history: volatility is unknown under 5 returns
    for minute in range(steps):
        counters.on_mark(coin, mark * (1 + draw(st.floats(-0.01, 0.01))), now - (steps - minute) * 60)
    order_type = draw(st.sampled_from(("market", "limit")))
    px = mark * (1 + draw(st.floats(-0.1, 0.1)))
    side = draw(st.sampled_from(("buy", "sell")))
    sign = 1 if side == "buy" else -1
    amount = {"size": draw(st.floats(0.01, 2.0)) * equity / mark} if draw(st.booleans()) else {"notional_usd": draw(st.floats(5, 2 * equity))}
    stop = draw(st.sampled_from((None, -0.02, 0.02, -0.05)))
    take = draw(st.sampled_from((None, 0.03, 0.08, -0.03)))
    intent = OrderIntent(
        market=coin, side=side, type=order_type, limit_px=px if order_type == "limit" else None, **amount,
        stop_loss=px * (1 + sign * stop) if stop is not None else None,
        take_profit=px * (1 + sign * take) if take is not None else None,
        leverage=draw(st.sampled_from((None, 2.0, 25.0))),
        category=draw(st.sampled_from(("derivatives", "swap"))))
    return book, counters, intent, now


# ---- limits drawn at the order's own figures -------------------------------------------------

def near(draw, value: float | None, low: float = 1e-6, high: float = math.inf, fallback: float = 1.0) -> float:
    """A limit at `value` (or a hair either side, or clear of it), kept inside the rule's range."""
    base = value if value is not None and math.isfinite(value) and value > 0 else fallback
    return min(max(base * draw(st.sampled_from(FACTORS)), low), high)


def maybe(draw, value):
    return value if draw(st.booleans()) else None


def rules_for(kind: str, draw, p: Projection, counters: RiskCounters, book: Book) -> dict:
    eq = book.equity
    if kind == "PERP_MAX_LEVERAGE":
        cap = {draw(st.sampled_from((p.coin, "ALT", "ETH"))): near(draw, p.market_leverage)} if draw(st.booleans()) else {}
        return {"maxLeverage": near(draw, p.account_leverage), "leverageTiers": cap,
                **({"warningLeverage": near(draw, p.market_leverage)} if draw(st.booleans()) else {})}
    if kind == "PERP_MAX_POSITION_USD":
        cap = {draw(st.sampled_from((p.coin, "ALT", "ETH"))): near(draw, p.position_notional)} if draw(st.booleans()) else {}
        return {"maxPositionUsd": near(draw, p.position_notional), "marketLimits": cap,
                **({"warningPositionUsd": near(draw, p.position_notional)} if draw(st.booleans()) else {})}
    if kind == "PERP_ALLOWED_MARKETS":
        return {"allowedMarkets": draw(st.lists(st.sampled_from(COINS + ("NEWC",)), min_size=1, max_size=3))}
    if kind == "SPENDING_LIMIT":
        tiers = sorted(near(draw, p.notional) for _ in range(3))
        names = ("instant_max_usd", "notify_max_usd", "delay_max_usd")
        spent = counters.window("spend", DAY).total(p.now) + (p.notional or 0)
        return {**{n: t for n, t in zip(names, tiers) if draw(st.booleans())},
                **({"daily_limit_usd": near(draw, spent)} if draw(st.booleans()) else {}),
                **({"monthly_limit_usd": near(draw, counters.window("spend", MONTH).total(p.now) + (p.notional or 0))} if draw(st.booleans()) else {}),
                "on_exceed": draw(st.sampled_from(("APPROVAL", "DENY")))}
    if kind == "RATE_LIMIT":
        count = int(counters.window("submissions", RATE_SECONDS).total(p.now))
        return {"maxTransactions": max(1, count + draw(st.integers(-1, 1))), "period": "minute"}
    if kind == "ACTION_CATEGORY_LIMIT":
        spent = counters.window("spend:derivatives", DAY).total(p.now) + (p.notional or 0)
        limits = {k: v for k, v in (("per_action_limit_usd", near(draw, p.notional)), ("daily_limit_usd", near(draw, spent)),
                                    ("monthly_limit_usd", near(draw, spent))) if draw(st.booleans())}
        return {"categoryLimits": {draw(st.sampled_from(("derivatives", "swap"))): limits, "lending": {"daily_limit_usd": 5.0}}}
    if kind == "MAX_GROSS_EXPOSURE":
        ratio = p.gross / eq if p.gross is not None and eq else None
        out = {k: v for k, v in (("maxGrossUsd", near(draw, p.gross)), ("maxExposure", near(draw, ratio))) if draw(st.booleans())}
        return out or {"maxExposure": near(draw, ratio)}
    if kind == "MAX_POSITION_SHARE":
        return {"maxPositionShare": near(draw, p.position_notional / eq if p.position_notional is not None and eq else None)}
    if kind == "MIN_MARGIN_BUFFER":
        return {"minBuffer": near(draw, p.margin_buffer, 0.0, 0.999), "warnBuffer": 0.2, "panicBuffer": 0.1, "targetBuffer": 0.5}
    if kind == "LOSS_LIMIT":
        def share(start):
            return near(draw, (start - eq) / start if start else None, 1e-6, 1.0, 0.05)
        out = {k: v for k, v in (("dailyLoss", share(counters.day_start_equity)), ("weeklyLoss", share(counters.week_start_equity)),
                                 ("sessionLossUsd", near(draw, counters.session_start_equity - eq, fallback=100.0))) if draw(st.booleans())}
        return (out or {"dailyLoss": 0.05}) | {"includeUnrealized": draw(st.booleans())}
    if kind == "MAX_DRAWDOWN":
        return {"maxDrawdown": near(draw, 1 - eq / counters.peak_equity, 1e-6, 0.999, 0.1)}
    if kind == "CIRCUIT_BREAKER":
        since = (p.now - counters.last_loss_at) / 60 if counters.last_loss_at is not None else None
        return {"maxConsecutiveLosses": max(1, counters.consecutive_losses + draw(st.integers(-1, 1))),
                "cooldownMinutes": near(draw, since, 0.0)}
    if kind == "REWARD_RISK":
        i = p.intent
        ratio = (p.sign * (i.take_profit - p.px) / (p.sign * (p.px - i.stop_loss))
                 if i.take_profit and i.stop_loss and p.px and p.px != i.stop_loss else None)
        return {"requireStopLoss": draw(st.booleans()), **({"minRewardRisk": near(draw, ratio)} if draw(st.booleans()) else {})}
    if kind == "RISK_PER_TRADE":
        risk = p.size * abs(p.px - p.intent.stop_loss) / eq if p.intent.stop_loss and p.px and p.size else None
        return {"maxRiskShare": near(draw, risk, 1e-6, 0.999, 0.01)}
    if kind == "STALE_DATA":
        return {"maxMarkAgeSeconds": near(draw, p.mark_age, fallback=10.0), "maxAccountAgeSeconds": near(draw, p.account_age, fallback=30.0)}
    if kind == "PRICE_BAND":
        dev = abs(p.intent.limit_px - p.mark) / p.mark if p.intent.limit_px and p.mark else None
        return {"maxDeviation": near(draw, dev, 1e-6, 0.999, 0.05)}
    if kind == "FUNDING_GUARD":
        rate = book.funding.get(p.coin)
        return {"maxHourlyFunding": near(draw, abs(rate) if rate else None, 0.0, fallback=0.0005)}
    if kind == "CONCENTRATION":
        share = p.position_notional / p.gross if p.position_notional is not None and p.gross else None
        return {"maxMarketShare": near(draw, share, 1e-6, 1.0, 0.5), "minGrossUsd": draw(st.sampled_from((0.0, near(draw, p.gross))))}
    if kind == "VOLATILITY_LEVERAGE":
        vol = counters.volatility.get(p.coin)
        realized = vol.annualized() if vol is not None else None
        target = p.market_leverage * realized if realized and p.market_leverage else None
        ceiling = maybe(draw, draw(st.sampled_from((1.0, 3.0, 50.0))))
        return {"targetVolatility": near(draw, target), "lookbackMinutes": 60, "floorLeverage": 1,
                **({"maxLeverage": ceiling} if ceiling else {})}
    if kind == "TIME_RESTRICTION":
        return {"allowedHours": {"start": draw(st.integers(0, 24)), "end": draw(st.integers(0, 24))},
                "allowedDays": draw(st.lists(st.sampled_from(("mon", "tue", "wed", "thu", "fri", "sat", "sun")), unique=True)),
                "timezone": draw(st.sampled_from(("UTC", "America/New_York", "Asia/Kolkata")))}
    if kind == "ORDER_LIMITS":
        low, high = sorted((near(draw, p.notional), near(draw, p.notional)))
        out = {k: v for k, v in (("maxOrderUsd", high), ("minOrderUsd", low)) if draw(st.booleans())}
        return out | {"maxOpenOrders": max(0, len(book.open_orders) + draw(st.integers(-1, 1)))}
    if kind == "VENUE_STOP":  # it judges no order: any rules, and the gate must still say nothing
        return {"triggerBuffer": draw(st.sampled_from((0.0, 0.15, 0.5))), "orderKind": draw(st.sampled_from(("market", "limit")))}
    raise AssertionError(f"no rules drawn for {kind}")


@st.composite
def cases(draw, kind: str):
    book, counters, intent, now = draw(situations())
    p = Projection(intent, book, counters, TradingState.ACTIVE, now)
    try:
        policy = parse_policy({"type": kind, "rules": rules_for(kind, draw, p, counters, book)}, "under-test")
    except PolicyError as exc:  # a drawn limit outside the rule's range: say so, and draw again
        raise AssertionError(f"the test drew invalid rules for {kind}: {exc}") from None
    return policy, book, counters, intent, now


# ---- the checks ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(POLICY_TYPES))
def test_fast_form_agrees_with_evaluate(kind):
    """For every entry: the compiled form is true iff `evaluate` has nothing to say."""

    @SETTINGS
    @given(cases(kind))
    def check(case):
        policy, book, counters, intent, now = case
        gate = RiskGate([policy], book, counters, ManualClock(now))
        clear = compile_clear([policy], counters)
        p = Projection(intent, book, counters, TradingState.ACTIVE, now)
        if p.reducing:
            return
        reason = policy.evaluate(p)
        assert clear(p) == (reason is None), (reason, policy.as_body())
        decision = gate.evaluate(intent)
        # the gate's own check of a bracket's children (their side, the liquidation) speaks too
        assert (decision.verdict is Verdict.ALLOW and not decision.reasons) == (reason is None and not gate.bracket_problems(p))

    check()


@SETTINGS
@given(situations())
def test_every_policy_at_once_agrees(situation):
    """All 21 types compiled together (the gate's own function) agree with asking each one."""
    book, counters, intent, now = situation
    policies = parse_policies(ALL_POLICIES)
    clear = compile_clear(policies, counters)
    p = Projection(intent, book, counters, TradingState.ACTIVE, now)
    if not p.reducing:
        assert clear(p) == all(policy.evaluate(p) is None for policy in policies)


def test_a_policy_without_a_fast_form_is_still_asked():
    """A policy type that gives no fast form falls back to its own evaluate, so it still denies."""
    class DenyAll(Policy):  # not registered: no `type` in its own class body
        Rules = NoRules

        def evaluate(self, p):
            return self.deny("NO", "denied")

    DenyAll.type = "TEST_DENY_ALL"
    book = Book(ALL_MARKETS)
    book.load(Account(10_000.0, 10_000.0, 10_000.0, T0), [], marks=dict(ALL_MARKS), at=T0)
    gate = RiskGate([DenyAll("deny", NoRules())], book, RiskCounters(), ManualClock(T0))
    decision = gate.evaluate(OrderIntent(market="BTC", side="buy", size=0.01))
    assert decision.verdict is Verdict.DENY and [r.code for r in decision.reasons] == ["NO"]


# ---- what the fast path remembers between orders ---------------------------------------------

@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 72), st.floats(-90, 90)), min_size=1, max_size=20),
       st.sampled_from(("UTC", "America/New_York", "Australia/Lord_Howe")), st.integers(0, 24), st.integers(0, 24))
def test_trading_hours_remembered_per_minute_match_the_clock(edges, zone, start, end):
    """TIME_RESTRICTION answers from the minute it last computed; across days, DST changes
    (New York; Lord Howe moves by 30 minutes) and minute edges it says what the clock says."""
    from datetime import datetime
    from zoneinfo import ZoneInfo
    policy = parse_policy({"type": "TIME_RESTRICTION", "rules": {"allowedHours": {"start": start, "end": end},
                                                                  "allowedDays": ["mon", "wed", "sat"], "timezone": zone}}, "hours")
    fresh = parse_policy(policy.as_body(), "fresh")
    t = 1_710_000_000.0  # 2024-03-09, the weekend New York moves its clocks
    for hour, delta in sorted(edges):  # walk across hour edges (where a window opens or closes) in 20 s steps
        for step in range(7):
            at = t + hour * 3600 + delta + 20 * step
            assert policy.is_open(at) == fresh._open_at(datetime.fromtimestamp(at, ZoneInfo(zone))), at


@SETTINGS
@given(st.lists(st.tuples(st.floats(0, 300), st.floats(-0.02, 0.02)), min_size=1, max_size=200))
def test_remembered_volatility_is_the_volatility_of_the_marks_so_far(steps):
    """The annualized volatility is kept between minutes; after every mark it equals the
    figure computed afresh from the same marks."""
    from engine.risk.counters import Volatility
    kept, at, px, seen = Volatility(30), T0, 100.0, []
    for dt, move in steps:
        at, px = at + dt, px * (1 + move)
        seen.append((px, at))
        kept.on_mark(px, at)
        afresh = Volatility(30)
        for mark, when in seen:
            afresh.on_mark(mark, when)
        assert kept.annualized() == afresh.annualized()
