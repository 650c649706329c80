"""Properties of the gate (STYLE rule 7): never allow what a cap forbids, never stand in the way
of an exit, and release tiers that only grow with the order's size.

The projected figures are recomputed here from first principles (signed sizes × marks,
equity moved by the marks' PnL) rather than read back from the engine, so a wrong projection
fails these tests as surely as a wrong comparison.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from builders import MARKS, T0, make_book, make_gate, order
from engine.domain.model import Tier, TradingState, Verdict
from engine.risk.policy_file import DEFAULT_POLICY_BODIES

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
COINS = tuple(MARKS)  # BTC ETH SOL DOGE
TOL = 1e-9  # the engine lets a figure equal to its limit through, within float noise

from policy_cases import SEED_BODIES  # noqa: E402  (the six bodies of SPEC section 11, verbatim)


# ---- strategies ----------------------------------------------------------------------------

@st.composite
def accounts(draw, need: str | None = None):
    """(equity at load, {coin: signed size}, entry marks, marks now). Positions are drawn as a
    multiple of equity (−3x..3x) and marks move up to ±20% after the load, so equity stays positive."""
    equity = draw(st.floats(1_000, 2_000_000))
    entry = {c: MARKS[c] * draw(st.floats(0.5, 2.0)) for c in COINS}
    held = draw(st.lists(st.sampled_from(COINS), unique=True, max_size=4))
    if need is not None and need not in held:
        held.append(need)
    positions = {}
    for coin in held:
        lev = draw(st.floats(0.01, 3.0)) * draw(st.sampled_from((-1, 1)))
        positions[coin] = lev * equity / len(held) / entry[coin]
    now = {c: entry[c] * draw(st.floats(0.8, 1.2)) for c in COINS}
    return equity, positions, entry, now


def build(bodies, equity, positions, entry, now_marks):
    book = make_book(equity=equity, positions=positions, marks=entry)
    for coin, px in now_marks.items():
        book.set_mark(coin, px, T0)
    gate, _ = make_gate(bodies, book=book)
    return gate


def spend(gate, coin: str, usd: float, positions: dict, at: float = T0 - 10) -> None:
    """An entry of `usd` forwarded at `at` (on the side that adds to any position, so it spends)."""
    side = "buy" if positions.get(coin, 0.0) >= 0 else "sell"
    gate.note_forwarded(gate.evaluate(order(coin, side, notional_usd=usd), now=at))


def expected_equity(equity, positions, entry, now_marks) -> float:
    return equity + sum(s * (now_marks[c] - entry[c]) for c, s in positions.items())


# ---- (a) caps are never exceeded by an allowed entry ---------------------------------------

@st.composite
def cap_policies(draw):
    max_pos = draw(st.floats(1_000, 5_000_000))
    market_limits = draw(st.dictionaries(st.sampled_from(("BTC-USD", "ETH-PERP", "SOL/USD", "ALT-USD")),
                                         st.floats(500, 5_000_000), max_size=3))
    max_lev = draw(st.floats(0.5, 10))
    tiers = draw(st.dictionaries(st.sampled_from(("BTC-USD", "ETH-USD", "ALT-USD")), st.floats(0.5, 10), max_size=3))
    gross = draw(st.one_of(st.fixed_dictionaries({"maxExposure": st.floats(0.5, 6)}),
                           st.fixed_dictionaries({"maxGrossUsd": st.floats(1_000, 10_000_000)})))
    return [
        {"type": "PERP_MAX_POSITION_USD", "rules": {"maxPositionUsd": max_pos, "marketLimits": market_limits}},
        {"type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": max_lev, "leverageTiers": tiers}},
        {"type": "MAX_GROSS_EXPOSURE", "rules": gross},
    ]


def _market_value(mapping: dict, coin: str, fallback: float) -> float:
    canon = {k.replace("-USD", "").replace("-PERP", "").replace("/USD", ""): v for k, v in mapping.items()}
    return canon.get(coin, canon.get("ALT", fallback))


@SETTINGS
@given(account=accounts(), bodies=cap_policies(), coin=st.sampled_from(COINS), side=st.sampled_from(("buy", "sell")),
       share=st.floats(0.0001, 4.0), kind=st.sampled_from(("market", "limit")), offset=st.floats(-0.04, 0.04),
       reduce_only=st.booleans())
def test_an_allowed_entry_never_exceeds_a_size_leverage_or_gross_cap(account, bodies, coin, side, share, kind, offset, reduce_only):
    equity0, positions, entry, marks = account
    gate = build(bodies, *account)
    mark = marks[coin]
    size = share * equity0 / mark
    extra = {"type": "limit", "limit_px": mark * (1 + offset)} if kind == "limit" else {}
    decision = gate.evaluate(order(coin, side, size=size, reduce_only=reduce_only, **extra))

    equity = expected_equity(equity0, positions, entry, marks)
    s0 = positions.get(coin, 0.0)
    sign = 1 if side == "buy" else -1
    closing = s0 != 0 and (s0 > 0) != (sign > 0)
    if reduce_only and not closing:
        assert decision.verdict is Verdict.DENY and "REDUCE_ONLY_WOULD_INCREASE" in [r.code for r in decision.denials]
        return
    filled = min(size, abs(s0)) if reduce_only else size
    assert decision.size == pytest.approx(filled, rel=1e-12)
    s1 = s0 + sign * filled
    position = abs(s1) * mark
    gross = sum(abs(s) * marks[c] for c, s in positions.items() if c != coin) + position
    leverage = gross / equity
    reducing = closing and filled <= abs(s0)
    assert decision.reducing == reducing
    assert decision.projected.position_notional == pytest.approx(position, rel=1e-9)
    assert decision.projected.gross_notional == pytest.approx(gross, rel=1e-9)
    assert decision.projected.account_leverage == pytest.approx(leverage, rel=1e-9)

    pos_rules, lev_rules, gross_rules = (b["rules"] for b in bodies)
    pos_cap = min(_market_value(pos_rules["marketLimits"], coin, pos_rules["maxPositionUsd"]), pos_rules["maxPositionUsd"])
    lev_cap = lev_rules["maxLeverage"]
    market_cap = min(_market_value(lev_rules["leverageTiers"], coin, lev_cap), lev_cap)
    gross_cap = gross_rules["maxExposure"] * equity if "maxExposure" in gross_rules else gross_rules["maxGrossUsd"]
    within = {
        "position": position / pos_cap - 1,
        "leverage": leverage / lev_cap - 1,
        "market leverage": (position / equity) / market_cap - 1,
        "gross": gross / gross_cap - 1,
    }

    if reducing:
        # An exit passes whatever the caps, and it only ever shrinks the book.
        assert decision.verdict is Verdict.ALLOW and decision.tier is Tier.INSTANT
        assert position <= abs(s0) * mark * (1 + TOL)
        event("reducing")
        return
    if decision.verdict is Verdict.ALLOW:
        event("entry allowed")
        for name, excess in within.items():
            assert excess <= TOL, f"allowed past the {name} cap by {excess:.3g}"
    else:
        event("entry denied")
        # ... and the gate denies only for a cap actually breached (not by a hair).
        assert max(within.values()) > -1e-6, {r.code: r.message for r in decision.denials}
        assert {r.code for r in decision.denials} <= {"POSITION_LIMIT", "LEVERAGE_LIMIT", "GROSS_EXPOSURE"}


# ---- (b) exits pass every entry rule --------------------------------------------------------

ALL_RULES = [dict(b) for b in DEFAULT_POLICY_BODIES] + SEED_BODIES


@st.composite
def stressed_gates(draw):
    """A gate with the default set and the seed bodies, over an account in every kind of
    trouble: losses, drawdown, a losing streak, a spent budget, a flood of submissions, old
    marks, high funding, and any trading state but HALTED or HALTED itself."""
    coin = draw(st.sampled_from(COINS))
    account = draw(accounts(need=coin))
    gate = build(ALL_RULES, *account)
    counters = gate.counters
    if draw(st.booleans()):
        counters.on_equity(account[0] * draw(st.floats(1.0, 3.0)), T0 - 60)  # an older, higher peak
    for _ in range(draw(st.integers(0, 5))):
        counters.on_close(-draw(st.floats(1, 50_000)), T0 - 30)
    for _ in range(draw(st.integers(0, 3))):
        spend(gate, draw(st.sampled_from(COINS)), draw(st.floats(1_000, 60_000)), account[1])
    for _ in range(draw(st.sampled_from((0, 10, 120)))):
        gate.note_submission(T0 - 5)
    if draw(st.booleans()):
        gate.book.set_funding(coin, draw(st.floats(-0.04, 0.04)))
    state = draw(st.sampled_from(tuple(TradingState)))
    if state is TradingState.REDUCE_ONLY:
        gate.trading.reduce_only("loss_limit", T0)
    elif state is TradingState.HALTED:
        gate.trading.halt("kill", T0)
    now = T0 + draw(st.sampled_from((0.0, 5.0, 60.0, 3_600.0)))  # 60 s and more: every mark is stale
    return gate, coin, account, now


@SETTINGS
@given(setup=stressed_gates(), fraction=st.floats(0.01, 2.0), reduce_only=st.booleans(),
       kind=st.sampled_from(("market", "limit")), offset=st.floats(-0.5, 0.5))
def test_an_exit_is_never_denied_by_an_entry_rule(setup, fraction, reduce_only, kind, offset):
    gate, coin, account, now = setup
    position = account[1][coin]
    assume(fraction <= 1.0 or reduce_only)  # past the position only reduce-only clamps; else it is a flip
    side = "sell" if position > 0 else "buy"
    mark = gate.book.marks[coin]
    extra = {"type": "limit", "limit_px": mark * (1 + offset)} if kind == "limit" else {}
    decision = gate.evaluate(order(coin, side, size=abs(position) * fraction, reduce_only=reduce_only, **extra), now=now)

    assert decision.reducing
    assert decision.size <= abs(position) * (1 + 1e-12)
    assert decision.tier is Tier.INSTANT and decision.hold_seconds is None
    expected = set()
    if gate.trading.state is TradingState.HALTED:
        expected.add("HALTED")
    if kind == "limit" and abs(offset) > 0.05 * (1 + 1e-6):
        expected.add("PRICE_BAND")
    elif kind == "limit" and abs(offset) > 0.05 * (1 - 1e-6):
        expected = None  # on the band's edge: either answer is right
    if expected is not None:
        assert {r.code for r in decision.denials} == expected, [r.message for r in decision.denials]
        assert (decision.verdict is Verdict.ALLOW) == (not expected)
    event(f"{gate.trading.state.value} {decision.verdict.value}")


# ---- (c) the spending tier only grows with the notional ------------------------------------

_RANK = {Tier.INSTANT: 0, Tier.NOTIFY: 1, Tier.DELAY: 2, Tier.APPROVAL: 3}


def _rank(decision) -> int:
    return 4 if decision.verdict is Verdict.DENY else _RANK[decision.tier]


@st.composite
def spending_rules(draw):
    bounds = sorted(draw(st.lists(st.floats(0, 100_000), min_size=3, max_size=3)))
    rules = {name: b for name, b in zip(("instant_max_usd", "notify_max_usd", "delay_max_usd"), bounds) if draw(st.booleans())}
    rules["on_exceed"] = draw(st.sampled_from(("APPROVAL", "DENY")))
    if draw(st.booleans()):
        rules["daily_limit_usd"] = draw(st.floats(1_000, 200_000))
    return rules


@SETTINGS
@given(rules=spending_rules(), spent=st.floats(0, 100_000), a=st.floats(1, 150_000), b=st.floats(1, 150_000))
def test_the_spending_tier_is_monotone_in_notional(rules, spent, a, b):
    gate, _ = make_gate([{"type": "SPENDING_LIMIT", "rules": rules}])
    if spent:
        spend(gate, "BTC", spent, {}, at=T0 - 60)
    small, large = sorted((a, b))
    d_small = gate.evaluate(order(notional_usd=small))
    d_large = gate.evaluate(order(notional_usd=large))
    assert _rank(d_small) <= _rank(d_large), (small, d_small.tier, d_small.verdict, large, d_large.tier, d_large.verdict)

    # and each answer is the one the thresholds name
    for n, d in ((small, d_small), (large, d_large)):
        if "daily_limit_usd" in rules and spent + n > rules["daily_limit_usd"] * (1 + 1e-6):
            assert d.verdict is Verdict.DENY
            continue
        if "daily_limit_usd" in rules and spent + n > rules["daily_limit_usd"] * (1 - 1e-6):
            continue  # on the edge
        tiers = [(rules.get(k), t) for k, t in (("instant_max_usd", Tier.INSTANT), ("notify_max_usd", Tier.NOTIFY), ("delay_max_usd", Tier.DELAY))]
        named = [(lim, t) for lim, t in tiers if lim is not None]
        if any(lim is not None and abs(n - lim) <= 1e-6 * max(lim, 1) for lim, _ in named):
            continue  # on a tier's edge
        fits = [t for lim, t in named if n <= lim]
        if not named:
            want = Tier.INSTANT
        elif fits:
            want = fits[0]
        else:
            want = "DENY" if rules["on_exceed"] == "DENY" else Tier.APPROVAL
        if want == "DENY":
            assert d.verdict is Verdict.DENY
        else:
            assert d.verdict is Verdict.ALLOW and d.tier is want
