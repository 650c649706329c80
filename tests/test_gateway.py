"""The gateway over real HTTP on 127.0.0.1, with the engine on the paper exchange and a real
SQLite store: auth, the error shape, tiers, idempotency, the kill switch, the stream."""

from __future__ import annotations

import json

import httpx
import pytest
from websockets.sync.client import connect

from engine.api.client import Client
from engine.api.errors import ApiError
from tests.engine_server import MASTER, EngineThread, seed_policies
from tests.policy_cases import SEED_BODIES

ADMIN = {"X-Master-Password": MASTER}


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    with EngineThread(tmp_path_factory.mktemp("gateway")) as running:
        seed_policies(running, SEED_BODIES)
        yield running


@pytest.fixture
def admin(engine):
    with httpx.Client(base_url=engine.url, headers=ADMIN, timeout=30) as http:
        yield http


def token(admin: httpx.Client, *scopes: str) -> str:
    reply = admin.post("/v1/tokens", json={"name": f"bot-{'-'.join(scopes)}", "scopes": list(scopes)})
    assert reply.status_code == 201
    return reply.json()["token"]


def test_every_seed_body_is_accepted_and_listed(admin):
    listed = {p["type"] for p in admin.get("/v1/policies").json()}
    assert {b["type"] for b in SEED_BODIES} <= listed


def test_an_order_over_a_cap_gets_403_with_the_error_shape(admin):
    reply = admin.post("/v1/orders", json={"market": "BTC-USD", "side": "buy", "notional_usd": 30_000})
    assert reply.status_code == 403
    error = reply.json()["error"]
    assert error["code"] == "POLICY_DENIED" and error["domain"] == "POLICY" and error["retryable"] is False
    assert "PERP_MAX_POSITION_USD" in error["message"] and "25000" in error["message"]
    assert admin.get("/v1/state").json()["positions"] == []


def test_a_12000_usd_order_is_held_with_a_pending_id(admin):
    reply = admin.post("/v1/orders", json={"market": "ETH", "side": "buy", "notional_usd": 12_000})
    assert reply.status_code == 202
    pending = reply.json()["pending"]
    assert pending["tier"] == "DELAY" and pending["execute_at"] > pending["created_at"]
    assert pending["id"] in {p["id"] for p in admin.get("/v1/pending").json()}
    assert admin.post(f"/v1/pending/{pending['id']}/cancel").json()["status"] == "CANCELLED"


def test_a_small_order_is_sent_and_the_same_client_id_gives_one_order(admin):
    order = {"market": "SOL", "side": "buy", "notional_usd": 500, "client_id": "once-1"}
    first = admin.post("/v1/orders", json=order)
    again = admin.post("/v1/orders", json=order)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    sol = [p for p in admin.get("/v1/state").json()["positions"] if p["coin"] == "SOL"]
    assert len(sol) == 1 and sol[0]["notional"] == pytest.approx(500, rel=0.05)  # one fill, not two


def test_dry_run_answers_without_acting(admin):
    reply = admin.post("/v1/orders", json={"market": "ETH", "side": "sell", "notional_usd": 900, "dry_run": True})
    assert reply.status_code == 200 and reply.json()["status"] == "dry_run"
    assert not [p for p in admin.get("/v1/state").json()["positions"] if p["coin"] == "ETH"]


def test_a_token_without_trade_gets_403_and_a_wrong_password_401(engine, admin):
    reader = token(admin, "read")
    reply = httpx.post(f"{engine.url}/v1/orders", headers={"Authorization": f"Bearer {reader}"},
                       json={"market": "BTC", "side": "buy", "notional_usd": 100})
    assert reply.status_code == 403 and reply.json()["error"]["code"] == "FORBIDDEN"
    assert httpx.get(f"{engine.url}/v1/state", headers={"Authorization": f"Bearer {reader}"}).status_code == 200
    wrong = httpx.post(f"{engine.url}/v1/orders", headers={"X-Master-Password": "not it"},
                       json={"market": "BTC", "side": "buy", "notional_usd": 100})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "UNAUTHORIZED"
    assert httpx.get(f"{engine.url}/v1/state").status_code == 401


def test_a_revoked_token_is_refused(engine, admin):
    created = admin.post("/v1/tokens", json={"name": "short-lived", "scopes": ["read"]}).json()
    headers = {"Authorization": f"Bearer {created['token']}"}
    assert httpx.get(f"{engine.url}/v1/state", headers=headers).status_code == 200
    assert admin.delete(f"/v1/tokens/{created['id']}").status_code == 200
    assert httpx.get(f"{engine.url}/v1/state", headers=headers).status_code == 401


@pytest.mark.parametrize("body, field", [
    ({"market": "BTC", "side": "buyy", "size": 1}, "side"),
    ({"market": "BTC", "side": "buy", "size": -1}, "size"),
    ({"market": "BTC", "side": "buy", "size": 1, "levrage": 3}, "levrage"),
])
def test_bad_input_is_a_422_naming_the_field(admin, body, field):
    reply = admin.post("/v1/orders", json=body)
    assert reply.status_code == 422
    assert reply.json()["error"]["code"] == "VALIDATION" and reply.json()["error"]["details"]["field"] == field


def test_a_bad_policy_body_names_the_rule_field(admin):
    reply = admin.post("/v1/policies", json={"type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": "five"}})
    assert reply.status_code == 422 and reply.json()["error"]["details"]["field"] == "rules.maxLeverage"


def test_oversized_and_malformed_bodies_are_4xx(admin):
    assert admin.post("/v1/orders", content=b"{" + b" " * 70_000 + b"}",
                      headers={"content-type": "application/json"}).status_code == 413
    assert admin.post("/v1/orders", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422
    assert admin.get("/v1/nowhere").json()["error"]["code"] == "NOT_FOUND"


def test_the_stream_sends_a_snapshot_then_events(engine, admin):
    reader = token(admin, "read")
    with connect(engine.url.replace("http", "ws") + "/v1/stream", additional_headers={"Authorization": f"Bearer {reader}"}) as ws:
        first = json.loads(ws.recv(timeout=5))
        assert first["type"] == "snapshot" and "trading_state" in first["state"]
        admin.post("/v1/orders", json={"market": "BTC", "side": "buy", "notional_usd": 200})
        kinds = set()
        for _ in range(20):
            message = json.loads(ws.recv(timeout=5))
            if message["type"] == "event":
                kinds.add(message["event"]["kind"])
            if "order_sent" in kinds:
                break
        assert "order_sent" in kinds


def test_metrics_and_health_need_no_auth(engine):
    text = httpx.get(f"{engine.url}/metrics").text
    assert "perpguard_equity_usd" in text and 'perpguard_trading_state{state="ACTIVE"}' in text
    assert httpx.get(f"{engine.url}/healthz").json()["status"] == "ok"


def test_the_python_client_and_the_kill_switch_flatten_everything(engine, admin):
    killer = token(admin, "kill", "read")
    with Client(engine.url, master_password=MASTER) as pg:
        assert pg.submit({"market": "ETH", "side": "buy", "notional_usd": 800}).sent
    with Client(engine.url, token=killer) as pg:
        with pytest.raises(ApiError) as refused:
            pg.submit({"market": "ETH", "side": "buy", "notional_usd": 800})
        assert refused.value.code == "FORBIDDEN"
        result = pg.kill("test")
        assert result["trading_state"] == "HALTED" and result["positions"] == 0 and result["open_orders"] == 0
        state = pg.state()
    assert state["positions"] == [] and state["open_orders"] == [] and state["trading_state"] == "HALTED"
    denied = admin.post("/v1/orders", json={"market": "BTC", "side": "buy", "notional_usd": 100})
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "HALTED"
    assert admin.post("/v1/resume").json()["trading_state"] == "ACTIVE"


def test_the_client_stream_yields_a_snapshot_first(engine):
    with Client(engine.url, master_password=MASTER) as pg:
        first = next(iter(pg.stream()))
    assert first["type"] == "snapshot" and first["state"]["account"]["equity"] > 0


def test_the_gateway_refuses_a_non_loopback_bind_unless_told(tmp_path):
    from engine.gateway import RefusedBind

    with pytest.raises(RefusedBind, match="not a loopback"):
        with EngineThread(tmp_path, **{"engine.listen": "0.0.0.0:0"}):
            pass


def test_a_blank_token_name_is_a_422_naming_it(admin):
    reply = admin.post("/v1/tokens", json={"name": "   ", "scopes": ["read"]})
    assert reply.status_code == 422 and reply.json()["error"]["details"]["field"] == "name"
