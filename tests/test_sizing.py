"""`POST /v1/size` and the client's `size()`: the largest size of an intent the gate allows now,
its tier, the binding policy and the seed formulas (engine/risk/sizing.py). The search is
checked in process against the gate, then over real HTTP against dry runs of the same intent."""

from __future__ import annotations

import asyncio
import itertools
from decimal import ROUND_DOWN, Decimal

import httpx
import pytest

from builders import MARKS, T0, make_book, make_gate
from engine.api.client import AsyncClient, Client
from engine.api.errors import ApiError
from engine.domain.increments import on_lot
from engine.domain.margin import fractional_kelly, kelly_fraction, risk_based_size
from engine.domain.model import OrderIntent, TradingState
from engine.node import build
from engine.risk.policy_file import DEFAULT_POLICY_BODIES
from engine.risk.sizing import MAX_EVALUATIONS, NOT_ASKED, SizeRequest, SizingError, largest_size
from engine.store.auth import set_master_password
from engine.venues.paper.prices import MarkTick
from tests.engine_server import MASTER, EngineThread, seed_policies
from tests.policy_cases import SEED_BODIES

ADMIN = {"X-Master-Password": MASTER}


def one_lot_more(size: float, lot: float) -> float:
    return float(Decimal(repr(size)) + Decimal(repr(lot)))


def ask(gate, **fields):
    return largest_size(gate, SizeRequest(**{"market": "BTC", "side": "buy", **fields})).as_dict()


# ---- the search, in process --------------------------------------------------------------------

def test_the_answer_is_allowed_and_one_lot_more_is_denied_by_the_binding_policy():
    gate, _ = make_gate(DEFAULT_POLICY_BODIES)
    answer = ask(gate)
    # 100k equity, MAX_GROSS_EXPOSURE 3x: 300k of BTC at 50k
    assert answer["max_size"] == pytest.approx(6.0) and answer["notional_usd"] == pytest.approx(300_000)
    assert answer["binding"]["type"] == "MAX_GROSS_EXPOSURE" and answer["binding"]["policy_id"] == "gross-exposure"
    at = gate.evaluate(OrderIntent(market="BTC", side="buy", size=answer["max_size"]))
    above = gate.evaluate(OrderIntent(market="BTC", side="buy", size=one_lot_more(answer["max_size"], answer["lot"])))
    assert at.allowed and at.tier.value == answer["tier"]
    assert not above.allowed and above.denials[0].policy_id == answer["binding"]["policy_id"]
    assert answer["evaluations"] <= MAX_EVALUATIONS


def test_the_tier_is_the_one_at_that_size():
    gate, _ = make_gate(SEED_BODIES)
    answer = ask(gate, market="ETH")
    assert answer["max_size"] == pytest.approx(5.0)  # ETH cap 15000 USD at 3000
    assert answer["tier"] == "DELAY" and answer["binding"]["code"] == "POSITION_LIMIT"


def test_a_denial_at_any_size_answers_zero_with_it():
    gate, _ = make_gate(SEED_BODIES)
    answer = ask(gate, market="SOL", leverage=3)  # SOL is an ALT: 2x at most
    assert answer["max_size"] == 0 and answer["binding"]["code"] == "LEVERAGE_LIMIT"
    assert answer["notional_usd"] == 0 and answer["projected"] is None


def test_no_policy_binds_below_the_cap():
    gate, _ = make_gate([])
    answer = ask(gate)
    assert answer["binding"] is None and answer["max_size"] == answer["cap"] == pytest.approx(80.0)  # 100k x 40 / 50k


def test_a_huge_account_is_still_bounded_in_evaluations():
    gate, _ = make_gate([], make_book(equity=1e12))
    answer = ask(gate, market="DOGE")
    assert answer["evaluations"] <= MAX_EVALUATIONS
    assert answer["binding"] is None and answer["max_size"] == answer["cap"]


def test_halted_answers_zero_with_the_reason():
    gate, _ = make_gate(DEFAULT_POLICY_BODIES)
    gate.trading.halt("kill switch", T0)
    answer = ask(gate)
    assert answer["max_size"] == 0 and answer["tier"] is None and answer["trading_state"] == "HALTED"
    assert answer["binding"]["code"] == "HALTED"


def test_reduce_only_denies_entries_and_lets_the_exit_reach_the_position():
    gate, _ = make_gate(DEFAULT_POLICY_BODIES, make_book(positions={"BTC": 1.5}))
    gate.trading.reduce_only("stop trading", T0)
    assert ask(gate)["binding"]["code"] == "REDUCE_ONLY" and ask(gate)["max_size"] == 0
    exit_ = ask(gate, side="sell")
    assert exit_["max_size"] == pytest.approx(1.5) and exit_["binding"] is None and exit_["tier"] == "INSTANT"


def test_a_reduce_only_order_is_sized_to_the_position():
    gate, _ = make_gate(DEFAULT_POLICY_BODIES, make_book(positions={"SOL": -12.34}))
    answer = ask(gate, market="SOL", side="buy", reduce_only=True)
    assert answer["max_size"] == pytest.approx(12.34) and answer["binding"] is None


def test_a_stale_feed_answers_zero_with_data_unavailable():
    book = make_book()
    book.feed_stale_since = T0
    gate, _ = make_gate(DEFAULT_POLICY_BODIES, book)
    answer = ask(gate)
    assert answer["max_size"] == 0 and answer["binding"]["code"] == "DATA_UNAVAILABLE"


def test_sizing_never_records_anything(monkeypatch):
    gate, _ = make_gate(DEFAULT_POLICY_BODIES + SEED_BODIES)

    def forbidden(*_a, **_k):
        raise AssertionError("sizing recorded something")

    for target, name in ((gate, "note_submission"), (gate, "note_forwarded"), (gate.counters, "record")):
        monkeypatch.setattr(target, name, forbidden)
    before = gate.trading.state
    ask(gate, risk_share=0.01, stop_loss=48_000, win_probability=0.5, payoff_ratio=2)
    assert gate.trading.state is before is TradingState.ACTIVE


def test_the_formulas_are_margin_pys():
    gate, _ = make_gate(DEFAULT_POLICY_BODIES)
    answer = ask(gate, stop_loss=48_000, risk_share=0.01, max_position_share=0.5, leverage=2,
                 win_probability=0.55, payoff_ratio=1.5, kelly_fraction=0.3)
    f = answer["formulas"]
    raw = risk_based_size(100_000, 0.01, MARKS["BTC"], 48_000, 0.5, 2)
    assert f["risk_based"]["size"] == float(on_lot(raw, 5, ROUND_DOWN)) == 0.5
    assert f["kelly"]["kelly"] == kelly_fraction(0.55, 1.5)
    assert f["kelly"]["fractional_kelly"] == fractional_kelly(0.55, 1.5, 0.3)
    # the Kelly bet is the share of equity lost at the stop
    assert f["kelly"]["size"] == float(on_lot(fractional_kelly(0.55, 1.5, 0.3) * 100_000 / 2_000, 5, ROUND_DOWN))
    assert f["kelly"]["allowed_size"] == min(f["kelly"]["size"], answer["max_size"])
    no_stop = ask(gate, win_probability=0.55, payoff_ratio=1.5)["formulas"]["kelly"]
    assert no_stop["basis"] == "notional"
    assert no_stop["notional_usd"] == pytest.approx(fractional_kelly(0.55, 1.5) * 100_000, rel=1e-6)
    assert ask(gate, win_probability=0.2, payoff_ratio=1)["formulas"]["kelly"]["size"] == 0  # never negative


@pytest.mark.parametrize("fields, field", [
    ({"risk_share": 0.01}, "stop_loss"),
    ({"win_probability": 0.5}, "payoff_ratio"),
    ({"payoff_ratio": 2.0}, "win_probability"),
    ({"type": "limit"}, "limit_px"),
    ({"stop_loss": 60_000.0}, "stop_loss"),  # a buy's stop above the entry would fire at once
    ({"market": "NOPE"}, "market"),
])
def test_requests_it_cannot_answer_name_the_field(fields, field):
    gate, _ = make_gate(DEFAULT_POLICY_BODIES)
    with pytest.raises(SizingError) as refused:
        largest_size(gate, SizeRequest(**{"market": "BTC", "side": "buy", **fields}))
    assert refused.value.field == field


def test_the_request_carries_every_intent_field_but_the_size():
    assert set(OrderIntent.model_fields) - NOT_ASKED <= set(SizeRequest.model_fields)
    assert not NOT_ASKED & set(SizeRequest.model_fields)


# ---- over HTTP -----------------------------------------------------------------------------------

def steady(prices: dict[str, float], now: float):
    """The paper market at its start prices, a tick a second: dry runs seconds apart see one price."""
    for k in itertools.count():
        for coin, px in prices.items():
            yield MarkTick(now + k, coin, px)


class SteadyEngine(EngineThread):
    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.service = build(self.config, market=steady)
            set_master_password(self.service.store, MASTER)
            self.loop.run_until_complete(self.service.start())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    with SteadyEngine(tmp_path_factory.mktemp("sizing")) as running:
        seed_policies(running, SEED_BODIES)
        yield running


@pytest.fixture
def admin(engine):
    with httpx.Client(base_url=engine.url, headers=ADMIN, timeout=30) as http:
        yield http


def dry_run(admin: httpx.Client, intent: dict, size: float) -> dict:
    reply = admin.post("/v1/orders", json={**intent, "size": size, "dry_run": True})
    assert reply.status_code == 200 and reply.json()["status"] == "dry_run", reply.text
    return reply.json()["decision"]


@pytest.mark.parametrize("intent", [
    {"market": "ETH", "side": "buy"},
    {"market": "SOL-USD", "side": "sell", "leverage": 2},
    {"market": "BTC", "side": "buy", "type": "limit", "limit_px": 64_000, "stop_loss": 60_000},
])
def test_over_http_the_answer_is_allowed_and_one_lot_more_is_denied(admin, intent):
    reply = admin.post("/v1/size", json=intent)
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["max_size"] > 0 and answer["binding"] is not None
    at = dry_run(admin, intent, answer["max_size"])
    above = dry_run(admin, intent, one_lot_more(answer["max_size"], answer["lot"]))
    assert at["verdict"] == "ALLOW" and at["tier"] == answer["tier"]
    assert at["notional"] == pytest.approx(answer["notional_usd"])
    assert above["verdict"] == "DENY"
    denials = [(r["policy_id"], r["code"]) for r in above["reasons"] if r["effect"] == "DENY"]
    assert (answer["binding"]["policy_id"], answer["binding"]["code"]) in denials


def test_sizing_acts_on_nothing(admin):
    before = admin.get("/v1/state").json()
    for _ in range(5):
        assert admin.post("/v1/size", json={"market": "ETH", "side": "buy"}).status_code == 200
    after = admin.get("/v1/state").json()
    assert after["positions"] == before["positions"] and after["pending"] == before["pending"]
    assert after["open_orders"] == before["open_orders"]


@pytest.mark.parametrize("body, field", [
    ({"market": "BTC", "side": "buy", "size": 1}, "size"),
    ({"market": "BTC", "side": "buy", "notional_usd": 100}, "notional_usd"),
    ({"market": "BTC", "side": "buy", "client_id": "x"}, "client_id"),
    ({"market": "BTC", "side": "buy", "risk_share": "0.01", "stop_loss": 60_000}, "risk_share"),
    ({"market": "BTC", "side": "buy", "risk_share": 2, "stop_loss": 60_000}, "risk_share"),
    ({"market": "BTC", "side": "buy", "risk_share": 0.01}, "stop_loss"),
    ({"market": "BTC", "side": "buy", "win_probability": 0.6}, "payoff_ratio"),
    ({"market": "BTC", "side": "buy", "win_probability": True, "payoff_ratio": 2}, "win_probability"),
    ({"market": "BTC", "side": "buy", "kelly_fraction": 0}, "kelly_fraction"),
    ({"market": "BTC", "side": "buy", "type": "limit"}, "limit_px"),
    ({"market": "BTC", "side": "buy", "stop_loss": 1_000_000}, "stop_loss"),
    ({"market": "NOPE", "side": "buy"}, "market"),
    ({"market": "BTC", "side": "hold"}, "side"),
    ({"side": "buy"}, "market"),
])
def test_bad_input_is_a_422_naming_the_field(admin, body, field):
    reply = admin.post("/v1/size", json=body)
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert error["code"] == "VALIDATION" and error["details"]["field"] == field


def test_a_non_finite_number_is_refused(admin):
    reply = admin.post("/v1/size", content=b'{"market": "BTC", "side": "buy", "payoff_ratio": Infinity, '
                                           b'"win_probability": 0.5}', headers={"Content-Type": "application/json"})
    assert reply.status_code == 422 and reply.json()["error"]["details"]["field"] == "payoff_ratio"


def test_a_read_token_may_ask_and_no_credentials_may_not(engine, admin):
    reply = admin.post("/v1/tokens", json={"name": "sizer", "scopes": ["read"]})
    reader = reply.json()["token"]
    ok = httpx.post(f"{engine.url}/v1/size", json={"market": "ETH", "side": "buy"},
                    headers={"Authorization": f"Bearer {reader}"})
    assert ok.status_code == 200 and ok.json()["max_size"] > 0
    assert httpx.post(f"{engine.url}/v1/size", json={"market": "ETH", "side": "buy"}).status_code == 401


def test_the_client_sizes_against_a_running_gateway(engine):
    with Client(engine.url, master_password=MASTER) as pg:
        answer = pg.size({"market": "BTC", "side": "buy", "stop_loss": 60_000}, risk_share=0.01,
                         win_probability=0.55, payoff_ratio=1.5)
        assert answer["max_size"] > 0 and answer["market"] == "BTC"
        risk = answer["formulas"]["risk_based"]
        assert risk["size"] == float(on_lot(risk_based_size(answer["formulas"]["equity"], 0.01, answer["px"], 60_000),
                                            5, ROUND_DOWN))
        assert answer["formulas"]["kelly"]["fractional_kelly"] == fractional_kelly(0.55, 1.5)
        # an OrderIntent is asked without its size
        same = pg.size(OrderIntent(market="ETH", side="buy", notional_usd=100, client_id="c-1"))
        assert same["market"] == "ETH" and same["binding"]["code"] == "POSITION_LIMIT"
        with pytest.raises(ApiError) as refused:
            pg.size({"market": "BTC", "side": "buy"}, risk_share=0.01)
        assert refused.value.status == 422 and refused.value.field == "stop_loss"

    async def both() -> dict:
        async with AsyncClient(engine.url, master_password=MASTER) as apg:
            return await apg.size(SizeRequest(market="SOL", side="buy"))

    assert asyncio.run(both())["binding"]["code"] == "POSITION_LIMIT"


def test_a_halted_engine_answers_zero_with_halted(admin):
    assert admin.post("/v1/kill", json={"reason": "sizing test"}).status_code == 200
    try:
        answer = admin.post("/v1/size", json={"market": "ETH", "side": "buy"}).json()
        assert answer["max_size"] == 0 and answer["trading_state"] == "HALTED"
        assert answer["binding"]["code"] == "HALTED" and answer["tier"] is None
    finally:
        assert admin.post("/v1/resume").status_code == 200
