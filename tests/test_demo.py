"""The demo (`perpguard --demo`): the real service on the paper exchange, the demo market's flash
crash and the demo bot trading through the real gateway, played five times faster. What a
trader must see: every tier, a denial, a circuit-breaker trip, and one de-risk (REDUCE_ONLY, a
reduce-only order, the lift) with no panic exit and no liquidation."""

import asyncio
import json
from pathlib import Path

import pytest

from engine.api.client import AsyncClient
from engine.config import Config
from engine.demo.scenario import (
    DEMO_CRASH, DEMO_EQUITY, DEMO_MASTER_PASSWORD, DEMO_POLICY_BODIES, demo_config, demo_market,
    demo_policy_bodies, demo_service, start_demo_bot,
)
from engine.demo.bot import payload
from engine.venues.paper.universe import PAPER_MARKETS, START_PRICES
from engine.risk.policies import parse_policies
from engine.risk.policy_file import read_policy_bodies

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "demo-policies.json"
SPEED = 5.0  # the two-minute demo in about 20 s


def _rules(kind: str) -> dict:
    return next(b["rules"] for b in DEMO_POLICY_BODIES if b["type"] == kind)


# ---- the policy set, the market, the config ---------------------------------------------------


def test_the_example_file_is_the_demo_policy_set_and_says_it_is_a_demo():
    bodies = read_policy_bodies(EXAMPLE)
    assert all("DEMO THRESHOLDS" in b["description"] or b["description"].startswith("As the defaults") for b in bodies)
    assert [{k: v for k, v in b.items() if k != "description"} for b in bodies] == DEMO_POLICY_BODIES
    assert len(parse_policies(bodies)) == len(DEMO_POLICY_BODIES)


def test_the_thresholds_de_risk_a_6x_btc_long_in_the_crash_but_never_panic():
    """At 6x BTC the buffer starts above minBuffer (entries allowed); the crash's bottom takes it
    under warn but, even with no de-risk at all, not under panic."""
    buffer_rules, table = _rules("MIN_MARGIN_BUFFER"), PAPER_MARKETS["BTC"].margin_table
    equity, notional = DEMO_EQUITY, 6 * DEMO_EQUITY

    def buffer(drop: float) -> float:
        value = equity - notional * drop
        return (value - table.maintenance_margin(notional * (1 - drop))) / value

    assert buffer(0) >= buffer_rules["minBuffer"]
    assert 6 <= _rules("PERP_MAX_LEVERAGE")["maxLeverage"]
    assert buffer(DEMO_CRASH.drop) < buffer_rules["warnBuffer"]
    assert buffer(DEMO_CRASH.drop) > buffer_rules["panicBuffer"] + 0.05
    assert DEMO_CRASH.start_seconds + DEMO_CRASH.fall_seconds <= 110  # the de-risk shows within two minutes


def test_the_demo_market_walks_then_crashes_about_8_percent_and_is_reproducible():
    t0 = 1_800_000_000.0
    ticks = list(demo_market(START_PRICES, t0, seed=7).take(170))
    assert ticks == list(demo_market(START_PRICES, t0, seed=7).take(170))
    btc = {t.time - t0: t.px for t in ticks if t.coin == "BTC"}
    start = START_PRICES["BTC"]
    assert abs(btc[79] / start - 1) < 0.01  # a quiet walk before the crash
    bottom = min(btc.values())
    assert 0.90 < bottom / start < 0.93
    assert min(btc, key=btc.get) == pytest.approx(DEMO_CRASH.start_seconds + DEMO_CRASH.fall_seconds, abs=3)
    assert btc[169] > bottom * 1.03  # part of it comes back


def test_demo_config_never_touches_the_traders_store_venue_or_webhooks(tmp_path):
    base = Config(engine={"listen": "127.0.0.1:8799", "db": "sqlite:////real/perpguard.db"},
                  paper={"equity": 5_000, "seed": 11}, exchange={"kind": "hyperliquid", "network": "testnet"},
                  notify={"webhooks": ["https://hooks.example/real"]})
    config = demo_config(base, speed=SPEED, directory=tmp_path)
    assert config.engine.db == f"sqlite:///{tmp_path.resolve() / 'demo.db'}"
    assert config.exchange.kind == "paper" and config.notify.webhooks == []
    assert config.paper.equity == DEMO_EQUITY and config.paper.seed == 11
    assert config.engine.listen == "127.0.0.1:8799"
    assert base.engine.db == "sqlite:////real/perpguard.db"  # the base is left alone
    scaled = json.loads(Path(config.engine.policies).read_text())
    assert scaled == demo_policy_bodies(SPEED)
    spending = next(b["rules"] for b in scaled if b["type"] == "SPENDING_LIMIT")
    assert spending["delay_seconds"] == 4 and spending["approval_timeout_seconds"] == 180
    assert next(b["rules"] for b in scaled if b["type"] == "CIRCUIT_BREAKER")["cooldownMinutes"] == pytest.approx(0.1)


# ---- the demo, end to end ------------------------------------------------------------------------


def _events(audit: list[dict], kind: str) -> list[dict]:
    return [payload(item) for item in audit if item["kind"] == kind]


async def test_the_demo_shows_every_tier_a_breaker_trip_and_a_de_risk_without_panic(tmp_path, caplog):
    caplog.set_level("INFO", logger="perpguard.demo")
    service = demo_service(Config(engine={"listen": "127.0.0.1:0"}), speed=SPEED, directory=tmp_path)
    await service.start()
    try:
        bot = start_demo_bot(service)
        await asyncio.wait_for(bot, timeout=45)
        async with AsyncClient(service.url, master_password=DEMO_MASTER_PASSWORD) as admin:
            state = await admin.state()
            response = await admin.http.get("/v1/audit", params={"limit": 1000})
            response.raise_for_status()
            audit = response.json()
    finally:
        await service.stop()

    decisions = _events(audit, "decision")
    sent = {d["tier"] for d in decisions if d["action"] == "send" and not d["reducing"]}
    assert {"INSTANT", "NOTIFY"} <= sent
    held = {d["tier"] for d in decisions if d["action"] == "hold"}
    assert held == {"DELAY", "APPROVAL"}

    # the DELAY order was re-checked and sent by the engine at its time
    closed = _events(audit, "pending_closed")
    assert [c["status"] for c in closed if c["message"].startswith("DELAY ")] == ["EXECUTED"]
    # the APPROVAL order waits for the trader
    assert [(p["tier"], p["status"]) for p in state["pending"]] == [("APPROVAL", "PENDING")]

    # denials: a market not allowed, a position cap, and the breaker's cooldown
    denied = {r["code"] for d in decisions if d["action"] == "deny" for r in d["reasons"] if r["effect"] == "DENY"}
    assert {"MARKET_NOT_ALLOWED", "POSITION_LIMIT", "CIRCUIT_BREAKER"} <= denied

    # three losing closes in a row tripped the circuit breaker
    losses = [e for e in reversed(_events(audit, "position_closed")) if e["coin"] == "ETH"]
    assert len(losses) == 3 and all(e["pnl"] < 0 for e in losses)
    assert [e["losing_streak"] for e in losses] == [1, 2, 3]

    # the crash: REDUCE_ONLY, one reduce-only order that filled, and the lift
    derisks = _events(audit, "derisk_order")
    assert len(derisks) == 1 and derisks[0]["coin"] == "BTC" and derisks[0]["side"] == "sell"
    fills = [e for e in _events(audit, "reduce_filled") if e["purpose"] == "derisk"]
    assert len(fills) == 1 and fills[0]["filled"] == pytest.approx(derisks[0]["size"])
    changes = [(e["previous"], e["state"], e["cause"]) for e in reversed(_events(audit, "state_changed"))]
    assert changes == [("ACTIVE", "REDUCE_ONLY", "margin_buffer"), ("REDUCE_ONLY", "ACTIVE", "margin_buffer cleared")]

    # ... and nothing worse
    assert not _events(audit, "panic_exit") and not _events(audit, "liquidated")
    assert state["trading_state"] == "ACTIVE" and not state["liquidated"]
    btc = next(p for p in state["positions"] if p["coin"] == "BTC")
    assert btc["size"] > 0 and state["account"]["margin_buffer"] > _rules("MIN_MARGIN_BUFFER")["warnBuffer"]

    # the bot said what it did, one line a step, and ended on the de-risk
    lines = [r.getMessage() for r in caplog.records if r.name == "perpguard.demo"]
    assert any("DENIED [CIRCUIT_BREAKER]" in line for line in lines)
    assert "de-risked and back to ACTIVE" in lines[-1]
