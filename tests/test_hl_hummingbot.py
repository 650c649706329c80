"""What Hummingbot's Hyperliquid perpetual connector needs of `/hl`, found by running it
(hummingbot 20260922, `HyperliquidPerpetualDerivative` in api_wallet mode, its REST and
websocket URLs pointed at perpguard on paper). Hummingbot is not a dev dependency (its
dependencies need Python 3.12), so these tests send its requests as it sends them, naming the
connector code that sends them:

- at start it reads `allPerpMetas` (`_fetch_and_cache_hip3_market_data`); a refusal there leaves
  it without markets;
- it checks that its key is an approved agent of the account (`_verify_key_authority`:
  `extraAgents`), and stays not ready until it is;
- it reads every websocket frame as JSON (`_process_event_message` calls `.get` on each);
- it subscribes to its fills as `{"type": "user"}` and counts fills by trade id, so a fill
  pushed there must carry the id `/info userFills` gives it.
"""

from __future__ import annotations

import json
import time

import eth_account
import httpx
from hyperliquid.exchange import Exchange
from websockets.sync.client import connect

from tests.hl_gateway import ALPHA, BETA, hl  # noqa: F401 (the fixture)

READER = eth_account.Account.from_key("0x" + "d4" * 32)  # a bot registered to read only


def info(hl, body: dict) -> httpx.Response:
    return httpx.post(hl.url + "/info", json=body, timeout=10)


def test_all_perp_metas_lists_the_native_dex_s_meta(hl):
    answer = info(hl, {"type": "allPerpMetas"})
    assert answer.status_code == 200
    assert answer.json() == [info(hl, {"type": "meta"}).json()]


def test_extra_agents_lists_the_bots_that_may_trade_as_the_account_s_api_wallets(hl):
    hl.add_bot("watcher", READER.address, scopes="read")  # reads only: no agent
    now_ms = int(time.time() * 1000)
    agents = info(hl, {"type": "extraAgents", "user": hl.account}).json()
    assert sorted((a["name"], a["address"]) for a in agents) == \
        [("alpha", ALPHA.address.lower()), ("beta", BETA.address.lower())]
    assert all(a["validUntil"] > now_ms + 170 * 24 * 3600 * 1000 for a in agents)
    assert info(hl, {"type": "extraAgents", "user": "0x" + "ee" * 20}).json() == []  # another account: none


def test_a_string_answer_is_json(hl):
    answer = info(hl, {"type": "userAbstraction", "user": hl.account})
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == "disabled"


def test_every_frame_is_json_and_fills_come_on_user_with_the_trade_id_info_gives_them(hl):
    with connect(hl.url.replace("http", "ws", 1) + "/ws") as ws:
        subscription = {"type": "user", "user": hl.account}
        ws.send(json.dumps({"method": "subscribe", "subscription": subscription}))
        first = json.loads(ws.recv(timeout=10))  # no greeting: the subscription's answer comes first
        assert first == {"channel": "subscriptionResponse", "data": {"method": "subscribe", "subscription": subscription}}
        bot = Exchange(BETA, hl.url, account_address=hl.account)
        status = bot.market_open("BTC", True, 0.01)["response"]["data"]["statuses"][0]
        pushed = json.loads(ws.recv(timeout=10))
    assert pushed["channel"] == "user"
    (fill,) = pushed["data"]["fills"]
    assert fill["oid"] == status["filled"]["oid"]
    (listed,) = [f for f in info(hl, {"type": "userFills", "user": hl.account}).json() if f["oid"] == fill["oid"]]
    assert (fill["tid"], fill["hash"], fill["fee"]) == (listed["tid"], listed["hash"], listed["fee"])
