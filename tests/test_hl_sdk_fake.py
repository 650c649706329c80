"""The official SDK as a bot behind perpguard, with Hyperliquid (the strict fake venue, which
checks every signature) on the other side: the bot's key never reaches the venue; what passes
the gate reaches it signed by perpguard's own agent, with the bot's cloid kept."""

from __future__ import annotations

import json

import pytest
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.types import Cloid

from tests.engine_server import EngineThread
from tests.hl_gateway import BETA, POLICIES, STRANGER, HlGateway, hl_on_fake  # noqa: F401 (the fixture)


@pytest.fixture
def hl(hl_on_fake):
    return hl_on_fake


def _orders_sent(fake) -> list:
    return [a for a in fake.actions("order") if a.action.get("grouping") == "na"]


def test_a_bot_s_orders_reach_the_venue_signed_by_perpguard_s_agent_with_the_bot_s_cloid(hl, fake):
    from fake_hyperliquid.harness import AGENT, MASTER

    assert hl.account == MASTER.address.lower()
    bot, info = Exchange(BETA, hl.url, account_address=hl.account), Info(hl.url, skip_ws=True)
    mid = float(info.all_mids()["BTC"])
    cloid = Cloid.from_str("0x" + "56" * 16)
    placed = bot.order("BTC", True, 0.01, round(mid * 0.9), {"limit": {"tif": "Gtc"}}, cloid=cloid)
    oid = placed["response"]["data"]["statuses"][0]["resting"]["oid"]
    (sent,) = _orders_sent(fake)
    assert sent.signer == AGENT.address.lower()  # re-signed: the venue never saw the bot's key
    assert sent.action["orders"][0]["c"] == cloid.to_raw()
    assert [o.oid for o in fake.orders(cloid=cloid.to_raw()) if o.status == "open"] == [oid]
    assert [o["oid"] for o in info.open_orders(hl.account)] == [oid]  # /hl/info passes the venue's own answer

    assert bot.cancel("BTC", oid)["response"]["data"]["statuses"] == ["success"]
    assert [o.status for o in fake.orders(cloid=cloid.to_raw())] == ["canceled"]

    filled = bot.market_open("BTC", True, 0.01)
    assert filled["response"]["data"]["statuses"][0]["filled"]["totalSz"] == "0.01"
    assert fake.position("BTC") == pytest.approx(0.01)
    (position,) = info.user_state(hl.account)["assetPositions"]
    assert float(position["position"]["szi"]) == pytest.approx(0.01)


def test_what_the_gate_or_the_signature_check_refuses_never_reaches_the_venue(hl, fake):
    info = Info(hl.url, skip_ws=True)
    mid = float(info.all_mids()["BTC"])
    denied = Exchange(BETA, hl.url, account_address=hl.account).order("BTC", True, 1.0, round(mid * 1.01),
                                                                      {"limit": {"tif": "Ioc"}})
    assert denied["response"]["data"]["statuses"][0]["error"].startswith("perpguard: POLICY_DENIED: ")
    stranger = Exchange(STRANGER, hl.url, account_address=hl.account).order("BTC", True, 0.01, round(mid * 1.01),
                                                                            {"limit": {"tif": "Ioc"}})
    assert stranger["response"] == f"User or API Wallet {STRANGER.address.lower()} does not exist."
    withdrawal = Exchange(BETA, hl.url, account_address=hl.account).withdraw_from_bridge(10.0, BETA.address)
    assert withdrawal["status"] == "err"
    assert _orders_sent(fake) == [] and fake.actions("withdraw3") == []
    assert fake.position("BTC") == 0


def test_the_venue_s_refusal_reaches_the_bot_in_the_venue_s_words(hl, fake):
    bot, info = Exchange(BETA, hl.url, account_address=hl.account), Info(hl.url, skip_ws=True)
    mid = float(info.all_mids()["BTC"])
    # a post-only buy above the book would match at once: the venue refuses it
    refused = bot.order("BTC", True, 0.01, round(mid * 1.05), {"limit": {"tif": "Alo"}})
    (status,) = refused["response"]["data"]["statuses"]
    assert status["error"].startswith("Post only order would have immediately matched")
    assert [o for o in fake.orders() if o.status == "open"] == []


CCXT_BUILDER = "0x6530512a6c89c7cfcebc3ba7fcd9ada5f30827a6"  # the builder ccxt adds to every order


@pytest.mark.parametrize("allowlisted", [False, True])
def test_a_builder_fee_reaches_the_venue_only_for_an_allowlisted_builder(fake, tmp_path, allowlisted):
    from fake_hyperliquid.harness import engine_config

    policies = tmp_path / "policies.json"
    policies.write_text(json.dumps(POLICIES))
    extra = {"engine.hl_builders": [CCXT_BUILDER]} if allowlisted else {}
    with EngineThread(tmp_path, policies=policies, config_file=engine_config(fake, tmp_path), **extra) as engine:
        gateway = HlGateway(engine)
        gateway.add_bot("beta", BETA.address)
        bot = Exchange(BETA, gateway.url, account_address=gateway.account)
        mid = float(Info(gateway.url, skip_ws=True).all_mids()["BTC"])
        placed = bot.order("BTC", True, 0.01, round(mid * 0.9), {"limit": {"tif": "Gtc"}},
                           builder={"b": CCXT_BUILDER, "f": 10})
        assert "resting" in placed["response"]["data"]["statuses"][0]
    (sent,) = _orders_sent(fake)
    assert sent.action.get("builder") == ({"b": CCXT_BUILDER, "f": 10} if allowlisted else None)


MARGIN_FLOOR = {"id": "buffer", "type": "MIN_MARGIN_BUFFER",
                "rules": {"minBuffer": 0.5, "warnBuffer": 0.3, "panicBuffer": 0.1, "targetBuffer": 0.6}}


def test_a_held_position_s_new_leverage_is_known_at_once_so_setting_it_back_reaches_the_venue(fake, tmp_path):
    """ccxt sets the leverage before every order, and perpguard answers one the position already
    has without a venue action. That must compare with the venue's setting after a change, not
    the one read before it: 5x, then 3x, then 5x again leaves the venue at 5x, not 3x."""
    from fake_hyperliquid.harness import engine_config

    with EngineThread(tmp_path, config_file=engine_config(fake, tmp_path)) as engine:
        gateway = HlGateway(engine)
        gateway.add_bot("beta", BETA.address)
        bot = Exchange(BETA, gateway.url, account_address=gateway.account)
        venue_leverage = lambda: fake.call(lambda: fake.venue.account_of(None).leverage["BTC"])  # noqa: E731
        assert bot.update_leverage(5, "BTC")["status"] == "ok"
        assert "filled" in bot.market_open("BTC", True, 0.1)["response"]["data"]["statuses"][0]
        assert bot.update_leverage(3, "BTC")["status"] == "ok"
        assert venue_leverage() == 3
        assert bot.update_leverage(5, "BTC")["status"] == "ok"
        assert venue_leverage() == 5
        assert engine.service.engine.book.position("BTC").leverage == 5


def test_isolated_margin_goes_in_freely_and_out_only_above_the_buffer_floor(fake, tmp_path):
    from fake_hyperliquid.harness import engine_config

    policies = tmp_path / "policies.json"
    policies.write_text(json.dumps(POLICIES + [MARGIN_FLOOR]))
    with EngineThread(tmp_path, policies=policies, config_file=engine_config(fake, tmp_path)) as engine:
        gateway = HlGateway(engine)
        gateway.add_bot("beta", BETA.address)
        bot = Exchange(BETA, gateway.url, account_address=gateway.account)
        assert bot.update_leverage(5, "BTC", is_cross=False)["status"] == "ok"
        assert "filled" in bot.market_open("BTC", True, 0.1)["response"]["data"]["statuses"][0]
        changes = len(fake.actions("updateLeverage"))
        assert bot.update_leverage(5, "BTC", is_cross=False)["status"] == "ok"  # ccxt's before every order
        assert len(fake.actions("updateLeverage")) == changes  # the position has it: nothing spent at the venue
        margin = lambda: fake.call(lambda: fake.venue.account_of(None).positions["BTC"].margin)  # noqa: E731
        opened = margin()
        assert bot.update_isolated_margin(50, "BTC") == {"status": "ok", "response": {"type": "default"}}
        assert margin() == pytest.approx(opened + 50)

        taken = bot.update_isolated_margin(-(opened + 10), "BTC")  # would leave ~40 USD against ~38 of maintenance
        assert taken["status"] == "err" and taken["response"].startswith("perpguard: POLICY_DENIED: taking ")
        assert "MIN_MARGIN_BUFFER minBuffer 0.5" in taken["response"]
        assert margin() == pytest.approx(opened + 50)  # nothing reached the venue

        assert bot.update_isolated_margin(-40, "BTC")["status"] == "ok"  # above the floor and the venue's own
        assert margin() == pytest.approx(opened + 10)
        below_venue_floor = bot.update_isolated_margin(-100, "BTC")  # the buffer allows it; the venue does not
        assert below_venue_floor == {"status": "err", "response": "Insufficient margin for reduction of isolated margin."}
