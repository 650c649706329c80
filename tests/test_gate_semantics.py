"""The gate's own semantics (every policy evaluated, tiers, clamping, trading states, error bodies),
rules validation and policy files."""

from policy_cases import *  # noqa: F401,F403  (the shared cases, helpers and imports)

# ---- 5. gate semantics ---------------------------------------------------------------------

def test_every_policy_is_evaluated_and_each_breach_is_a_reason():
    gate, _ = make_gate([
        {"type": "PERP_MAX_POSITION_USD", "rules": {"maxPositionUsd": 10000}},
        {"type": "ORDER_LIMITS", "rules": {"maxOrderUsd": 5000}},
        {"type": "PERP_ALLOWED_MARKETS", "rules": {"allowedMarkets": ["BTC"]}},
    ])
    decision = gate.evaluate(order(size=1.0))
    assert decision.verdict is Verdict.DENY
    assert sorted(codes(decision)) == ["ORDER_TOO_LARGE", "POSITION_LIMIT"]
    assert len(decision.error_body()["error"]["details"]["reasons"]) == 2


def test_the_tier_is_the_highest_asked_for():
    gate, _ = make_gate([
        {"type": "SPENDING_LIMIT", "rules": {"instant_max_usd": 1000, "notify_max_usd": 5000, "delay_max_usd": 20000, "delay_seconds": 120}},
        {"type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": 5, "warningLeverage": 0.01}},
    ])
    notify = gate.evaluate(order(notional_usd=2_000))
    assert (notify.tier, notify.hold_seconds) == (Tier.NOTIFY, None)
    delayed = gate.evaluate(order(notional_usd=10_000))  # leverage warning asks NOTIFY, spend asks DELAY
    assert delayed.allowed and (delayed.tier, delayed.hold_seconds) == (Tier.DELAY, 120)
    approval = gate.evaluate(order(notional_usd=30_000))
    assert approval.allowed and (approval.tier, approval.hold_seconds) == (Tier.APPROVAL, 3_600)


def test_a_held_order_s_reason_names_the_tier_it_is_over():
    gate, _ = make_gate([{"type": "SPENDING_LIMIT", "rules": {"instant_max_usd": 150, "delay_max_usd": 1_000,
                                                             "delay_seconds": 20}}])  # no NOTIFY tier
    held = gate.evaluate(order(notional_usd=200))
    assert held.tier is Tier.DELAY
    (reason,) = [r for r in held.reasons if r.tier is Tier.DELAY]
    assert reason.message == "Order of 200 USD is above instant_max_usd of 150: held 20 s"


def test_a_reducing_order_is_always_instant():
    gate, _ = make_gate([SEED_BODIES[3], {"type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": 5, "warningLeverage": 0.01}}],
                        book=make_book(positions={"BTC": 1.0}))
    decision = gate.evaluate(order(side="sell", size=0.9))  # 45k: APPROVAL for an entry
    assert decision.reducing and decision.allowed
    assert (decision.tier, decision.hold_seconds) == (Tier.INSTANT, None)


@pytest.mark.parametrize("position, side, asked", [(1.5, "sell", 4.0), (-2.0, "buy", 5.0)])
def test_a_reduce_only_order_larger_than_the_position_is_clamped(position, side, asked):
    gate, _ = make_gate([{"type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": 1}}], book=make_book(positions={"BTC": position}))
    decision = gate.evaluate(order(side=side, size=asked, reduce_only=True))
    assert decision.allowed and decision.reducing
    assert decision.size == abs(position)
    assert decision.projected.position_size == 0.0
    assert decision.notional == pytest.approx(abs(position) * 50_000)


def test_a_plain_order_past_the_position_is_an_entry_on_the_other_side():
    gate, _ = make_gate([{"type": "PERP_MAX_POSITION_USD", "rules": {"maxPositionUsd": 20000}}], book=make_book(positions={"BTC": 1.0}))
    flip = gate.evaluate(order(side="sell", size=2.0))
    assert not flip.reducing and flip.size == 2.0
    assert flip.projected.position_size == pytest.approx(-1.0)
    assert the_denial(flip, "POSITION_LIMIT").value == pytest.approx(50_000)


@pytest.mark.parametrize("positions, side", [({"BTC": 1.0}, "buy"), ({"BTC": -1.0}, "sell"), ({}, "sell"), ({"ETH": 1.0}, "sell")],
                         ids=["adds-to-long", "adds-to-short", "no-position", "other-coin"])
def test_a_reduce_only_order_that_would_increase_is_denied(positions, side):
    gate, _ = make_gate([], book=make_book(positions=positions))
    decision = gate.evaluate(order(side=side, size=0.1, reduce_only=True))
    assert decision.verdict is Verdict.DENY
    assert codes(decision) == ["REDUCE_ONLY_WOULD_INCREASE"]
    assert decision.error_body()["error"]["code"] == "POLICY_DENIED"


def test_reduce_only_state_denies_entries_and_lets_exits_through():
    gate, _ = make_gate([], book=make_book(positions={"BTC": 2.0}))
    event = gate.trading.reduce_only("margin_buffer", T0)
    assert event.state is TradingState.REDUCE_ONLY
    entry = gate.evaluate(order("ETH", size=1.0))
    assert codes(entry) == ["REDUCE_ONLY"]
    assert "margin_buffer" in entry.denials[0].message
    assert entry.error_body()["error"]["code"] == "REDUCE_ONLY"
    assert codes(gate.evaluate(order(size=0.1))) == ["REDUCE_ONLY"]  # adding to the long
    exit_ = gate.evaluate(order(side="sell", size=0.5))
    assert exit_.allowed and exit_.tier is Tier.INSTANT
    oversized = gate.evaluate(order(side="sell", size=5.0))  # no flip while trading is stopped
    assert oversized.allowed and oversized.size == 2.0 and oversized.projected.position_size == 0.0
    gate.trading.lift("margin_buffer", T0 + 1)
    assert gate.evaluate(order("ETH", size=1.0)).allowed


def test_halted_denies_everything_even_exits():
    gate, _ = make_gate([], book=make_book(positions={"BTC": 2.0}))
    gate.trading.halt("kill switch", T0)
    for intent in (order(size=0.1), order(side="sell", size=1.0), order(side="sell", size=1.0, reduce_only=True)):
        decision = gate.evaluate(intent)
        assert decision.verdict is Verdict.DENY
        assert "HALTED" in codes(decision)
        assert decision.error_body()["error"]["code"] == "HALTED"
    gate.trading.resume(T0 + 1)
    assert gate.evaluate(order(size=0.1)).allowed


def test_error_body_codes():
    gate, _ = make_gate([SEED_BODIES[1], {"type": "FUNDING_GUARD", "rules": {"maxHourlyFunding": 0.001}}])
    # DOGE is not in marketLimits and there is no ALT default: the 50000 account cap applies
    breach = gate.evaluate(order("DOGE", size=600_000.0))
    body = breach.error_body()["error"]
    assert body["code"] == "POLICY_DENIED" and body["retryable"] is False and body["domain"] == "POLICY"
    assert body["message"] == "Position would exceed PERP_MAX_POSITION_USD limit of 50000 (projected 60000)"
    # the funding rate is missing too, but a breach is not retryable
    assert {r["code"] for r in body["details"]["reasons"]} == {"POSITION_LIMIT", "DATA_UNAVAILABLE"}

    only_data = gate.evaluate(order("DOGE", size=1_000.0)).error_body()["error"]
    assert only_data["code"] == "DATA_UNAVAILABLE" and only_data["retryable"] is True
    assert "funding rate of DOGE" in only_data["message"]


def test_evaluate_changes_nothing():
    gate, _ = make_gate([{"type": "RATE_LIMIT", "rules": {"maxTransactions": 1, "period": "minute"}},
                         {"type": "SPENDING_LIMIT", "rules": {"daily_limit_usd": 1000}}])
    for _ in range(5):
        assert gate.evaluate(order(notional_usd=1_000)).allowed


def test_aliases_name_the_same_market():
    gate, _ = make_gate([SEED_BODIES[1]])
    for alias in ("BTC", "BTC-USD", "BTC-PERP", "BTC/USD", "btc-usd"):
        decision = gate.evaluate(order(alias, size=0.6))
        assert decision.coin == "BTC"
        assert the_denial(decision, "POSITION_LIMIT").limit == 25_000


# ---- 6. rules validation -------------------------------------------------------------------

@pytest.mark.parametrize("body, where", [
    ({"type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": 5, "maxLevrage": 3}}, "policies[0].rules.maxLevrage"),
    ({"type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": 5}, "rule": {}}, "policies[0].rule"),
    ({"type": "ACTION_CATEGORY_LIMIT", "rules": {"categoryLimits": {"swap": {"daily_limt_usd": 1}}}},
     "policies[0].rules.categoryLimits.swap.daily_limt_usd"),
    ({"type": "PERP_ALLOWED_MARKETS", "rules": {"markets": [{"market": "BTC", "venue": "hl"}]}}, "policies[0].rules.markets[0].venue"),
])
def test_an_unknown_field_is_rejected_by_name(body, where):
    with pytest.raises(PolicyError) as err:
        parse_policies([body])
    assert err.value.field == where
    assert "unknown field" in str(err.value)


def test_a_misspelt_required_field_is_reported_by_its_misspelt_name():
    # A trader who typed maxLevrage must be told about maxLevrage (SPEC 4: "Unknown fields are
    # rejected with the field's name"), not only that maxLeverage is missing.
    with pytest.raises(PolicyError) as err:
        parse_policies([{"type": "PERP_MAX_LEVERAGE", "rules": {"maxLevrage": 5}}])
    assert err.value.field == "policies[0].rules.maxLevrage"


@pytest.mark.parametrize("body, where", [
    ({"type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": "5"}}, "policies[0].rules.maxLeverage"),
    ({"type": "RATE_LIMIT", "rules": {"maxTransactions": "100", "period": "hourly"}}, "policies[0].rules.maxTransactions"),
    ({"type": "PERP_MAX_POSITION_USD", "rules": {"maxPositionUsd": 50000, "marketLimits": {"BTC-USD": "25000"}}},
     "policies[0].rules.marketLimits.BTC-USD"),
    ({"type": "SPENDING_LIMIT", "rules": {"daily_limit_usd": "50k"}}, "policies[0].rules.daily_limit_usd"),
])
def test_a_string_where_a_number_is_expected_is_rejected(body, where):
    with pytest.raises(PolicyError) as err:
        parse_policies([body])
    assert err.value.field == where


@pytest.mark.parametrize("body, where", [
    ({"type": "PERP_MAX_LEVERAGES", "rules": {}}, "policies[0].type"),
    ({"type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": -1}}, "policies[0].rules.maxLeverage"),
    ({"type": "MIN_MARGIN_BUFFER", "rules": {**BUFFER_RULES, "panicBuffer": 0.6}}, "policies[0].rules"),
    ({"type": "RATE_LIMIT", "rules": {"maxTransactions": 5, "period": "fortnightly"}}, "policies[0].rules.period"),
    ({"type": "TIME_RESTRICTION", "rules": {"timezone": "Mars/Olympus"}}, "policies[0].rules.timezone"),
])
def test_values_a_trader_could_not_mean_are_rejected(body, where):
    with pytest.raises(PolicyError) as err:
        parse_policies([body])
    assert err.value.field == where


def test_duplicate_ids_are_rejected():
    with pytest.raises(PolicyError) as err:
        parse_policies([{"id": "a", "type": "RATE_LIMIT", "rules": {"maxTransactions": 1, "period": "minute"}},
                        {"id": "a", "type": "PRICE_BAND", "rules": {"maxDeviation": 0.05}}])
    assert err.value.field == "policies[1].id"


@pytest.mark.parametrize("line", SEED_LINES, ids=[b["type"] for b in SEED_BODIES])
def test_each_seed_body_parses_verbatim(line):
    (policy,) = parse_policies([json.loads(line)])
    assert policy.type == json.loads(line)["type"]
    assert policy.account == "<id>"
    assert policy.enabled


def test_the_seed_set_in_action():
    gate, _ = make_gate(list(SEED_BODIES), book=make_book(equity=20_000))
    # leverageTiers: BTC 3x of 20k = 60k, but the BTC position cap of 25000 is tighter
    btc = gate.evaluate(order("BTC-USD", size=0.6))
    assert sorted(codes(btc)) == ["POSITION_LIMIT"]
    assert the_denial(btc, "POSITION_LIMIT").limit == 25_000
    # ETH: 4x of 20k = 80k and a 15000 cap; SOL: ALT 2x = 40k and a 10000 cap
    assert the_denial(gate.evaluate(order("ETH", size=5.1)), "POSITION_LIMIT").limit == 15_000
    eth = gate.evaluate(order("ETH", size=5.0))
    assert eth.allowed and eth.tier is Tier.DELAY and eth.hold_seconds == 300
    # DOGE is not an allowed market
    assert "MARKET_NOT_ALLOWED" in codes(gate.evaluate(order("DOGE", size=100.0)))


# ---- 7. policy files -----------------------------------------------------------------------

def _summary(policies) -> list[tuple[str, dict]]:
    return [(p.type, p.rules.model_dump()) for p in policies]


def test_a_json_list_policy_file(tmp_path):
    path = tmp_path / "policies.json"
    path.write_text(json.dumps(SEED_BODIES, indent=2))
    assert _summary(load_policy_file(path)) == _summary(parse_policies(list(SEED_BODIES)))


def test_a_policy_file_with_one_body_per_line(tmp_path):
    path = tmp_path / "policies.jsonl"
    path.write_text("\n".join(SEED_LINES) + "\n\n")
    policies = load_policy_file(path)
    assert [p.type for p in policies] == [b["type"] for b in SEED_BODIES]
    assert _summary(policies) == _summary(parse_policies(list(SEED_BODIES)))


def test_a_toml_policy_file(tmp_path):
    path = tmp_path / "policies.toml"
    path.write_text("""
[[policy]]
type = "PERP_MAX_LEVERAGE"
[policy.rules]
maxLeverage = 5.0
[policy.rules.leverageTiers]
"BTC-USD" = 3.0
"ALT-USD" = 2

[[policy]]
id = "quiet-hours"
type = "TIME_RESTRICTION"
enabled = false
[policy.rules]
allowedDays = ["mon", "tue"]
[policy.rules.allowedHours]
start = "09:30"
end = 17

[[policy]]
type = "RATE_LIMIT"
[policy.rules]
maxTransactions = 60
period = "minute"
""")
    leverage, hours, rate = load_policy_file(path)
    assert (leverage.type, leverage.rules.maxLeverage, leverage.rules.leverageTiers) == ("PERP_MAX_LEVERAGE", 5.0, {"BTC": 3.0, "ALT": 2})
    assert (hours.id, hours.enabled, hours.rules.allowedHours.start) == ("quiet-hours", False, "09:30")
    assert (rate.rules.maxTransactions, rate.rules.seconds) == (60, 60.0)
    gate, _ = make_gate(read_policy_bodies(path))
    assert gate.evaluate(order(size=6.0)).allowed  # 3x on BTC; the disabled window does not apply
    assert codes(gate.evaluate(order(size=6.1))) == ["LEVERAGE_LIMIT"]

