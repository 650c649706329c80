"""Every recorded real Hyperliquid response the connector reads parses into the engine's values;
order results map to Hyperliquid's error types; cloids are deterministic."""

from dataclasses import replace
import json

import pytest

from engine.venues.connector import OrderRequest
from engine.venues.hyperliquid.parse import (
    ack_from_response, ack_from_status, error_code, parse_fill, parse_funding, parse_mids, parse_open_orders,
    parse_order_status,
)
from engine.venues.hyperliquid.signer import cloid_for
from engine.domain.increments import MIN_TRADE_NTL, TICK
from engine.venues.paper.rules import IOC_CANCEL, PERP_MARGIN, REDUCE_ONLY
from engine.venues.hyperliquid.snapshot import parse_clearinghouse_state, parse_meta
from fake_hyperliquid.recorded import interactions, recorded

NOT_READ = {  # recorded, but the connector never asks for them
    "l2Book": "perpguard prices from marks, not book depth",
    "candleSnapshot": "candles come from files, for replay",
    "fundingHistory": "live funding comes from activeAssetCtx",
    "userRateLimit": "the per-address action count; the connector tracks the per-IP weight budget",
}
RECORDED = list(interactions())
MARKETS = parse_meta(recorded("meta"))


def check_meta(body, response):
    markets = parse_meta(response)
    assert len(markets) == len(response["universe"])
    btc = markets["BTC"]
    assert btc.sz_decimals == 5 and btc.margin_table.max_leverage() == 50
    assert "kPEPE" in markets  # Hyperliquid's lower-case prefix is kept


def check_all_mids(body, response):
    mids = parse_mids(response, MARKETS)
    assert set(mids) == set(MARKETS) and all(px > 0 for px in mids.values())
    assert mids["BTC"] == 30135.0


def check_clearinghouse_state(body, response):
    state = parse_clearinghouse_state(response)
    held = [p for p in response["assetPositions"] if float(p["position"]["szi"]) != 0]
    assert len(state.positions) == len(held) == 12
    assert state.account.account_value > 0
    for p in state.positions:
        assert state.marks[p.coin] > 0  # positionValue / |szi|


def check_open_orders(body, response):
    orders = parse_open_orders(response, {})
    assert len(orders) == len(response)
    for order, row in zip(orders, response):
        assert order.oid == str(row["oid"]) and order.size == float(row["sz"]) > 0
        assert order.side == ("buy" if row["side"] == "B" else "sell")


def check_user_fills(body, response):
    fills = [parse_fill(f, 0.0) for f in response]
    assert len(fills) == len(response) == 500
    assert all(f.size > 0 and f.px > 0 for f in fills)
    assert sum(f.realized_pnl for f in fills) == pytest.approx(sum(float(f["closedPnl"]) for f in response))


def check_user_funding(body, response):
    for row in response:
        paid = parse_funding(row["delta"], 0.0)
        # Hyperliquid's usdc is what the account received; FundingPaid.payment what it paid
        assert paid.payment == -float(row["delta"]["usdc"])
        # the payment's sign follows the rules: longs pay when the rate is positive
        if paid.rate and paid.size:
            assert (paid.payment > 0) == ((paid.size > 0) == (paid.rate > 0))
            assert paid.px > 0


CHECKS = {
    "meta": check_meta, "allMids": check_all_mids, "clearinghouseState": check_clearinghouse_state,
    "openOrders": check_open_orders, "frontendOpenOrders": check_open_orders, "userFills": check_user_fills,
    "userFunding": check_user_funding,
}


@pytest.mark.parametrize("cassette,body,response", RECORDED, ids=[f"{c}:{b['type']}" for c, b, _ in RECORDED])
def test_every_recorded_response_parses(cassette, body, response):
    kind = body["type"]
    assert kind in CHECKS or kind in NOT_READ, f"{cassette}: no parser for recorded {kind} responses"
    if kind in CHECKS:
        CHECKS[kind](body, response)


def test_the_docs_clearinghouse_example_parses(fixtures):
    state = parse_clearinghouse_state(json.loads((fixtures / "hyperliquid/docs-example-clearinghouse-state.json").read_text()))
    (eth,) = state.positions
    assert eth.coin == "ETH" and eth.size == 0.0335 and eth.isolated_margin == pytest.approx(4.967826)


def test_frontend_open_orders_keep_reduce_only_and_map_our_cloids_back():
    rows = recorded("frontendOpenOrders")
    orders = parse_open_orders(rows, {})
    assert [o.reduce_only for o in orders] == [True, True, False]
    ours = {**rows[2], "cloid": cloid_for("bot-7")}
    order, *children = parse_open_orders([ours], {cloid_for("bot-7"): "bot-7"})
    assert order.client_id == "bot-7"
    assert [c.tpsl for c in children] and all(c.trigger_px and c.reduce_only for c in children)  # its TP/SL count too


@pytest.mark.parametrize("message,code", [
    (MIN_TRADE_NTL, "MinTradeNtl"), (PERP_MARGIN, "PerpMargin"), (REDUCE_ONLY, "ReduceOnly"),
    (TICK, "Tick"), (IOC_CANCEL + " (limit 1, mark 2)", "IocCancel"), ("Something new", "VenueRejected"),
])
def test_rejection_texts_map_to_hyperliquid_error_types(message, code):
    assert error_code(message) == code


def test_order_results_become_acks():
    request = OrderRequest("ETH", "buy", "0.5", "2000", "Ioc", client_id="c1")
    def ok(status):
        return {"status": "ok", "response": {"type": "order", "data": {"statuses": [status]}}}
    filled = ack_from_response(request, ok({"filled": {"totalSz": "0.5", "avgPx": "1999.5", "oid": 7}}))
    assert (filled.status, filled.oid, filled.filled_size, filled.avg_px) == ("filled", "7", 0.5, 1999.5)
    partial = ack_from_response(request, ok({"filled": {"totalSz": "0.2", "avgPx": "1999.5", "oid": 8}}))
    assert partial.status == "partially_filled" and partial.filled_size == 0.2
    refused = ack_from_response(request, ok({"error": MIN_TRADE_NTL}))
    assert (refused.status, refused.code) == ("rejected", "MinTradeNtl")
    unknown_agent = ack_from_response(request, {"status": "err", "response": "User or API Wallet 0xabc does not exist."})
    assert unknown_agent.status == "rejected" and "does not exist" in unknown_agent.error


def test_an_order_found_by_cloid_reports_its_state():
    request = OrderRequest("ETH", "buy", "0.5", "2000", "Gtc", client_id="c1")
    def status(word, size, filled=None):
        row = {"oid": 9, "origSz": "0.5", "sz": size}
        found = parse_order_status({"status": "order", "order": {"order": row, "status": word, "statusTimestamp": 1}})
        return replace(found, filled=filled, avg_px=2000.0 if filled else None)
    assert parse_order_status({"status": "unknownOid"}) is None
    assert ack_from_status(request, status("open", "0.5")).status == "resting"
    assert ack_from_status(request, status("filled", "0.5")).filled_size == 0.5
    # what filled comes from the order's fills, never from orderStatus' sz (its size at open)
    assert ack_from_status(request, status("canceled", "0.5", filled=0.2)).status == "partially_filled"
    assert ack_from_status(request, status("canceled", "0.5", filled=0.2)).filled_size == 0.2
    assert ack_from_status(request, status("marginCanceled", "0.5")).status == "rejected"


def test_cloids_are_deterministic_and_valid():
    assert cloid_for("bot-1") == cloid_for("bot-1") != cloid_for("bot-2")
    assert len(cloid_for("bot-1")) == 34 and cloid_for("bot-1").startswith("0x")
    raw = "0x" + "ab" * 16
    assert cloid_for(raw) == raw  # already a cloid: used as it is
