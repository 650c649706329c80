"""The paper exchange answers Hyperliquid's `/info` and market channels (issue 16, items 4 and 5)
so an unmodified bot can paper-trade: Hyperliquid's own parsers (our connector's) read the
answers back to the exchange's figures, the answers carry every field of the venue's recorded
ones, the market channels send what the marks make, and a body the venue cannot read is refused
with the venue's text. The real clients (the SDK, ccxt) over HTTP: `test_paper_hl_info_clients.py`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_hyperliquid.recorded import recorded

from engine.domain.clock import ManualClock
from engine.venues.connector import OrderRequest, Trigger
from engine.venues.hl_api import InfoRefused
from engine.venues.hyperliquid.parse import parse_open_orders
from engine.venues.hyperliquid.snapshot import parse_clearinghouse_state, parse_meta
from engine.venues.paper.exchange import PaperExchange
from engine.venues.paper.hl_info import PaperVenueApi
from engine.venues.paper.universe import PAPER_MARKETS, START_PRICES
from tests.paper_hl_venue import ADDRESS, CLOID, START, STRANGER, paper_venue, trade

FIXTURES = Path(__file__).parent / "fixtures"


# ---- the answers, read by our own Hyperliquid parsers ---------------------------------------------


async def test_meta_lists_the_paper_markets_with_their_lots_and_margin_tiers():
    paper, api, _ = paper_venue()
    markets = parse_meta(await api.info({"type": "meta"}))
    assert list(markets) == list(PAPER_MARKETS)  # asset id = index in the universe
    for coin, info in PAPER_MARKETS.items():
        assert markets[coin].sz_decimals == info.sz_decimals
        assert markets[coin].margin_table == info.margin_table  # BTC 40x then 20x from 150M, as the venue's
    meta, ctxs = await api.info({"type": "metaAndAssetCtxs"})
    assert [c["markPx"] for c in ctxs] == ["65000.0", "3200.0", "150.0", "0.15", "0.8"]
    assert ctxs[0]["impactPxs"] == ["64967.0", "65033.0"]  # where a taker fills: mark ∓ 5 bp, on the tick
    assert await api.info({"type": "perpDexs"}) == [None]
    assert await api.info({"type": "meta", "dex": "xyz"}) is None  # no builder dex on paper


async def test_the_account_answers_as_the_exchange_holds_it():
    paper, api, clock = paper_venue()
    await trade(paper, clock)
    state = await api.info({"type": "clearinghouseState", "user": ADDRESS})
    parsed = parse_clearinghouse_state(state, paper.ledger.marks)
    snap = await paper.snapshot()
    assert parsed.account.account_value == pytest.approx(snap.account.account_value, abs=1e-6)
    assert {p.coin: (p.size, p.entry_px, p.leverage) for p in parsed.positions} == \
        {"BTC": (0.5, 65032.5, 20.0), "ETH": (-2.0, 3198.4, 20.0)}
    assert float(state["crossMaintenanceMarginUsed"]) == pytest.approx(paper.maintenance_margin(), abs=1e-6)
    btc = next(p["position"] for p in state["assetPositions"] if p["position"]["coin"] == "BTC")
    assert btc["unrealizedPnl"] == "133.75"  # 0.5 × (65300 − 65032.5)
    assert btc["positionValue"] == "32650.0" and btc["marginUsed"] == "1632.5" and btc["maxLeverage"] == 40
    assert float(state["withdrawable"]) == pytest.approx(paper.available_margin(), abs=1e-6)

    orders = parse_open_orders(await api.info({"type": "frontendOpenOrders", "user": ADDRESS}), {})
    assert sorted(orders, key=lambda o: o.oid) == sorted(snap.open_orders, key=lambda o: o.oid)
    fills = await api.info({"type": "userFills", "user": ADDRESS})
    assert [(f["coin"], f["side"], f["px"], f["sz"], f["dir"], f["startPosition"]) for f in fills] == [
        ("ETH", "A", "3198.4", "2.0", "Open Short", "0.0"), ("BTC", "B", "65032.5", "0.5", "Open Long", "0.0")]
    assert float(fills[1]["fee"]) == pytest.approx(0.5 * 65_032.5 * paper.taker_fee, abs=1e-6)
    assert fills[1]["crossed"] is True and fills[1]["feeToken"] == "USDC" and fills[1]["tid"] == 1


async def test_another_address_is_an_empty_account():
    paper, api, clock = paper_venue()
    await trade(paper, clock)
    state = await api.info({"type": "clearinghouseState", "user": STRANGER})
    assert state["assetPositions"] == [] and state["marginSummary"]["accountValue"] == "0.0"
    assert await api.info({"type": "openOrders", "user": STRANGER}) == []
    assert await api.info({"type": "userFills", "user": STRANGER}) == []
    assert await api.info({"type": "orderStatus", "user": STRANGER, "oid": 3}) == {"status": "unknownOid"}
    assert await api.info({"type": "userRole", "user": STRANGER}) == {"role": "missing"}
    assert await api.info({"type": "userRole", "user": ADDRESS.upper().replace("0X", "0x")}) == {"role": "user"}


async def test_order_status_follows_an_order_through_its_life():
    paper, api, clock = paper_venue()
    await trade(paper, clock)

    async def status(oid) -> dict:
        return await api.info({"type": "orderStatus", "user": ADDRESS, "oid": oid})

    resting = await status(CLOID)  # by cloid, as the SDK's query_order_by_cloid asks
    assert resting["order"]["status"] == "open" and resting["order"]["order"]["oid"] == 3
    assert resting["order"]["order"]["sz"] == "0.2" and resting["order"]["order"]["tif"] == "Gtc"
    stop = (await status(4))["order"]
    assert stop["order"]["isTrigger"] and stop["order"]["triggerPx"] == "58000.0"
    assert stop["order"]["orderType"] == "Stop Market" and stop["order"]["triggerCondition"] == "Price below 58000.0"
    assert (await status(1))["order"]["status"] == "filled" and (await status(1))["order"]["order"]["sz"] == "0.0"

    await paper.cancel("BTC", "3")
    cancelled = (await status(3))["order"]
    assert cancelled["status"] == "canceled" and cancelled["order"]["origSz"] == "0.2"
    paper.set_mark("BTC", 57_900.0)  # the stop fires and closes the long
    assert (await status(4))["order"]["status"] == "filled"
    close = (await api.info({"type": "userFills", "user": ADDRESS}))[0]
    assert (close["dir"], close["startPosition"], close["oid"]) == ("Close Long", "0.5", 4)
    assert float(close["closedPnl"]) == pytest.approx(0.5 * (57_900 * (1 - paper.slippage) - 65_032.5), abs=1e-5)
    assert await status(99) == {"status": "unknownOid"}
    history = await api.info({"type": "historicalOrders", "user": ADDRESS})
    assert [(h["order"]["oid"], h["status"]) for h in history] == [(4, "filled"), (3, "canceled"), (2, "filled"),
                                                                   (1, "filled")]


async def test_candles_are_built_from_the_marks():
    paper, api, clock = paper_venue()
    await trade(paper, clock)
    minute = int(START * 1000)

    async def candles(interval: str) -> list[dict]:
        return await api.info({"type": "candleSnapshot", "req": {"coin": "BTC", "interval": interval,
                                                                 "startTime": minute, "endTime": minute + 600_000}})

    ones = await candles("1m")
    assert [(c["t"] - minute, c["o"], c["h"], c["l"], c["c"]) for c in ones] == [
        (0, "65000.0", "65000.0", "65000.0", "65000.0"), (60_000, "65000.0", "65400.0", "64800.0", "65100.0"),
        (120_000, "65100.0", "65900.0", "65050.0", "65800.0"), (180_000, "65800.0", "65850.0", "65200.0", "65300.0"),
        (240_000, "65300.0", "65300.0", "65300.0", "65300.0")]
    assert ones[0]["v"] == "0.5" and ones[0]["n"] == 1  # the paper account's BTC fill, the only trade
    assert ones[0]["T"] == minute + 59_999 and ones[0]["s"] == "BTC" and ones[0]["i"] == "1m"
    five = await candles("5m")
    assert [(c["o"], c["h"], c["l"], c["c"]) for c in five] == [("65000.0", "65900.0", "64800.0", "65300.0")]
    later = await api.info({"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "1m",
                                                              "startTime": minute + 200_000}})
    assert [c["t"] - minute for c in later] == [180_000, 240_000]  # endTime optional: up to now


async def test_the_book_is_synthetic_around_the_mark_with_the_accounts_own_orders():
    paper, api, clock = paper_venue()
    await trade(paper, clock)
    book = await api.info({"type": "l2Book", "coin": "BTC"})
    bids, asks = book["levels"]
    assert bids[0]["px"] == "65267.0" and asks[0]["px"] == "65333.0"  # 65300 ∓ 5 bp
    assert all(float(a["px"]) > float(b["px"]) for a, b in zip(bids, bids[1:]))
    assert {"px": "60000.0", "sz": "0.2", "n": 1} in bids  # the resting paper bid
    assert await api.info({"type": "l2Book", "coin": "NOPE"}) is None
    mids = await api.info({"type": "allMids"})
    assert mids["BTC"] == "65300.0" and set(mids) == set(PAPER_MARKETS)


async def test_unified_accounts_keep_the_collateral_in_spot():
    paper, api, clock = paper_venue("unified")
    await trade(paper, clock)
    assert await api.info({"type": "userAbstraction", "user": ADDRESS}) == "unifiedAccount"
    spot = await api.info({"type": "spotClearinghouseState", "user": ADDRESS})
    usdc = spot["balances"][0]
    assert usdc["coin"] == "USDC" and float(usdc["total"]) == pytest.approx(paper.account_value(), abs=1e-6)
    perp = await api.info({"type": "clearinghouseState", "user": ADDRESS})
    assert perp["withdrawable"] == "0.0"
    standard, api2, _ = paper_venue()
    assert await api2.info({"type": "userAbstraction", "user": ADDRESS}) == "disabled"
    assert await api2.info({"type": "spotClearinghouseState", "user": ADDRESS}) == {"balances": []}


@pytest.mark.parametrize("body, reason", [
    ({"type": "clearinghouseState"}, "missing field `user`"),
    ({"type": "orderStatus", "user": ADDRESS}, "missing field `oid`"),
    ({"type": "l2Book"}, "missing field `coin`"),
    ({"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "7m", "startTime": 0}}, "unknown variant `7m`"),
    ({"type": "portfolioz", "user": ADDRESS}, "unknown variant `portfolioz`"),
    ({"type": "userFills", "user": "nobody"}, 'invalid value: string "nobody"'),
    ({"user": ADDRESS}, "missing field `type`"),
    ([1, 2], "invalid type: sequence"),
])
async def test_a_body_the_venue_cannot_read_is_refused_with_its_text(body, reason):
    _, api, _ = paper_venue()
    with pytest.raises(InfoRefused) as refused:
        await api.info(body)
    assert refused.value.status == 422
    assert refused.value.message.startswith("Failed to deserialize the JSON body into the target type: " + reason)


async def test_budget_fees_and_agents_answer_in_the_venues_shapes():
    paper, api, clock = paper_venue()
    await trade(paper, clock)
    budget = await api.info({"type": "userRateLimit", "user": ADDRESS})
    assert budget == {"cumVlm": "38913.05", "nRequestsUsed": 4, "nRequestsCap": 48913, "nRequestsSurplus": 0}
    fees = await api.info({"type": "userFees", "user": ADDRESS})
    assert (fees["userCrossRate"], fees["userAddRate"]) == ("0.00045", "0.00015")
    assert await api.info({"type": "extraAgents", "user": ADDRESS}) == []
    assert await api.info({"type": "maxBuilderFee", "user": ADDRESS, "builder": STRANGER}) == 0


# ---- the shapes of the venue's recorded answers -------------------------------------------------


def same_shape(ours: Any, theirs: Any, path: str = "$") -> None:
    """`ours` carries every field of the recorded `theirs`, with the same JSON types (a null on
    either side is a nullable field; lists compare their first elements)."""
    if theirs is None or ours is None:
        return
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), f"{path}: {ours!r} is not an object"
        assert not set(theirs) - set(ours), f"{path}: missing {sorted(set(theirs) - set(ours))}"
        for key in theirs:
            same_shape(ours[key], theirs[key], f"{path}.{key}")
    elif isinstance(theirs, list):
        assert isinstance(ours, list), f"{path}: {ours!r} is not a list"
        if theirs and ours:
            same_shape(ours[0], theirs[0], f"{path}[0]")
    else:
        assert type(ours) is type(theirs), f"{path}: {ours!r} is {type(ours).__name__}, the venue's {theirs!r}"


def recorded_info(cassette: str) -> tuple[dict, Any]:
    item = yaml.safe_load((FIXTURES / "hyperliquid" / cassette).read_text())["interactions"][-1]
    return json.loads(item["request"]["body"]), json.loads(item["response"]["body"]["string"])


async def test_the_answers_carry_every_field_of_the_venues_recorded_ones(fixtures):
    paper, api, clock = paper_venue()
    await trade(paper, clock)
    await paper.place_group([OrderRequest("SOL", "buy", "10", "140", "Gtc"),  # an entry with a waiting stop
                             OrderRequest("SOL", "sell", "10", "120", "Gtc", True, trigger=Trigger("130", "sl"))],
                            "normalTpsl")
    paper.set_funding_rate("BTC", 0.0001)
    clock.advance(3600)
    paper.poll()
    docs = json.loads((fixtures / "hyperliquid" / "docs-example-clearinghouse-state.json").read_text())
    for row in docs["assetPositions"]:
        row["position"]["leverage"].pop("rawUsd")  # an isolated position's field; the paper venue is cross
    cases = [("clearinghouseState", {"user": ADDRESS}, docs)]
    for kind, extra in [("l2Book", {"coin": "BTC"}), ("frontendOpenOrders", {"user": ADDRESS}),
                        ("openOrders", {"user": ADDRESS}), ("userFills", {"user": ADDRESS}),
                        ("userRateLimit", {"user": ADDRESS}), ("meta", {}),
                        ("userFunding", {"user": ADDRESS, "startTime": 0}),
                        ("candleSnapshot", {"req": {"coin": "BTC", "interval": "1m", "startTime": 0}})]:
        cases.append((kind, extra, recorded(kind)))
    for cassette in ("test_historical_orders.yaml", "test_user_role.yaml"):
        body, answer = recorded_info(f"sdk-info-cassettes/{cassette}")
        cases.append((body["type"], {"user": ADDRESS}, answer))
    body, answer = recorded_info("sdk-cassettes/test_get_funding_history[1684811870000].yaml")
    cases.append(("fundingHistory", {"coin": "BTC", "startTime": 0}, answer))
    for kind, extra, theirs in cases:
        ours = await api.info({"type": kind, **extra})
        assert ours, f"{kind}: nothing to compare"
        same_shape(ours, theirs, kind)
    mids = await api.info({"type": "allMids"})
    assert all(isinstance(px, str) for px in mids.values()) and all(isinstance(px, str) for px in recorded("allMids").values())


# ---- market channels ---------------------------------------------------------------------------


async def next_turn() -> None:
    await asyncio.sleep(0)  # one turn of the loop: coalesced channel messages go out
    await asyncio.sleep(0)


async def test_mark_channels_send_one_message_per_step_and_stop_when_unsubscribed():
    paper, api, clock = paper_venue()
    got: dict[str, list] = {"allMids": [], "l2Book": [], "bbo": [], "candle": [], "trades": []}

    def sink(message: dict) -> None:
        got[message["channel"]].append(message["data"])

    stops = [api.subscribe({"type": "allMids"}, sink), api.subscribe({"type": "l2Book", "coin": "BTC"}, sink),
             api.subscribe({"type": "bbo", "coin": "BTC"}, sink),
             api.subscribe({"type": "candle", "coin": "BTC", "interval": "1m"}, sink),
             api.subscribe({"type": "trades", "coin": "BTC"}, sink)]
    await next_turn()
    assert got["allMids"] == [{"mids": {c: f"{px}" if px != int(px) else f"{px:.1f}" for c, px in START_PRICES.items()}}]
    assert got["bbo"][0]["bbo"][0]["px"] == "64967.0" and len(got["l2Book"]) == 1
    clock.advance(1)
    for coin, px in {"BTC": 65_100.0, "ETH": 3_210.0, "SOL": 151.0}.items():  # one step of the feed
        paper.set_mark(coin, px)
    await next_turn()
    assert len(got["allMids"]) == 2 and got["allMids"][1]["mids"]["ETH"] == "3210.0"  # one message for the step
    assert got["l2Book"][-1]["levels"][1][0]["px"] == "65133.0" and len(got["bbo"]) == 2
    assert got["candle"][-1]["c"] == "65100.0" and got["candle"][-1]["i"] == "1m"
    await paper.place(OrderRequest("BTC", "buy", "0.01", "66000", "Ioc"))
    assert got["trades"] == [[{"coin": "BTC", "side": "B", "px": "65132.55", "sz": "0.01", "hash": got["trades"][0][0]["hash"],
                               "time": int(clock.now() * 1000), "tid": 1, "users": [ADDRESS, "0x" + "0" * 40]}]]
    paper.set_mark("BTC", 65_100.0)  # the same mark: the bbo did not change, none is sent
    await next_turn()
    assert len(got["bbo"]) == 2
    for stop in stops:
        stop()
    before = {k: len(v) for k, v in got.items()}
    paper.set_mark("BTC", 66_000.0)
    await paper.place(OrderRequest("BTC", "buy", "0.01", "67000", "Ioc"))
    await next_turn()
    assert {k: len(v) for k, v in got.items()} == before


async def test_a_subscription_the_venue_would_not_parse_is_refused():
    _, api, _ = paper_venue()
    for bad in ({"type": "l2Book"}, {"type": "l2Book", "coin": "NOPE"}, {"type": "candle", "coin": "BTC", "interval": "9m"},
                {"type": "webData9"}):
        with pytest.raises(InfoRefused) as refused:
            api.subscribe(bad, lambda m: None)
        assert refused.value.status == 400
        assert refused.value.message == "Error parsing JSON into valid websocket request: " + json.dumps(
            {"method": "subscribe", "subscription": bad}, separators=(",", ":"))


def test_a_bare_exchange_does_nothing_extra_per_mark():
    """The benchmarks feed marks to a PaperExchange with no API on it: no listener runs."""
    paper = PaperExchange(PAPER_MARKETS, clock=ManualClock(START))
    assert paper.mark_listeners == [] and paper.history.fill_listeners == []
    api = PaperVenueApi(paper)
    assert len(paper.mark_listeners) == 1 and not api.channels.watching_marks
    asyncio.run(api.close())
    assert paper.mark_listeners == [] and paper.history.fill_listeners == []
