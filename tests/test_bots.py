"""Bot identities for the Hyperliquid-compatible API, and policies scoped to a bot: the store (and
its audit chain), the gate, `/v1/bots` and `/v1/orders` over real HTTP, the `perpguard bot`
commands, `account.address`, and how the console names the bot."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from eth_account import Account
from sqlalchemy import text

from console.panes.events import event_text
from console.panes.pending import describe, pending_cells
from engine.api.state import PendingRow
from engine.cli.main import main
from engine.store import BotError, BotExists, Store
from tests.builders import T0, make_gate, order
from tests.engine_server import MASTER, EngineThread

ADMIN = {"X-Master-Password": MASTER}
ADDRESS = "0x" + "ab" * 20
ALPHA_CAP = {"type": "PERP_MAX_POSITION_USD", "rules": {"maxPositionUsd": 1000}}


# ---- the store ---------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'bots.db'}", audit_dir=tmp_path / "audit") as opened:
        yield opened


def test_a_bot_is_found_by_its_address_in_any_case_until_it_is_removed(store):
    added = store.add_bot("alpha", ADDRESS.upper().replace("0X", "0x"), {"trade"}, actor="master")
    assert added.address == ADDRESS and added.scopes == frozenset({"trade"})
    assert store.find_bot(ADDRESS.upper().replace("0X", "0x")) == added == store.find_bot(ADDRESS)
    assert [b.name for b in store.list_bots()] == ["alpha"]
    assert store.remove_bot("alpha", actor="master") is True
    assert store.find_bot(ADDRESS) is None and store.remove_bot("alpha", actor="master") is False


def test_a_taken_name_or_address_and_a_bad_address_are_refused_naming_the_field(store):
    store.add_bot("alpha", ADDRESS, {"trade", "read"}, actor="master")
    with pytest.raises(BotExists) as name_taken:
        store.add_bot("alpha", "0x" + "cd" * 20, {"trade"}, actor="master")
    with pytest.raises(BotExists) as address_taken:
        store.add_bot("beta", ADDRESS.upper().replace("0X", "0x"), {"trade"}, actor="master")
    with pytest.raises(BotError) as bad:
        store.add_bot("beta", "0x1234", {"trade"}, actor="master")
    assert name_taken.value.field == "name" and address_taken.value.field == "address"
    assert "alpha" in str(address_taken.value) and bad.value.field == "address" and "40 hex" in str(bad.value)
    assert [b.name for b in store.list_bots()] == ["alpha"]


def test_bots_are_in_the_audit_chain_and_a_bot_slipped_into_the_table_is_caught(store):
    store.add_bot("alpha", ADDRESS, {"trade"}, actor="master")
    store.add_bot("beta", "0x" + "cd" * 20, {"read"}, actor="master")
    store.remove_bot("beta", actor="master")
    kinds = [(item["kind"], item["subject"], item["actor"]) for item in store.audit(kind="bot_added")]
    assert ("bot_added", "alpha", "master") in kinds and store.audit(kind="bot_removed")[0]["subject"] == "beta"
    assert store.verify_chain().ok
    with store.engine.begin() as conn:  # a signer let in behind the store's back
        conn.execute(text("INSERT INTO bots (name, address, scopes, created_at) "
                          f"VALUES ('mallory', '0x{'ee' * 20}', 'trade', 0)"))
    report = store.verify_chain()
    assert not report.ok and report.first_bad == "bots#mallory"


# ---- the gate ----------------------------------------------------------------------------------


def test_a_bot_scoped_cap_denies_that_bot_only():
    gate, _ = make_gate([{**ALPHA_CAP, "id": "alpha-cap", "bot": "alpha"},
                         {"type": "PERP_MAX_POSITION_USD", "rules": {"maxPositionUsd": 50_000}}])
    alpha = gate.evaluate(order(notional_usd=2_000, bot="alpha"))
    assert not alpha.allowed and alpha.denials[0].policy_id == "alpha-cap" and "1000" in alpha.denials[0].message
    assert gate.evaluate(order(notional_usd=2_000, bot="beta")).allowed
    assert gate.evaluate(order(notional_usd=2_000)).allowed
    # the account's cap still binds every bot, alpha included
    assert not gate.evaluate(order(notional_usd=60_000, bot="beta")).allowed
    assert [p.bot for p in gate.policies] == ["alpha", None]
    assert gate.policies[0].as_body()["bot"] == "alpha"


def test_a_bot_rate_limit_counts_only_that_bots_orders():
    gate, _ = make_gate([{"type": "RATE_LIMIT", "rules": {"maxTransactions": 2, "period": "minute"}, "bot": "alpha"}])
    for _ in range(5):  # beta's busy minute spends nothing of alpha's budget
        gate.note_submission(T0, "beta")
    assert gate.evaluate(order(notional_usd=100, bot="alpha")).allowed
    gate.note_submission(T0, "alpha")
    gate.note_submission(T0, "alpha")
    denied = gate.evaluate(order(notional_usd=100, bot="alpha"))
    assert [r.code for r in denied.denials] == ["RATE_LIMITED"]
    assert gate.evaluate(order(notional_usd=100, bot="beta")).allowed and gate.evaluate(order(notional_usd=100)).allowed


def test_a_bot_daily_spend_is_its_own():
    gate, _ = make_gate([{"type": "SPENDING_LIMIT", "rules": {"daily_limit_usd": 1_000}, "bot": "alpha"}])
    gate.note_forwarded(gate.evaluate(order(notional_usd=900, bot="beta")))
    assert gate.evaluate(order(notional_usd=900, bot="alpha")).allowed
    gate.note_forwarded(gate.evaluate(order(notional_usd=900, bot="alpha")))
    assert not gate.evaluate(order(notional_usd=200, bot="alpha")).allowed
    assert gate.evaluate(order(notional_usd=200, bot="beta")).allowed


# ---- the gateway -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    with EngineThread(tmp_path_factory.mktemp("bots")) as running:
        yield running


@pytest.fixture
def admin(engine):
    with httpx.Client(base_url=engine.url, headers=ADMIN, timeout=30) as http:
        yield http


def bot_token(admin: httpx.Client, name: str, *scopes: str) -> dict[str, str]:
    reply = admin.post("/v1/tokens", json={"name": name, "scopes": list(scopes or ("trade", "read"))})
    assert reply.status_code == 201
    return {"Authorization": f"Bearer {reply.json()['token']}"}


def test_a_bot_is_added_listed_and_removed_over_the_api(engine, admin):
    address = "0x" + "12" * 20
    added = admin.post("/v1/bots", json={"name": "api-bot", "address": address.upper().replace("0X", "0x"),
                                         "scopes": ["trade"]})
    assert added.status_code == 201 and added.json()["address"] == address and "private_key" not in added.json()
    assert {"name": "api-bot", "address": address, "scopes": ["trade"]}.items() <= \
        next(b for b in admin.get("/v1/bots").json() if b["name"] == "api-bot").items()
    service = engine.service.service
    assert service.bot_for(address.upper().replace("0X", "0x")).name == "api-bot"
    removed = admin.delete("/v1/bots/api-bot")
    assert removed.status_code == 200 and removed.json()["removed"] is True
    assert service.bot_for(address) is None and "api-bot" not in {b["name"] for b in admin.get("/v1/bots").json()}
    missing = admin.delete("/v1/bots/api-bot")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND" and "api-bot" in \
        missing.json()["error"]["message"]


def test_a_generated_key_is_answered_once_and_signs_as_the_registered_address(engine, admin):
    made = admin.post("/v1/bots", json={"name": "keyless"}).json()
    assert Account.from_key(made["private_key"]).address.lower() == made["address"]
    assert made["scopes"] == ["read", "trade"]
    listed = next(b for b in admin.get("/v1/bots").json() if b["name"] == "keyless")
    assert "private_key" not in listed and engine.service.service.bot_for(made["address"]).name == "keyless"


def test_a_taken_name_or_address_is_409_and_bad_input_422_naming_the_field(admin):
    address = "0x" + "34" * 20
    assert admin.post("/v1/bots", json={"name": "dup", "address": address}).status_code == 201
    for body, field in (({"name": "dup", "address": "0x" + "56" * 20}, "name"),
                        ({"name": "dup2", "address": address}, "address")):
        reply = admin.post("/v1/bots", json=body)
        assert reply.status_code == 409 and reply.json()["error"]["details"]["field"] == field
    for body, field in (({"name": "x", "address": "0x12"}, "address"), ({"name": "has space"}, "name"),
                        ({"name": "ok", "scopes": ["kill"]}, "scopes.0"), ({"name": "ok", "scopes": []}, "scopes"),
                        ({"name": "ok", "key": "0x00"}, "key")):
        reply = admin.post("/v1/bots", json=body)
        assert reply.status_code == 422 and reply.json()["error"]["details"]["field"] == field, (body, reply.json())
    bad_path = admin.delete("/v1/bots/has%20space")
    assert bad_path.status_code == 422 and bad_path.json()["error"]["details"]["field"] == "name"


def test_only_the_master_manages_bots(engine, admin):
    trader = bot_token(admin, "trader")
    assert httpx.get(f"{engine.url}/v1/bots").status_code == 401
    for reply in (httpx.get(f"{engine.url}/v1/bots", headers=trader),
                  httpx.post(f"{engine.url}/v1/bots", json={"name": "sneaky"}, headers=trader),
                  httpx.delete(f"{engine.url}/v1/bots/keyless", headers=trader)):
        assert reply.status_code == 403 and reply.json()["error"]["code"] == "FORBIDDEN"
    assert "sneaky" not in {b["name"] for b in admin.get("/v1/bots").json()}


def test_a_policy_scoped_to_alpha_denies_alphas_orders_and_not_betas(engine, admin):
    assert admin.post("/v1/policies", json={**ALPHA_CAP, "id": "alpha-cap", "bot": "alpha"}).status_code == 201
    alpha_rate = {"type": "RATE_LIMIT", "id": "alpha-rate", "bot": "alpha",
                  "rules": {"maxTransactions": 50, "period": "minute"}}
    assert admin.post("/v1/policies", json=alpha_rate).status_code == 201
    alpha, beta = bot_token(admin, "alpha"), bot_token(admin, "beta")
    intent = {"market": "BTC", "side": "buy", "notional_usd": 2_000}
    denied = httpx.post(f"{engine.url}/v1/orders", json=intent, headers=alpha)
    assert denied.status_code == 403 and "1000" in denied.json()["error"]["message"]
    # alpha cannot pass itself off as beta: the gateway sets the bot from the token
    assert httpx.post(f"{engine.url}/v1/orders", json={**intent, "bot": "beta"}, headers=alpha).status_code == 403
    sent = httpx.post(f"{engine.url}/v1/orders", json=intent, headers=beta)
    assert sent.status_code == 200, sent.json()
    events = engine.service.service.recent_events()
    assert any(e["kind"] == "order_sent" and e.get("bot") == "beta" for e in events)
    assert any(e["kind"] == "order_denied" and e.get("bot") == "alpha" for e in events)
    # the master's order keeps the body's bot: the trader can ask what alpha would be told
    as_alpha = admin.post("/v1/orders", json={**intent, "bot": "alpha", "dry_run": True}).json()
    assert as_alpha["decision"]["verdict"] == "DENY"
    # alpha's own budget counts its two orders only, beta's went to the account's
    rows = {row["name"]: row for row in admin.get("/v1/state").json()["breakers"]}
    assert rows["alpha orders per minute"]["used"] == 2 and rows["alpha orders per minute"]["limit"] == 50
    for policy_id in ("alpha-cap", "alpha-rate"):
        assert admin.delete(f"/v1/policies/{policy_id}").status_code == 200


def test_a_policy_naming_a_bad_bot_is_refused_naming_the_field(admin):
    reply = admin.post("/v1/policies", json={**ALPHA_CAP, "bot": "bad\nname"})
    assert reply.status_code == 422 and reply.json()["error"]["details"]["field"] == "bot"


# ---- the command line --------------------------------------------------------------------------


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_bot_add_prints_a_new_key_once_and_bot_rm_takes_its_policies(engine, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PERPGUARD_MASTER_PASSWORD", MASTER)
    monkeypatch.delenv("PERPGUARD_TOKEN", raising=False)
    url = ("--url", engine.url)
    policies = tmp_path / "gamma.json"
    policies.write_text(json.dumps([{**ALPHA_CAP, "id": "gamma-cap"},
                                    {"type": "RATE_LIMIT", "rules": {"maxTransactions": 5, "period": "minute"}}]))
    code, out, err = run(capsys, "bot", "add", "gamma", "--scopes", "trade", "--policies", str(policies), *url)
    made = json.loads(out)
    assert code == 0 and "shown only once" in err and made["private_key"] in err and made["address"] in err
    assert Account.from_key(made["private_key"]).address.lower() == made["address"] and made["scopes"] == ["trade"]
    assert {p["id"] for p in made["policies"]} >= {"gamma-cap"} and all(p["bot"] == "gamma" for p in made["policies"])

    code, out, _ = run(capsys, "bot", "list", *url)
    assert code == 0 and made["address"] in {b["address"] for b in json.loads(out)}
    code, _, err = run(capsys, "bot", "add", "gamma", "--address", "0x" + "78" * 20, *url)
    assert code == 2 and "gamma" in err

    code, _, err = run(capsys, "bot", "rm", "gamma", *url)
    assert code == 0 and "2 scoped policies" in err and "gamma-cap" in err
    left = httpx.get(f"{engine.url}/v1/policies", headers=ADMIN).json()
    assert not [p for p in left if p.get("bot") == "gamma"]
    assert run(capsys, "bot", "rm", "gamma", *url)[0] == 2


def test_bot_add_with_an_address_keeps_no_key_and_a_bad_policy_file_adds_nothing(engine, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PERPGUARD_MASTER_PASSWORD", MASTER)
    url = ("--url", engine.url)
    bad = tmp_path / "bad.toml"
    bad.write_text('[[policy]]\ntype = "PERP_MAX_POSITION_USD"\n[policy.rules]\nmaxPositionUsd = "lots"\n')
    code, _, err = run(capsys, "bot", "add", "delta", "--address", "0x" + "9a" * 20, "--policies", str(bad), *url)
    assert code == 2 and "maxPositionUsd" in err
    assert "delta" not in {b["name"] for b in httpx.get(f"{engine.url}/v1/bots", headers=ADMIN).json()}
    code, out, err = run(capsys, "bot", "add", "delta", "--address", "0x" + "9A" * 20, *url)
    assert code == 0 and json.loads(out)["address"] == "0x" + "9a" * 20 and "private" not in out + err


# ---- the account's address ---------------------------------------------------------------------


def test_the_paper_account_keeps_its_address_across_restarts(tmp_path, capsys, monkeypatch):
    db = f"sqlite:///{tmp_path / 'paper.db'}"
    with EngineThread(tmp_path, db_url=db) as first:
        address = httpx.get(f"{first.url}/v1/state", headers=ADMIN).json()["account"]["address"]
    assert re.fullmatch(r"0x[0-9a-f]{40}", address)
    monkeypatch.setenv("PERPGUARD_MASTER_PASSWORD", MASTER)
    with EngineThread(tmp_path, db_url=db) as second:
        code, out, err = run(capsys, "status", "--url", second.url)
    assert code == 0 and json.loads(out)["account"]["address"] == address and address in err


# ---- the console -------------------------------------------------------------------------------


def test_the_console_names_the_bot_of_a_held_order_and_of_an_order_event():
    held = PendingRow(id="p-1", tier="APPROVAL", status="PENDING", market="BTC", side="buy", notional_usd=50_000,
                      intent={"market": "BTC", "side": "buy", "notional_usd": 50_000, "bot": "alpha"},
                      created_at=T0, expires_at=T0 + 600, reason="above every tier")
    assert pending_cells(held, T0)[-1][0] == "alpha: above every tier"
    assert describe(held).endswith("from alpha")
    assert event_text({"kind": "order_sent", "message": "buy BTC filled", "bot": "alpha"}) == "alpha: buy BTC filled"
    assert event_text({"kind": "order_sent", "message": "buy BTC filled"}) == "buy BTC filled"


def test_a_held_bot_order_names_its_bot_in_the_pending_list(engine, admin):
    body = {"type": "SPENDING_LIMIT", "id": "omega-hold", "bot": "omega",
            "rules": {"instant_max_usd": 10, "notify_max_usd": 20, "delay_max_usd": 30}}
    assert admin.post("/v1/policies", json=body).status_code == 201
    omega = bot_token(admin, "omega")
    reply = httpx.post(f"{engine.url}/v1/orders", json={"market": "ETH", "side": "buy", "notional_usd": 500},
                       headers=omega)
    assert reply.status_code == 202
    held = [p for p in admin.get("/v1/pending").json() if p["intent"].get("bot") == "omega"]  # durable before 202
    assert [p["tier"] for p in held] == ["APPROVAL"] and held[0]["id"] == reply.json()["pending"]["id"]
    admin.post(f"/v1/pending/{held[0]['id']}/cancel")
    assert admin.delete("/v1/policies/omega-hold").status_code == 200
