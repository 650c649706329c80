"""Strict inputs (issue 13, item 5), through the real gateway on 127.0.0.1 and the CLI.

A JSON boolean is not a number and a string is not a boolean; numbers must be finite (JSON
`1e309` parses to infinity in Python); names and ids carry no control characters, and policy
ids keep to a charset that survives a URL path. Every refusal is a 422 (or exit 2) naming the
field, and nothing is acted on or stored."""

from __future__ import annotations

import json

import httpx
import pytest

from engine.cli.main import main
from engine.config import ConfigError, load_config
from engine.domain.model import OrderIntent
from engine.risk.policies import PolicyError, parse_policy
from tests.engine_server import MASTER, EngineThread

ADMIN = {"X-Master-Password": MASTER, "content-type": "application/json"}
ORDER = '{"market": "BTC", "side": "buy", "dry_run": true, %s}'


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    with EngineThread(tmp_path_factory.mktemp("strict")) as running:
        yield running


@pytest.fixture
def admin(engine):
    with httpx.Client(base_url=engine.url, headers=ADMIN, timeout=30) as http:
        yield http


def refused(reply: httpx.Response, field: str) -> str:
    """Assert a 422 VALIDATION naming `field`; the message."""
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert error["code"] == "VALIDATION" and error["details"]["field"] == field, error
    assert error["message"].startswith(f"{field}: ")
    return error["message"]


# ---- booleans, numeric strings and non-finite numbers in orders ------------------------------


def test_the_check_is_a_real_one(admin):
    """The same order with a real size is answered (a dry run), so the 422s below are the input's."""
    reply = admin.post("/v1/orders", content=ORDER % '"size": 0.01')
    assert reply.status_code == 200 and reply.json()["status"] == "dry_run"


@pytest.mark.parametrize("fragment, field", [
    ('"size": true', "size"),  # was read as 1 BTC: an allowed ~65,000 USD order
    ('"notional_usd": true', "notional_usd"),
    ('"size": 0.01, "leverage": true', "leverage"),
    ('"size": 0.01, "reduce_only": "yes"', "reduce_only"),  # was read as true
    ('"size": 0.01, "reduce_only": 1', "reduce_only"),
    ('"size": 0.01, "dry_run": "false"', "dry_run"),
    ('"size": "0.01"', "size"),  # numeric strings are refused: JSON numbers only
    ('"size": 1e309', "size"),  # parses to inf
    ('"size": NaN', "size"),
    ('"notional_usd": Infinity', "notional_usd"),
    ('"size": 0.01, "type": "limit", "limit_px": -Infinity', "limit_px"),
    ('"size": 0.01, "stop_loss": 1e309', "stop_loss"),
])
def test_an_order_with_a_mistyped_or_non_finite_field_is_a_422_naming_it(admin, fragment, field):
    refused(admin.post("/v1/orders", content=ORDER % fragment), field)  # a repeated key: the last one counts


@pytest.mark.parametrize("fragment, field", [
    ('"size": 0.01, "client_id": "bot\\u0000-1"', "client_id"),
    ('"size": 0.01, "client_id": "bot-1\\nforged log line"', "client_id"),
    ('"size": 0.01, "category": "deriv\\u0000atives"', "category"),
    ('"size": 0.01, "market": "BTC\\u0000"', "market"),
])
def test_control_characters_in_an_order_s_names_are_a_422(admin, fragment, field):
    refused(admin.post("/v1/orders", content=ORDER % fragment), field)


@pytest.mark.parametrize("order, needle", [
    ('{"market": "BTC", "side": "buy", "size": true}', "ORDER_JSON.size"),
    ('{"market": "BTC", "side": "buy", "size": 0.1, "reduce_only": "yes"}', "ORDER_JSON.reduce_only"),
    ('{"market": "BTC", "side": "buy", "size": 1e309}', "ORDER_JSON.size"),
    ('{"market": "BTC", "side": "buy", "size": "0.1"}', "ORDER_JSON.size"),
])
def test_perpguard_check_refuses_the_same_with_exit_2_naming_the_field(capsys, fixtures, order, needle):
    state = fixtures / "hyperliquid/docs-example-clearinghouse-state.json"
    code = main(["check", order, "--state", str(state)])
    err = capsys.readouterr().err
    assert code == 2 and needle in err


def test_python_callers_keep_ints_for_floats():
    intent = OrderIntent(market="BTC", side="buy", notional_usd=500, leverage=3)
    assert intent.notional_usd == 500.0 and intent.leverage == 3.0


# ---- non-finite numbers in policy rules and other floats the API takes ---------------------


@pytest.mark.parametrize("rules, field", [
    ('{"maxPositionUsd": 1e309}', "rules.maxPositionUsd"),  # was stored as null
    ('{"maxPositionUsd": NaN}', "rules.maxPositionUsd"),  # a NaN limit passes every comparison
    ('{"maxPositionUsd": 50000, "marketLimits": {"BTC": Infinity}}', "rules.marketLimits.BTC"),
    ('{"maxPositionUsd": 50000, "warningPositionUsd": -Infinity}', "rules.warningPositionUsd"),
    ('{"maxPositionUsd": true}', "rules.maxPositionUsd"),
])
def test_a_non_finite_or_boolean_policy_limit_is_a_422_and_nothing_is_stored(admin, rules, field):
    body = '{"id": "cap-probe", "type": "PERP_MAX_POSITION_USD", "rules": %s}' % rules
    refused(admin.post("/v1/policies", content=body), field)
    assert "cap-probe" not in {p["id"] for p in admin.get("/v1/policies").json()}


def test_a_non_finite_nested_policy_limit_is_refused_by_the_policy_parser():
    body = {"type": "ACTION_CATEGORY_LIMIT", "rules": {"categoryLimits": {"swap": {"daily_limit_usd": float("nan")}}}}
    with pytest.raises(PolicyError) as bad:
        parse_policy(body, "p-1")
    assert bad.value.field == "rules.categoryLimits.swap.daily_limit_usd"
    with pytest.raises(PolicyError) as bad:
        parse_policy({"type": "MIN_MARGIN_BUFFER", "rules": {"minBuffer": 0.6, "warnBuffer": 0.5, "panicBuffer": 0.25,
                                                             "targetBuffer": float("inf")}}, "p-2")
    assert bad.value.field == "rules.targetBuffer"


@pytest.mark.parametrize("value", ["1e309", "NaN", "Infinity"])
def test_a_non_finite_token_lifetime_is_a_422(admin, value):
    body = '{"name": "bot", "scopes": ["read"], "expires_in_seconds": %s}' % value
    refused(admin.post("/v1/tokens", content=body), "expires_in_seconds")


def test_a_non_finite_config_number_is_refused_naming_the_key(tmp_path):
    path = tmp_path / "perpguard.toml"
    path.write_text("[paper]\nequity = inf\n")  # TOML has inf and nan literals
    with pytest.raises(ConfigError) as bad:
        load_config(str(path))
    assert bad.value.field == "paper.equity"


# ---- the audit cursor ---------------------------------------------------------------------


@pytest.mark.parametrize("before", ["decisions#999999999999999999999", "events#1e3", "events#-1", "nothing"])
def test_a_malformed_audit_cursor_is_a_4xx_naming_it(admin, before):
    refused(admin.get("/v1/audit", params={"before": before}), "before")


def test_a_well_formed_audit_cursor_still_pages(admin):
    admin.post("/v1/orders", content=ORDER % '"size": 0.01')
    first = admin.get("/v1/audit", params={"limit": 1}).json()
    assert first and admin.get("/v1/audit", params={"before": first[0]["ref"]}).status_code == 200


# ---- policy ids and names ------------------------------------------------------------------


@pytest.mark.parametrize("policy_id", ["a/b", "q?x=1", "..", ".hidden", "with space", "nul\u0000", "x" * 65, "é"])
def test_a_policy_id_outside_the_charset_is_a_422(admin, policy_id):
    body = {"id": policy_id, "type": "PERP_ALLOWED_MARKETS", "rules": {"allowedMarkets": ["BTC"]}}
    refused(admin.post("/v1/policies", json=body), "id")


def test_a_policy_id_in_the_charset_is_added_and_removed(admin):
    body = {"id": "btc_only-v1.2", "type": "PERP_ALLOWED_MARKETS", "rules": {"allowedMarkets": ["BTC", "ETH", "SOL"]}}
    assert admin.post("/v1/policies", json=body).status_code == 201
    assert admin.delete("/v1/policies/btc_only-v1.2").json() == {"id": "btc_only-v1.2", "removed": True}


def test_a_path_id_outside_the_charset_is_a_422_not_another_policy(admin):
    refused(admin.delete("/v1/policies/q%3Fx%3D1"), "policy_id")
    refused(admin.put("/v1/policies/q%3Fx%3D1", json={"type": "PERP_ALLOWED_MARKETS",
                                                        "rules": {"allowedMarkets": ["BTC"]}}), "policy_id")


def test_policy_rm_encodes_the_id_and_never_removes_another_policy(engine, admin, capsys, monkeypatch):
    monkeypatch.setenv("PERPGUARD_MASTER_PASSWORD", MASTER)
    monkeypatch.delenv("PERPGUARD_TOKEN", raising=False)
    body = {"id": "q", "type": "PERP_ALLOWED_MARKETS", "rules": {"allowedMarkets": ["BTC", "ETH", "SOL"]}}
    assert admin.post("/v1/policies", json=body).status_code == 201
    try:
        code = main(["policy", "rm", "q?x=1", "--url", engine.url])
        err = capsys.readouterr().err
        assert code == 2 and "policy_id" in err
        assert "q" in {p["id"] for p in admin.get("/v1/policies").json()}  # `q` was not the target
        code = main(["policy", "rm", "a/b", "--url", engine.url])
        assert code == 2 and "removed" not in capsys.readouterr().err
    finally:
        admin.delete("/v1/policies/q")


@pytest.mark.parametrize("body, field", [
    ({"name": "bot\u0000admin", "scopes": ["read"]}, "name"),
    ({"name": "bot\r\nX-Injected: 1", "scopes": ["read"]}, "name"),
    ({"name": "bot\u007f", "scopes": ["read"]}, "name"),
])
def test_control_characters_in_a_token_name_are_a_422(admin, body, field):
    refused(admin.post("/v1/tokens", json=body), field)


@pytest.mark.parametrize("extra, field", [
    ({"account": "main\u0000"}, "account"),
    ({"walletId": "w\u001b[31m"}, "walletId"),
    ({"description": "caps\u0000"}, "description"),
])
def test_control_characters_in_a_policy_s_names_are_a_422(admin, extra, field):
    body = {"type": "PERP_ALLOWED_MARKETS", "rules": {"allowedMarkets": ["BTC"]}, **extra}
    refused(admin.post("/v1/policies", json=body), field)


def test_the_seed_wallet_id_and_a_multi_line_description_stay_accepted():
    policy = parse_policy({"walletId": "<id>", "type": "PERP_ALLOWED_MARKETS", "description": "first line\nsecond",
                           "rules": {"allowedMarkets": ["BTC"]}}, "p-1")
    assert policy.account == "<id>"


def test_the_policy_file_parser_applies_the_id_charset():
    with pytest.raises(PolicyError) as bad:
        parse_policy({"id": "a/b", "type": "PERP_ALLOWED_MARKETS", "rules": {"allowedMarkets": ["BTC"]}}, "p-1", "policies[0]")
    assert bad.value.field == "policies[0].id"
    assert json.dumps(parse_policy({"type": "PERP_ALLOWED_MARKETS", "rules": {"allowedMarkets": ["BTC"]}},
                                   "PERP_ALLOWED_MARKETS-1").as_body())
