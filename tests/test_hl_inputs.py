"""Whatever a client sends to `/hl`, the answer is the venue's kind of answer (a 200 with
`status: err`, or a 422 naming what it could not read), never a crash and never a 500, and a
payload that is not exactly what a registered bot signed reaches nothing."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hyperliquid.utils.signing import get_timestamp_ms, order_request_to_order_wire, order_wires_to_order_action, \
    sign_l1_action

from tests.hl_gateway import BETA, start

# Any JSON a client could sign (msgpack, hence the SDK, signs integers in [-2^63, 2^64) only).
JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                    max_leaves=8)
FIELDS = ["a", "b", "p", "s", "r", "t", "c"]


@pytest.fixture(scope="module")
def hl(tmp_path_factory):
    engine, gateway = start(tmp_path_factory.mktemp("hl-inputs"))
    yield gateway
    engine.__exit__(None, None, None)


def _signed(action: dict) -> dict:
    nonce = get_timestamp_ms()
    return {"action": action, "nonce": nonce, "signature": sign_l1_action(BETA, action, None, nonce, None, False),
            "vaultAddress": None, "expiresAfter": None}


def _order() -> dict:
    wire = order_request_to_order_wire({"coin": "BTC", "is_buy": True, "sz": 0.01, "limit_px": 1000.0,
                                        "order_type": {"limit": {"tif": "Gtc"}}, "reduce_only": False}, 0)
    return order_wires_to_order_action([wire], None)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FIELDS), value=JSON)
def test_a_bot_signed_order_with_any_field_changed_is_refused_cleanly(hl, field, value):
    action = _order()
    action["orders"][0][field] = value
    answer = httpx.post(hl.url + "/exchange", json=_signed(action))  # signed as it is: the signature holds
    assert answer.status_code in (200, 422), answer.text
    if answer.status_code == 422:
        assert answer.text.startswith("Failed to deserialize the JSON body into the target type: action.orders[0]")
    else:
        body = answer.json()
        statuses = body["response"]["data"]["statuses"] if body["status"] == "ok" else [{"error": body["response"]}]
        # a change that still makes a valid order (another price, no cloid, ...) is an order like any other
        assert set(statuses[0]) <= {"resting", "filled", "error"} and len(statuses[0]) == 1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.dictionaries(st.sampled_from(["action", "nonce", "signature", "vaultAddress", "expiresAfter"]),
                               JSON, max_size=5))
def test_any_exchange_body_gets_a_venue_answer_never_a_500(hl, payload):
    answer = httpx.post(hl.url + "/exchange", json=payload)
    assert answer.status_code in (200, 422), answer.text
    if answer.status_code == 200:
        assert answer.json()["status"] == "err"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=JSON)
def test_any_info_body_gets_a_venue_answer_never_a_500(hl, body):
    answer = httpx.post(hl.url + "/info", json=body)
    assert answer.status_code in (200, 422), answer.text
