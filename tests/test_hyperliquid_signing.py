"""The fast L1 signing path against the official SDK as the oracle: the same signature, byte
for byte, for any order, cancel or batch, vault or not, expiry or not, mainnet or testnet;
and the connector's signer posts exactly the payload the SDK's `Exchange` would have."""

import json
from decimal import Decimal
from unittest import mock

import hypothesis.strategies as st
from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import given, settings
from hyperliquid.exchange import Exchange
from hyperliquid.utils.constants import MAINNET_API_URL, TESTNET_API_URL
from hyperliquid.utils.signing import (
    construct_phantom_agent, l1_payload, order_request_to_order_wire, order_wires_to_order_action,
    sign_l1_action,
)
from hyperliquid.utils.types import Cloid

from engine.venues.connector import OrderRequest, Trigger
from engine.venues.hyperliquid.fast_signing import action_hash, keccak256, l1_digest, sign_l1_action_fast, signing_key
from engine.venues.hyperliquid.signer import ActionSigner, cloid_for
from fake_hyperliquid.signatures import recover_signer

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
COINS = ["BTC", "ETH", "SOL", "HYPE", "kPEPE", "DOGE"]
META = {"universe": [{"name": c, "szDecimals": d} for c, d in zip(COINS, [5, 4, 2, 2, 0, 0])]}
AGENT = Account.from_key("0x" + "a7" * 32)

keys = st.integers(1, SECP256K1_N - 1).map(lambda k: Account.from_key(k.to_bytes(32, "big")))
addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
cloids = st.binary(min_size=16, max_size=16).map(lambda b: Cloid.from_str("0x" + b.hex()))
assets = st.one_of(st.integers(0, 300), st.integers(10_000, 10_500))  # perps, spot
millis = st.integers(0, 2**64 - 1)


@st.composite
def wire_numbers(draw) -> float:
    """A size or price the SDK can wire (it refuses what it would round): up to 8 decimals and
    15 significant figures, from 1e-8 to 1e7."""
    decimals = draw(st.integers(0, 8))
    return float(Decimal(draw(st.integers(1, min(10**15, 10 ** (7 + decimals)) - 1))).scaleb(-decimals))


order_types = st.one_of(
    st.sampled_from(["Gtc", "Ioc", "Alo"]).map(lambda tif: {"limit": {"tif": tif}}),
    st.builds(lambda px, market, tpsl: {"trigger": {"triggerPx": px, "isMarket": market, "tpsl": tpsl}},
              wire_numbers(), st.booleans(), st.sampled_from(["tp", "sl"])),
)


@st.composite
def order_wires(draw) -> dict:
    """One order wire exactly as the SDK's `order_request_to_order_wire` writes it."""
    request = {"coin": "", "is_buy": draw(st.booleans()), "sz": draw(wire_numbers()),
               "limit_px": draw(wire_numbers()), "order_type": draw(order_types), "reduce_only": draw(st.booleans())}
    cloid = draw(st.none() | cloids)
    if cloid is not None:
        request["cloid"] = cloid
    return order_request_to_order_wire(request, draw(assets))


@st.composite
def order_actions(draw) -> dict:
    """One order or a batch of up to 8, with any grouping, with or without a builder fee."""
    grouping = draw(st.sampled_from(["na", "normalTpsl", "positionTpsl"]))
    builder = draw(st.none() | st.builds(lambda b, f: {"b": b, "f": f}, addresses, st.integers(0, 100)))
    return order_wires_to_order_action(draw(st.lists(order_wires(), min_size=1, max_size=8)), builder, grouping)


cancels = st.lists(st.builds(lambda a, o: {"a": a, "o": o}, assets, st.integers(0, 2**63)), min_size=1, max_size=8)
cancels_by_cloid = st.lists(st.builds(lambda a, c: {"asset": a, "cloid": c.to_raw()}, assets, cloids),
                            min_size=1, max_size=8)
actions = st.one_of(
    order_actions(),
    cancels.map(lambda c: {"type": "cancel", "cancels": c}),
    cancels_by_cloid.map(lambda c: {"type": "cancelByCloid", "cancels": c}),
    st.just({"type": "scheduleCancel"}) | millis.map(lambda t: {"type": "scheduleCancel", "time": t}),
    st.builds(lambda a, x, lev: {"type": "updateLeverage", "asset": a, "isCross": x, "leverage": lev},
              assets, st.booleans(), st.integers(1, 50)),
)


@settings(max_examples=400, deadline=None)
@given(wallet=keys, action=actions, vault=st.none() | addresses, nonce=millis,
       expires_after=st.none() | millis, mainnet=st.booleans())
def test_fast_signatures_are_the_sdks_byte_for_byte(wallet, action, vault, nonce, expires_after, mainnet):
    expected = sign_l1_action(wallet, action, vault, nonce, expires_after, mainnet)
    fast = sign_l1_action_fast(signing_key(wallet), action, vault, nonce, expires_after, mainnet)
    assert json.dumps(fast) == json.dumps(expected)  # same keys, types and hex spelling, not only equal values


@settings(max_examples=50, deadline=None)
@given(wallet=keys, action=order_actions(), nonce=millis, mainnet=st.booleans())
def test_the_digest_is_eth_accounts_eip712_encoding(wallet, action, nonce, mainnet):
    connection_id = action_hash(action, None, nonce, None)
    signable = encode_typed_data(full_message=l1_payload(construct_phantom_agent(connection_id, mainnet)))
    assert l1_digest(connection_id, mainnet) == keccak256(b"\x19" + signable.version + signable.header + signable.body)


def test_any_spelling_of_the_key_signs_alike():
    action = {"type": "scheduleCancel", "time": 1_700_000_000_000}
    expected = sign_l1_action(AGENT, action, None, 1_700_000_000_000, None, False)
    for key in (AGENT, AGENT.key, AGENT.key.hex(), "0x" + AGENT.key.hex().removeprefix("0x"), signing_key(AGENT)):
        assert sign_l1_action_fast(key, action, None, 1_700_000_000_000, None, False) == expected


# ---- the connector's signer against the SDK's Exchange ------------------------------------


class _PayloadExchange(Exchange):
    """The SDK's Exchange, returning the payload it would have posted."""

    def post(self, url_path, payload=None):
        return payload


def _sdk_exchange(mainnet: bool, vault: str | None = None) -> _PayloadExchange:
    return _PayloadExchange(AGENT, MAINNET_API_URL if mainnet else TESTNET_API_URL, meta=META, vault_address=vault,
                            spot_meta={"universe": [], "tokens": []})


def _as_sdk_would(exchange: _PayloadExchange, nonce: int, expires_after: int | None, build) -> bytes:
    """The JSON the SDK posts for `build(exchange)` signed with this nonce and expiry."""
    exchange.set_expires_after(expires_after)
    with mock.patch("hyperliquid.exchange.get_timestamp_ms", return_value=nonce):
        return json.dumps(build(exchange)).encode()


def _on_increments(digits: int, decimals: int) -> Decimal:
    return Decimal(digits).scaleb(-decimals)


order_requests = st.builds(
    OrderRequest, st.sampled_from(COINS), st.sampled_from(["buy", "sell"]),
    st.builds(_on_increments, st.integers(1, 10**9), st.integers(0, 5)),
    st.builds(_on_increments, st.integers(1, 99_999), st.integers(0, 6)),
    st.sampled_from(["Gtc", "Ioc", "Alo"]), st.booleans(), st.text(min_size=1, max_size=40),
)


@settings(max_examples=150, deadline=None)
@given(order=order_requests, expires_after=st.none() | st.integers(1_700_000_000_000, 2_000_000_000_000),
       mainnet=st.booleans(), vault=st.none() | addresses)
def test_an_order_payload_is_the_one_the_sdk_would_post(order, expires_after, mainnet, vault):
    # vault: a subaccount or vault traded as `Exchange(..., vault_address=...)` trades it
    signer = ActionSigner(AGENT, vault or "0x" + "4d" * 20, mainnet, META, vault_address=vault)
    cloid = cloid_for(order.client_id)
    ours = signer.order(order, cloid, expires_after)
    expected = _as_sdk_would(_sdk_exchange(mainnet, vault), ours["nonce"], expires_after, lambda ex: ex.order(
        order.coin, order.side == "buy", float(order.size), float(order.limit_px), {"limit": {"tif": order.tif}},
        reduce_only=order.reduce_only, cloid=Cloid.from_str(cloid)))
    assert json.dumps(ours).encode() == expected
    assert recover_signer(ours, mainnet) == AGENT.address.lower()  # and the venue's own check agrees


@settings(max_examples=50, deadline=None)
@given(pairs=st.lists(st.tuples(st.sampled_from(COINS), st.integers(0, 2**53)), min_size=1, max_size=10),
       at_ms=st.none() | st.integers(1_700_000_000_000, 2_000_000_000_000),
       coin=st.sampled_from(COINS), leverage=st.integers(1, 50), cross=st.booleans(), mainnet=st.booleans(),
       vault=st.none() | addresses)
def test_cancel_dead_man_and_leverage_payloads_are_the_sdks(pairs, at_ms, coin, leverage, cross, mainnet, vault):
    signer = ActionSigner(AGENT, vault or "0x" + "4d" * 20, mainnet, META, vault_address=vault)
    exchange = _sdk_exchange(mainnet, vault)
    ours = signer.cancel(pairs)
    assert json.dumps(ours).encode() == _as_sdk_would(
        exchange, ours["nonce"], None, lambda ex: ex.bulk_cancel([{"coin": c, "oid": o} for c, o in pairs]))
    ours = signer.schedule_cancel(at_ms)
    assert json.dumps(ours).encode() == _as_sdk_would(
        exchange, ours["nonce"], None, lambda ex: ex.schedule_cancel(at_ms))
    ours = signer.update_leverage(coin, leverage, cross)
    assert json.dumps(ours).encode() == _as_sdk_would(
        exchange, ours["nonce"], None, lambda ex: ex.update_leverage(leverage, coin, cross))


def test_a_hip3_order_payload_is_the_one_the_sdk_would_post_with_its_perp_dexs():
    perp_dexs = [None, {"name": "xyz", "fullName": "XYZ", "deployer": "0x" + "88" * 20, "oracleUpdater": None}]
    xyz = {"universe": [{"name": "xyz:XYZ100", "szDecimals": 4}, {"name": "xyz:TSLA", "szDecimals": 3}]}
    signer = ActionSigner(AGENT, "0x" + "4d" * 20, False, META, perp_dexs=perp_dexs, dex_metas={"xyz": xyz})
    order = OrderRequest("xyz:TSLA", "sell", Decimal("2.5"), Decimal("431.2"), "Alo", client_id="hip3")
    ours = signer.order(order, cloid_for("hip3"))
    assert ours["action"]["orders"][0]["a"] == 110001  # 100000 + 10000 × 1 (xyz's index in perpDexs) + 1

    class SdkOnTheseAnswers(_PayloadExchange):  # the SDK's Exchange(perp_dexs=...) asks perpDexs and meta(dex)
        def __init__(self):
            with mock.patch("hyperliquid.info.Info.perp_dexs", return_value=perp_dexs), \
                    mock.patch("hyperliquid.info.Info.meta", return_value=xyz):
                super().__init__(AGENT, TESTNET_API_URL, meta=META, spot_meta={"universe": [], "tokens": []},
                                 perp_dexs=["", "xyz"])

    expected = _as_sdk_would(SdkOnTheseAnswers(), ours["nonce"], None, lambda ex: ex.order(
        "xyz:TSLA", False, 2.5, 431.2, {"limit": {"tif": "Alo"}}, cloid=Cloid.from_str(cloid_for("hip3"))))
    assert json.dumps(ours).encode() == expected


def test_nonces_strictly_increase_even_within_one_millisecond():
    signer = ActionSigner(AGENT, "0x" + "4d" * 20, False, META)
    with mock.patch("engine.venues.hyperliquid.signer.time.time", return_value=1_700_000_000.0):
        nonces = [signer.schedule_cancel(None)["nonce"] for _ in range(5)]
    assert nonces == list(range(1_700_000_000_000, 1_700_000_000_005))


# ---- trigger orders and groupings against the SDK's bulk_orders -----------------------------


def _sdk_request(order: OrderRequest, cloid: str) -> dict:
    """The SDK's own OrderRequest for ours, written out by hand (not through our signer)."""
    if order.trigger is None:
        order_type = {"limit": {"tif": order.tif}}
    else:
        order_type = {"trigger": {"triggerPx": float(order.trigger.trigger_px), "isMarket": order.trigger.is_market,
                                  "tpsl": order.trigger.tpsl}}
    return {"coin": order.coin, "is_buy": order.side == "buy", "sz": float(order.size),
            "limit_px": float(order.limit_px), "order_type": order_type, "reduce_only": order.reduce_only,
            "cloid": Cloid.from_str(cloid)}


def _group_as_sdk_would(orders, grouping, mainnet, vault, expires_after=None) -> tuple[bytes, bytes]:
    signer = ActionSigner(AGENT, vault or "0x" + "4d" * 20, mainnet, META, vault_address=vault)
    pairs = [(o, cloid_for(o.client_id)) for o in orders]
    ours = signer.orders(pairs, grouping, expires_after)
    expected = _as_sdk_would(_sdk_exchange(mainnet, vault), ours["nonce"], expires_after, lambda ex: ex.bulk_orders(
        [_sdk_request(o, c) for o, c in pairs], grouping=grouping))
    assert recover_signer(ours, mainnet) == AGENT.address.lower()
    return json.dumps(ours).encode(), expected


@given(market=st.booleans(), mainnet=st.booleans(), vault=st.none() | addresses,
       expires_after=st.none() | st.integers(1_700_000_000_000, 2_000_000_000_000))
@settings(max_examples=20, deadline=None)
def test_a_position_stop_payload_is_the_sdks(market, mainnet, vault, expires_after):
    stop = OrderRequest("ETH", "sell", Decimal("0.5"), Decimal("1539") if market else Decimal("1705.5"),
                        reduce_only=True, client_id="stop-1", trigger=Trigger(Decimal("1710.1"), "sl", market))
    ours, expected = _group_as_sdk_would([stop], "positionTpsl", mainnet, vault, expires_after)
    assert ours == expected
    action = json.loads(ours)["action"]
    assert action["grouping"] == "positionTpsl"
    assert action["orders"][0]["t"] == {"trigger": {"isMarket": market, "triggerPx": "1710.1", "tpsl": "sl"}}
    assert action["orders"][0]["r"] is True and action["orders"][0]["c"] == cloid_for("stop-1")


@given(mainnet=st.booleans(), vault=st.none() | addresses)
@settings(max_examples=20, deadline=None)
def test_a_bracket_payload_is_the_sdks(mainnet, vault):
    entry = OrderRequest("BTC", "buy", Decimal("0.01"), Decimal("31000"), "Ioc", client_id="entry")
    sl = OrderRequest("BTC", "sell", Decimal("0.01"), Decimal("26100"), reduce_only=True, client_id="entry-sl",
                      trigger=Trigger(Decimal("29000"), "sl", True))
    tp = OrderRequest("BTC", "sell", Decimal("0.01"), Decimal("33950"), reduce_only=True, client_id="entry-tp",
                      trigger=Trigger(Decimal("34000.5"), "tp", False))
    ours, expected = _group_as_sdk_would([entry, sl, tp], "normalTpsl", mainnet, vault)
    assert ours == expected
    action = json.loads(ours)["action"]
    assert [list(w["t"]) for w in action["orders"]] == [["limit"], ["trigger"], ["trigger"]]
    assert action["grouping"] == "normalTpsl"


def test_a_single_trigger_order_is_the_sdks_order_with_grouping_na():
    signer = ActionSigner(AGENT, "0x" + "4d" * 20, False, META)
    stop = OrderRequest("SOL", "buy", Decimal("3"), Decimal("27.5"), reduce_only=True, client_id="short-stop",
                        trigger=Trigger(Decimal("25"), "sl", True))
    ours = signer.order(stop, cloid_for("short-stop"))
    expected = _as_sdk_would(_sdk_exchange(False), ours["nonce"], None, lambda ex: ex.order(
        "SOL", True, 3.0, 27.5, {"trigger": {"triggerPx": 25.0, "isMarket": True, "tpsl": "sl"}},
        reduce_only=True, cloid=Cloid.from_str(cloid_for("short-stop"))))
    assert json.dumps(ours).encode() == expected
    assert ours["action"]["grouping"] == "na"
