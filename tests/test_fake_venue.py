"""The fake Hyperliquid itself, driven with the official SDK (`Info`, `Exchange`) and httpx, never
through perpguard's connector: each test is a venue outcome a trader relies on."""

from __future__ import annotations

import time

import httpx
import pytest
from eth_account import Account
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info

from fake_hyperliquid.book import BookShape
from fake_hyperliquid.harness import AGENT, EXPIRED_AGENT, MASTER, STRANGER, SUB, VAULT, start_fake

DEXES = ["", "xyz"]


@pytest.fixture
def make_fake():
    started = []

    def make(**kw):
        fake = start_fake(**kw)
        started.append(fake)
        return fake
    yield make
    for fake in started:
        fake.stop()


def exchange(fake, wallet=AGENT, vault=None) -> Exchange:
    return Exchange(wallet, fake.url, account_address=MASTER.address, vault_address=vault, perp_dexs=DEXES)


def info(fake, body: dict):
    response = httpx.post(f"{fake.url}/info", json=body)
    assert response.status_code == 200
    return response.json()


def post_raw(fake, ex: Exchange, action: dict, nonce: int) -> httpx.Response:
    from hyperliquid.utils.signing import sign_l1_action
    signature = sign_l1_action(ex.wallet, action, ex.vault_address, nonce, None, False)
    return httpx.post(f"{fake.url}/exchange",
                      json={"action": action, "nonce": nonce, "signature": signature, "vaultAddress": ex.vault_address})


def wait_until(predicate, timeout=5.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def error_of(result) -> str:
    return result["response"]["data"]["statuses"][0]["error"]


# ---- accounts ---------------------------------------------------------------------------------


def test_a_subaccount_order_lands_on_the_subaccount_only_with_vault_address(make_fake):
    fake = make_fake(equities={SUB: 20_000})
    assert info(fake, {"type": "userRole", "user": SUB}) == {"role": "subAccount", "data": {"master": MASTER.address.lower()}}
    assert info(fake, {"type": "userRole", "user": VAULT}) == {"role": "vault"}
    assert info(fake, {"type": "userRole", "user": AGENT.address}) == {"role": "agent", "data": {"user": MASTER.address.lower()}}
    assert info(fake, {"type": "userRole", "user": STRANGER.address}) == {"role": "missing"}

    result = exchange(fake, vault=SUB).order("ETH", True, 0.05, 2000.0, {"limit": {"tif": "Ioc"}})
    assert "filled" in result["response"]["data"]["statuses"][0], result
    assert fake.position("ETH", account=SUB) == pytest.approx(0.05) and fake.position("ETH") == 0

    exchange(fake).order("ETH", True, 0.05, 2000.0, {"limit": {"tif": "Ioc"}})  # forgot vaultAddress
    assert fake.position("ETH") == pytest.approx(0.05) and fake.position("ETH", account=SUB) == pytest.approx(0.05)

    stranger_sub = Account.from_key("0x" + "66" * 32).address
    refused = exchange(fake, vault=stranger_sub).order("ETH", True, 0.05, 2000.0, {"limit": {"tif": "Ioc"}})
    assert refused == {"status": "err", "response": f"Vault not registered: {stranger_sub.lower()}"}


def test_a_unified_account_keeps_its_usdc_in_spot(make_fake):
    fake = make_fake(equity=50_000, abstraction={MASTER.address: "unifiedAccount"})
    sdk = Info(fake.url, skip_ws=True)
    assert info(fake, {"type": "userAbstraction", "user": MASTER.address}) == "unifiedAccount"
    assert info(fake, {"type": "userAbstraction", "user": SUB}) == "default"
    perp = sdk.user_state(MASTER.address)
    assert float(perp["marginSummary"]["accountValue"]) == pytest.approx(0) and float(perp["withdrawable"]) == 0
    spot = sdk.spot_user_state(MASTER.address)
    (usdc,) = spot["balances"]
    assert usdc["coin"] == "USDC" and usdc["token"] == 0 and float(usdc["total"]) == pytest.approx(50_000)
    assert spot["tokenToAvailableAfterMaintenance"] == [[0, "50000"]]

    exchange(fake).order("BTC", True, 0.5, 31_000.0, {"limit": {"tif": "Ioc"}})
    perp = sdk.user_state(MASTER.address)
    used = float(perp["marginSummary"]["totalMarginUsed"])
    upnl = float(perp["assetPositions"][0]["position"]["unrealizedPnl"])
    assert used > 0 and float(perp["marginSummary"]["accountValue"]) == pytest.approx(used + upnl)
    assert float(sdk.spot_user_state(MASTER.address)["balances"][0]["hold"]) == pytest.approx(used)
    assert info(fake, {"type": "spotClearinghouseState", "user": SUB}) == {"balances": []}


def test_an_expired_agent_is_refused_and_listed_with_its_expiry(make_fake):
    fake = make_fake()
    agents = {a["address"]: a for a in info(fake, {"type": "extraAgents", "user": MASTER.address})}
    assert agents[AGENT.address.lower()]["validUntil"] > time.time() * 1000 + 80 * 86_400_000
    assert agents[EXPIRED_AGENT.address.lower()]["validUntil"] < time.time() * 1000
    result = exchange(fake, EXPIRED_AGENT).order("ETH", True, 0.05, 2000.0, {"limit": {"tif": "Ioc"}})
    assert result == {"status": "err", "response": f"User or API Wallet {EXPIRED_AGENT.address.lower()} does not exist."}
    assert fake.orders() == []


def test_the_venue_keeps_20_nonces_per_signer(make_fake):
    fake = make_fake()
    ex = exchange(fake)
    base = int(time.time() * 1000)
    noop = {"type": "noop"}
    for i in range(1, 21):
        assert post_raw(fake, ex, noop, base + i).json() == {"status": "ok", "response": {"type": "default"}}
    assert post_raw(fake, ex, noop, base + 5).json()["response"] == f"Invalid nonce: duplicate nonce {base + 5}"
    assert post_raw(fake, ex, noop, base).json()["response"] == f"Invalid nonce: nonce too low {base} < {base + 1}"
    assert post_raw(fake, ex, noop, base + 21).json()["status"] == "ok"  # pushes base+1 out
    assert post_raw(fake, ex, noop, base + 1).json()["response"].startswith("Invalid nonce: nonce too low")
    far = base + 2 * 86_400_000
    assert post_raw(fake, ex, noop, far).json()["response"].startswith(f"Invalid nonce: nonce too high {far} > ")


def test_over_its_address_budget_an_account_gets_one_request_per_10_s(make_fake):
    fake = make_fake(requests_used={MASTER.address: 9_998})
    ex = exchange(fake)
    assert ex.update_leverage(10, "ETH")["status"] == "ok"  # 9,999
    assert ex.update_leverage(10, "ETH")["status"] == "ok"  # 10,000: the cap
    # The first request over the cap is let through (one per 10 s), the next is not.
    assert ex.update_leverage(10, "ETH")["status"] == "ok"
    # a nonce a second in the past: fresh for the venue, and never one the SDK's clock-stamped
    # nonces that follow can land on (one 50 ms ahead collided with them now and then)
    response = post_raw(fake, ex, {"type": "noop"}, int(time.time() * 1000) - 1000)
    assert response.status_code == 200
    assert response.json() == {"status": "err", "response": "Too many cumulative requests sent (10002 > 10000) for "
                               "cumulative volume traded $0. Place taker orders to free up 1 request per USDC traded."}
    limits = info(fake, {"type": "userRateLimit", "user": MASTER.address})
    assert limits == {"cumVlm": "0", "nRequestsUsed": 10_001, "nRequestsCap": 10_000, "nRequestsSurplus": 0}
    fake.advance(10)
    assert ex.update_leverage(10, "ETH")["status"] == "ok"
    assert ex.update_leverage(10, "ETH")["response"].startswith("Too many cumulative requests sent")
    # Each order in a batch spends one; the subaccount has its own budget.
    assert exchange(fake, vault=SUB).update_leverage(10, "ETH")["status"] == "ok"


# ---- scheduleCancel -----------------------------------------------------------------------------


def test_schedule_cancel_needs_a_million_traded(make_fake):
    fake = make_fake(cum_volume={MASTER.address: 250_000.5})
    ex = exchange(fake)
    result = ex.schedule_cancel(int(time.time() * 1000) + 60_000)
    assert result == {"status": "err", "response": "Cannot set scheduled cancel time until enough volume traded. "
                                                   "Required: $1000000. Traded: $250000.5."}
    fake.set_volume(1_000_000)
    assert ex.schedule_cancel(int(time.time() * 1000) + 60_000)["status"] == "ok"
    assert fake.dead_man_deadline() == pytest.approx(time.time() + 60, abs=2)


def test_schedule_cancel_cancels_trigger_orders_too_and_fires_10_times_a_day(make_fake):
    fake = make_fake(cum_volume={MASTER.address: 2_000_000})
    fake.advance(_seconds_to_next_utc_midnight(fake) + 3600)  # 01:00 UTC: the day won't roll over mid-test
    ex = exchange(fake)
    ex.order("ETH", True, 1.0, 2000.0, {"limit": {"tif": "Ioc"}})
    ex.order("ETH", True, 0.1, 1800.0, {"limit": {"tif": "Gtc"}})
    stop = ex.order("ETH", False, 1.0, 1700.0, {"trigger": {"isMarket": True, "triggerPx": 1750.0, "tpsl": "sl"}},
                    reduce_only=True)
    assert "resting" in stop["response"]["data"]["statuses"][0], stop
    for fired in range(10):
        assert ex.schedule_cancel(int(fake.clock.now() * 1000) + 6_000)["status"] == "ok"
        if fired == 0:
            rows = Info(fake.url, skip_ws=True).frontend_open_orders(MASTER.address)
            assert sorted(r["orderType"] for r in rows) == ["Limit", "Stop Market"]
            (trigger,) = [r for r in rows if r["isTrigger"]]
            assert trigger["triggerCondition"] == "Price below 1750" and trigger["triggerPx"] == "1750"
        fake.advance(7)
        if fired == 0:
            statuses = {o.order_type: o.status for o in fake.orders()}
            assert statuses == {"Limit": "scheduledCancel", "Stop Market": "scheduledCancel"}
    refused = ex.schedule_cancel(int(fake.clock.now() * 1000) + 6_000)
    assert refused["status"] == "err" and "10 times today" in refused["response"]
    assert fake.position("ETH") == pytest.approx(1.0)  # positions are left as they are
    fake.advance(_seconds_to_next_utc_midnight(fake) + 1)  # the trigger count resets at 00:00 UTC
    assert ex.schedule_cancel(int(fake.clock.now() * 1000) + 6_000)["status"] == "ok"


def _seconds_to_next_utc_midnight(fake) -> float:
    now = fake.clock.now()
    return 86_400 - now % 86_400


# ---- the book -----------------------------------------------------------------------------------


def test_an_ioc_takes_only_the_depth_inside_its_limit(make_fake):
    # ~1 BTC a level; no block while the test reads the book (blocks bring the depth back)
    fake = make_fake(books={"BTC": BookShape(levels=3, spacing=0.001, notional=30_135)}, block_seconds=3600)
    ex = exchange(fake)
    book = Info(fake.url, skip_ws=True).l2_snapshot("BTC")
    asks = book["levels"][1]
    assert len(asks) == 3 and len(book["levels"][0]) == 3
    limit = float(asks[1]["px"])  # two levels inside the limit
    result = ex.order("BTC", True, 5.0, limit, {"limit": {"tif": "Ioc"}})
    filled = result["response"]["data"]["statuses"][0]["filled"]
    expected = float(asks[0]["sz"]) + float(asks[1]["sz"])
    assert float(filled["totalSz"]) == pytest.approx(expected)
    avg = (float(asks[0]["px"]) * float(asks[0]["sz"]) + float(asks[1]["px"]) * float(asks[1]["sz"])) / expected
    assert float(filled["avgPx"]) == pytest.approx(avg)
    assert fake.position("BTC") == pytest.approx(expected)
    below = ex.order("BTC", True, 0.01, 30_000.0, {"limit": {"tif": "Ioc"}})
    assert error_of(below) == "Order could not immediately match against any resting orders. asset=0"
    assert error_of(ex.order("BTC", True, 0.0001, 30_200.0, {"limit": {"tif": "Ioc"}})) == \
        "Order must have minimum value of $10. asset=0"
    assert error_of(ex.order("BTC", True, 0.01, 60_000.0, {"limit": {"tif": "Gtc"}})) == \
        "Order price cannot be more than 80% away from the reference price. asset=0"
    # A marketable GTC takes what it can and rests the rest (until the book comes back).
    fake.set_mark("BTC", 30_135.0)
    gtc = ex.order("BTC", True, 4.0, float(asks[2]["px"]), {"limit": {"tif": "Gtc"}})
    assert "resting" in gtc["response"]["data"]["statuses"][0]
    (order,) = [o for o in fake.orders() if o.tif == "Gtc"]
    assert 0 < order.size < 4.0 and order.status == "open"


# ---- liquidation --------------------------------------------------------------------------------


def test_a_large_position_is_liquidated_in_steps(make_fake):
    fake = make_fake(equity=20_000)
    ex = exchange(fake)
    ex.update_leverage(40, "BTC")
    result = ex.order("BTC", True, 20.0, 30_300.0, {"limit": {"tif": "Ioc"}})  # ~$600k at 40x
    assert "filled" in result["response"]["data"]["statuses"][0], result
    size = fake.position("BTC")
    assert size == pytest.approx(20.0)
    fake.set_mark("BTC", 29_350.0)  # account value < maintenance margin, even after a 20% step
    # Still liquidatable inside the 30 s cooldown: the next market liquidation takes the rest.
    wait_until(lambda: fake.position("BTC") == 0, what="the rest of the position to be liquidated")
    liquidations = [f for f in fake.fills() if "liquidation" in f]
    starts = [float(f["startPosition"]) for f in liquidations]
    assert starts[0] == pytest.approx(size)
    second = next(i for i, f in enumerate(liquidations) if abs(float(f["startPosition"]) - 0.8 * size) < 1e-6)
    assert sum(float(f["sz"]) for f in liquidations[:second]) == pytest.approx(0.2 * size)
    assert sum(float(f["sz"]) for f in liquidations[second:]) == pytest.approx(0.8 * size)
    assert liquidations[0]["liquidation"]["liquidatedUser"] == MASTER.address.lower()


# ---- meta, tiers, HIP-3 --------------------------------------------------------------------------


def test_btc_takes_40x_and_is_refused_above_its_tier(make_fake):
    fake = make_fake(equity=10_000_000)
    sdk = Info(fake.url, skip_ws=True)
    meta = sdk.meta()
    btc = meta["universe"][0]
    assert (btc["name"], btc["szDecimals"], btc["maxLeverage"], btc["marginTableId"]) == ("BTC", 5, 40, 56)
    tables = dict((i, t) for i, t in meta["marginTables"])
    assert tables[56]["marginTiers"] == [{"lowerBound": "0.0", "maxLeverage": 40},
                                         {"lowerBound": "150000000.0", "maxLeverage": 20}]
    assert meta["universe"][1]["marginTableId"] == 55 and meta["universe"][5]["maxLeverage"] == 20
    ex = exchange(fake)
    assert ex.update_leverage(40, "BTC")["status"] == "ok"
    assert ex.update_leverage(41, "BTC")["status"] == "err"
    ok = ex.order("BTC", True, 100.0, 29_000.0, {"limit": {"tif": "Gtc"}})  # $2.9M at 40x
    assert "resting" in ok["response"]["data"]["statuses"][0], ok
    too_big = ex.order("BTC", True, 5200.0, 29_000.0, {"limit": {"tif": "Gtc"}})  # $150.8M at 40x
    assert error_of(too_big) == "Order would cause position to exceed margin tier limit at current leverage. asset=0"


def test_a_hip3_market_has_its_asset_id_and_takes_isolated_margin_only(make_fake):
    fake = make_fake()
    dexes = info(fake, {"type": "perpDexs"})
    assert dexes[0] is None and dexes[1]["name"] == "xyz"
    meta = info(fake, {"type": "meta", "dex": "xyz"})
    tsla = meta["universe"][0]
    assert tsla["name"] == "xyz:TSLA" and tsla["onlyIsolated"] is True and tsla["marginMode"] == "strictIsolated"
    assert "xyz:TSLA" in info(fake, {"type": "allMids", "dex": "xyz"}) and "xyz:TSLA" not in info(fake, {"type": "allMids"})
    ex = exchange(fake)
    assert ex.info.name_to_asset("xyz:TSLA") == 110_000
    refused = ex.order("xyz:TSLA", True, 1.0, 260.0, {"limit": {"tif": "Ioc"}})
    assert error_of(refused) == "Cross margin is not allowed for this asset. asset=110000"
    assert ex.update_leverage(5, "xyz:TSLA")["response"] == "Cross margin is not allowed for this asset."
    assert ex.update_leverage(5, "xyz:TSLA", is_cross=False)["status"] == "ok"
    assert "filled" in ex.order("xyz:TSLA", True, 1.0, 260.0, {"limit": {"tif": "Ioc"}})["response"]["data"]["statuses"][0]
    xyz = info(fake, {"type": "clearinghouseState", "user": MASTER.address, "dex": "xyz"})
    (row,) = xyz["assetPositions"]
    assert row["position"]["coin"] == "xyz:TSLA" and row["position"]["leverage"]["type"] == "isolated"
    assert info(fake, {"type": "clearinghouseState", "user": MASTER.address})["assetPositions"] == []


# ---- triggers, caps, small facts ----------------------------------------------------------------


def test_a_normal_tpsl_stop_waits_for_its_entry_then_fires_reduce_only(make_fake):
    fake = make_fake()
    ex = exchange(fake)
    entry = {"coin": "ETH", "is_buy": True, "sz": 1.0, "limit_px": 1890.0, "order_type": {"limit": {"tif": "Gtc"}},
             "reduce_only": False}
    stop = {"coin": "ETH", "is_buy": False, "sz": 1.0, "limit_px": 1700.0, "reduce_only": True,
            "order_type": {"trigger": {"isMarket": True, "triggerPx": 1800.0, "tpsl": "sl"}}}
    result = ex.bulk_orders([entry, stop], grouping="normalTpsl")
    assert result["response"]["data"]["statuses"][1] == "waitingForFill", result
    fake.set_mark("ETH", 1890.0)  # the entry fills, its stop becomes live
    assert fake.position("ETH") == pytest.approx(1.0)
    fake.set_mark("ETH", 1799.0)
    assert fake.position("ETH") == 0
    (child,) = [o for o in fake.orders() if o.order_type == "Stop Market" or o.reduce_only]
    assert child.status == "filled"
    bad = ex.order("ETH", False, 1.0, 1700.0, {"trigger": {"isMarket": True, "triggerPx": 1850.0, "tpsl": "sl"}})
    assert error_of(bad).startswith("Reduce only order") or error_of(bad) == "Invalid TP/SL price. asset=1"


def test_the_open_order_cap(make_fake):
    fake = make_fake(equity=10_000_000)
    ex = exchange(fake)
    ex.order("ETH", True, 1.0, 2000.0, {"limit": {"tif": "Ioc"}})
    for batch in range(10):
        orders = [{"coin": "ETH", "is_buy": True, "sz": 0.02, "limit_px": 1000.0 + batch * 10 + i / 10,
                   "order_type": {"limit": {"tif": "Gtc"}}, "reduce_only": False} for i in range(100)]
        statuses = ex.bulk_orders(orders)["response"]["data"]["statuses"]
        assert all("resting" in s for s in statuses), statuses[:3]
    refused = ex.order("ETH", True, 0.02, 1400.0, {"limit": {"tif": "Gtc"}})
    assert error_of(refused).startswith("Too many open orders") and error_of(refused).endswith("asset=1")
    # docs: at 1000 open orders reduce-only and trigger orders are refused too; an IOC rests nothing.
    assert error_of(ex.order("ETH", False, 0.5, 1700.0, {"trigger": {"isMarket": True, "triggerPx": 1750.0,
                                                                       "tpsl": "sl"}}, reduce_only=True)) \
        .startswith("Too many open orders")
    assert "filled" in ex.order("ETH", False, 0.5, 1800.0, {"limit": {"tif": "Ioc"}}, reduce_only=True)[
        "response"]["data"]["statuses"][0]


def test_order_status_and_the_websocket_order_shape(make_fake):
    fake = make_fake()
    ex = exchange(fake)
    resting = ex.order("ETH", True, 0.1, 1800.0, {"limit": {"tif": "Gtc"}})
    oid = resting["response"]["data"]["statuses"][0]["resting"]["oid"]
    status = info(fake, {"type": "orderStatus", "user": MASTER.address, "oid": oid})
    assert status["status"] == "order" and status["order"]["status"] == "open"
    assert status["order"]["order"]["sz"] == "0.1" and status["order"]["order"]["tif"] == "Gtc"
    assert info(fake, {"type": "orderStatus", "user": MASTER.address, "oid": 999_999}) == {"status": "unknownOid"}
    (update,) = [o.update() for o in fake.orders()]
    assert "tif" not in update["order"] and "reduceOnly" not in update["order"]
