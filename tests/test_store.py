"""The durable store on SQLite and on a real PostgreSQL server: what a trader relies on after a
restart or a crash, and an audit trail that shows any edit."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from builders import T0, make_gate, order
from pg_server import postgres_server, store_url  # noqa: F401  (fixtures)
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from engine.domain.events import EngineEvent
from engine.domain.model import Tier, TradingState
from engine.live.pending import PendingQueue, PendingStatus
from engine.risk.policies import PolicyError
from engine.store import Store, chain
from engine.store import store as store_module
from engine.risk.trading_state import LATCHED, TradingStateMachine

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def audit_dir(tmp_path, monkeypatch) -> Path:
    """The audit key and checkpoints (the XDG config dir) in the test's own folder, for this
    process and the writers it starts."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config" / "perpguard"


@pytest.fixture
def store(store_url):  # noqa: F811
    with Store(store_url) as opened:
        yield opened


def reopen(url: str) -> Store:
    return Store(url)


# -- survives restart and crash ---------------------------------------------------------------


def test_pending_actions_come_back_after_a_restart(store_url):  # noqa: F811
    with Store(store_url) as first:
        queue = PendingQueue(first)
        delayed = queue.add(order("ETH-PERP", "buy", size=1.5, type="limit", limit_px=3000.25, client_id="bot-7",
                                  leverage=3, stop_loss=2900.0), Tier.DELAY, 60, "big order: 60 s cooling-off", T0)
        approval = queue.add(order("BTC", "sell", notional_usd=250_000.0), Tier.APPROVAL, 900, "needs a human", T0 + 1)
        done = queue.add(order("SOL", size=10.0), Tier.DELAY, 5, "cooling-off", T0 + 2)
        queue.close(done.id, PendingStatus.EXECUTED, "forwarded: filled 10", T0 + 7)

    with reopen(store_url) as second:
        resumed = PendingQueue(second)
        assert resumed.open_actions() == [delayed, approval]  # exact: intent, times, reason
        assert resumed.get(delayed.id).execute_at == T0 + 60
        assert resumed.get(approval.id).expires_at == T0 + 1 + 900
        recent = second.list_pending()
        assert [a.id for a in recent] == [done.id, approval.id, delayed.id]
        assert recent[0].status is PendingStatus.EXECUTED and recent[0].outcome == "forwarded: filled 10"
        assert recent[0].closed_at == T0 + 7


def test_halted_state_and_its_causes_come_back_after_a_restart(store_url):  # noqa: F811
    machine = TradingStateMachine()
    machine.reduce_only("loss-limit daily", T0, until=T0 + 3600)
    machine.reduce_only("max-drawdown", T0, until=LATCHED)
    machine.reduce_only("margin-buffer", T0)
    machine.halt("kill switch from the console", T0 + 5)
    with Store(store_url) as first:
        assert first.load_trading() is None  # a fresh install: the engine starts ACTIVE
        first.save_trading(machine)

    with reopen(store_url) as second:
        loaded = second.load_trading()
    assert loaded.state is TradingState.HALTED
    assert loaded.halt_cause == "kill switch from the console"
    assert loaded.causes == {"loss-limit daily": T0 + 3600, "max-drawdown": LATCHED, "margin-buffer": None}
    # The restored machine still behaves: resume keeps the loss limit's REDUCE_ONLY, drops the latch.
    loaded.resume(T0 + 10)
    assert loaded.state is TradingState.REDUCE_ONLY and set(loaded.causes) == {"loss-limit daily"}


WRITER = """
import sys, time
from engine.domain.events import EngineEvent
from engine.domain.model import OrderIntent, Tier
from engine.live.pending import PendingQueue
from engine.store import Store
from engine.risk.trading_state import TradingStateMachine

store = Store(sys.argv[1])
action = PendingQueue(store).add(OrderIntent(market="BTC", side="buy", size=0.5), Tier.APPROVAL, 600, "approval", 1.0)
machine = TradingStateMachine()
machine.halt("kill switch", 2.0)
store.save_trading(machine, EngineEvent("state_changed", 2.0, "trading ACTIVE -> HALTED: kill switch"))
print(action.id, flush=True)
time.sleep(60)
"""


def test_what_was_acknowledged_survives_kill_9(store_url):  # noqa: F811
    writer = subprocess.Popen([sys.executable, "-c", WRITER, store_url], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        action_id = writer.stdout.readline().strip()  # acknowledged: every write has returned
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
    assert writer.returncode == -signal.SIGKILL
    assert action_id.startswith("pa_")

    with reopen(store_url) as after:
        assert [a.id for a in after.load_open_pending()] == [action_id]
        assert after.load_trading().state is TradingState.HALTED
        assert [(e["table"], e["kind"]) for e in after.audit()] == [("changes", "setting_changed"),
                                                                    ("events", "state_changed")]
        assert after.verify_chain().ok


# -- the audit hash chain -----------------------------------------------------------------------


def fill_audit_log(store: Store, rounds: int = 5) -> None:
    """Real gate decisions (an allowed one, a denied one) and the events that follow them."""
    gate, _clock = make_gate([{"id": "max-leverage", "type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": 5}}])
    for i in range(rounds):
        size = 1.0 if i % 2 == 0 else 50.0  # 50 BTC on 100k equity is 25x: denied
        decision = gate.evaluate(order("BTC", size=size, client_id=f"bot-{i}"), now=T0 + i)
        store.append_decision({**decision.as_dict(), "client_id": f"bot-{i}"})
        kind = "order_sent" if decision.allowed else "order_denied"
        store.append_event(EngineEvent(kind, T0 + i, f"{kind} BTC {size:g}", {"market": "BTC", "size": size}))


@pytest.fixture
def small_batches(monkeypatch):
    """Verify in batches of 3 rows so these short chains cross batch boundaries."""
    monkeypatch.setattr(chain, "VERIFY_BATCH", 3)


def test_an_untouched_chain_verifies(store, small_batches):
    fill_audit_log(store, rounds=7)
    report = store.verify_chain()
    assert report.ok and report.checked == 14 and report.first_bad is None


TAMPERING = {
    "an event's message edited": ("UPDATE events SET message = 'nothing happened' WHERE id = 4", "events#4"),
    "a denial turned into an allow": ("UPDATE decisions SET body = REPLACE(body, 'DENY', 'ALLOW') WHERE id = 2",
                                      "decisions#2"),
    "an event's time moved": ("UPDATE events SET at = at - 60 WHERE id = 5", "events#5"),
    "an event deleted": ("DELETE FROM events WHERE id = 3", "events#3"),
    "the newest decision deleted": ("DELETE FROM decisions WHERE id = 5", "decisions#5"),
}


@pytest.mark.parametrize("sql, named", TAMPERING.values(), ids=TAMPERING.keys())
def test_tampering_one_row_is_named_exactly(store, small_batches, sql, named):
    fill_audit_log(store)
    with store.engine.begin() as conn:
        conn.execute(text(sql))
    report = store.verify_chain()
    assert not report.ok
    assert report.first_bad == named


def test_a_row_rewritten_with_a_recomputed_hash_is_caught_at_that_row(store):
    """Without the audit key the forger can only recompute plain sha256 links: the row itself
    no longer verifies (with plain sha256 links it was only the next row's link that broke)."""
    fill_audit_log(store)
    with store.engine.begin() as conn:
        row = conn.execute(text("SELECT id, at, kind, data, prev_hash FROM events WHERE id = 2")).one()
        forged = chain.link_hash(row.prev_hash, {"id": 2, "at": row.at, "kind": row.kind, "message": "forged",
                                                 "data": row.data})
        conn.execute(text("UPDATE events SET message = 'forged', hash = :h WHERE id = 2"), {"h": forged})
    assert store.verify_chain().first_bad == "events#2"


def test_appends_continue_the_chain_after_a_restart(store_url, monkeypatch):  # noqa: F811
    monkeypatch.setattr(store_module, "APPEND_BATCH", 2)  # bulk appends cross transactions
    with Store(store_url) as first:
        fill_audit_log(first, rounds=2)
    with reopen(store_url) as second:
        replayed = [EngineEvent("order_filled", T0 + 10 + i, f"fill {i}", {"px": 50_000.0 + i}) for i in range(5)]
        assert second.append_events(replayed) == 7
        assert second.append_event(EngineEvent("engine_started", T0 + 20, "engine reconciled")) == 8
        report = second.verify_chain()
    assert report.ok and report.checked == 10


# -- reading the audit log ----------------------------------------------------------------------


def test_audit_is_newest_first_with_filters_and_pages(store):
    fill_audit_log(store)
    items = store.audit(limit=100)
    assert len(items) == 10
    assert [(i["ref"], i["at"]) for i in items[:3]] == [("events#5", T0 + 4), ("decisions#5", T0 + 4),
                                                          ("events#4", T0 + 3)]
    denial = next(i for i in items if i["kind"] == "decision" and i["decision"]["verdict"] == "DENY")
    assert denial["decision"]["client_id"] == "bot-3" and denial["decision"]["reasons"][0]["policy_id"] == "max-leverage"

    denied = store.audit(kind="order_denied")
    assert [i["ref"] for i in denied] == ["events#4", "events#2"] and denied[0]["data"]["size"] == 50.0
    assert {i["table"] for i in store.audit(kind="decision")} == {"decisions"}
    assert [i["ref"] for i in store.audit(since=T0 + 3)] == ["events#5", "decisions#5", "events#4", "decisions#4"]

    pages, before = [], None
    while page := store.audit(limit=3, before_id=before):
        pages.append([i["ref"] for i in page])
        before = page[-1]["ref"]
    assert sum(pages, []) == [i["ref"] for i in items]
    with pytest.raises(ValueError, match="audit ref"):
        store.audit(before_id="42")


# -- policies, settings, idempotency ------------------------------------------------------------


def test_policies_round_trip_in_order_and_replace_in_place(store_url):  # noqa: F811
    with Store(store_url) as first:
        first.save_policy({"id": "max-leverage", "type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": 5}})
        first.save_policy({"id": "loss-limit", "type": "LOSS_LIMIT", "rules": {"dailyLoss": 0.05}})
        first.save_policy({"id": "stale", "type": "STALE_DATA", "rules": {"maxMarkAgeSeconds": 10,
                                                                       "maxAccountAgeSeconds": 30}})
        first.save_policy({"id": "max-leverage", "type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": 3},
                           "enabled": False})
        assert first.delete_policy("stale") and not first.delete_policy("stale")
    with reopen(store_url) as second:
        bodies = second.list_policies()
    assert [b["id"] for b in bodies] == ["max-leverage", "loss-limit"]
    assert bodies[0]["rules"]["maxLeverage"] == 3 and bodies[0]["enabled"] is False


def test_a_policy_that_would_not_load_is_never_saved(store):
    with pytest.raises(PolicyError) as bad:
        store.save_policy({"id": "lev", "type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": "5"}})
    assert bad.value.field == "rules.maxLeverage"
    with pytest.raises(PolicyError, match="id"):
        store.save_policy({"type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": 5}})
    assert store.list_policies() == []


def test_the_same_client_id_gets_the_stored_answer(store_url):  # noqa: F811
    answer = {"status": 202, "pending": {"id": "pa_1", "execute_at": T0 + 60}, "decision": {"verdict": "ALLOW",
                                                                                              "tier": "DELAY"}}
    with Store(store_url) as first:
        assert first.load_result("bot-42") is None
        first.save_result("bot-42", answer)
        first.set_setting("webhook", "https://example.invalid/hook")
    with reopen(store_url) as second:
        assert second.load_result("bot-42") == answer
        assert second.get_setting("webhook") == "https://example.invalid/hook"
        assert second.get_setting("missing") is None


def test_orders_fills_and_equity_are_kept(store):
    store.record_order(at=T0, coin="BTC", side="buy", size=0.5, px=50_100.0, status="filled", oid="o1",
                       client_id="bot-1")
    store.record_order(at=T0 + 1, coin="ETH", side="sell", size=2.0, status="rejected", error="insufficient margin")
    store.record_fill(at=T0, oid="o1", coin="BTC", side="buy", size=0.5, px=50_090.0, fee=12.5, client_id="bot-1")
    for i, equity in enumerate([100_000.0, 99_500.0, 101_250.0]):
        store.record_equity(T0 + 60 * i, equity, 0.8 - 0.1 * i)
    assert [(o.oid, o.status, o.error) for o in store.recent_orders()] == [(None, "rejected", "insufficient margin"),
                                                                         ("o1", "filled", None)]
    assert store.recent_fills()[0].fee == 12.5
    assert [p.equity for p in store.equity_since(T0 + 60)] == [99_500.0, 101_250.0]


# -- tokens -------------------------------------------------------------------------------------


def test_a_token_is_stored_only_as_its_hash(store):
    info, plaintext = store.create_token("grid bot", {"trade", "read"}, expires_at=None, now=T0)
    assert plaintext.startswith("pg_") and len(plaintext) > 40
    with store.engine.connect() as conn:
        rows = [tuple(map(str, row)) for row in conn.execute(text("SELECT * FROM tokens"))]
    assert len(rows) == 1 and not any(plaintext in value or plaintext[3:] in value for value in rows[0])
    found = store.find_token(plaintext, now=T0 + 1)
    assert found == info and found.scopes == {"trade", "read"}
    assert store.find_token(plaintext[:-1] + "x", now=T0 + 1) is None
    assert store.find_token("not-a-token", now=T0 + 1) is None


def test_revoked_and_expired_tokens_are_refused(store_url):  # noqa: F811
    with Store(store_url) as first:
        revoked, revoked_text = first.create_token("old bot", {"trade"}, expires_at=None, now=T0)
        expiring, expiring_text = first.create_token("temp", {"read"}, expires_at=T0 + 3600, now=T0)
        assert first.revoke_token(revoked.id, now=T0 + 10)
        assert not first.revoke_token("tok_unknown")
    with reopen(store_url) as second:
        assert second.find_token(revoked_text, now=T0 + 11) is None
        assert second.find_token(expiring_text, now=T0 + 3599).scopes == {"read"}
        assert second.find_token(expiring_text, now=T0 + 3600) is None
        listed = {t.name: t for t in second.list_tokens()}
        assert listed["old bot"].revoked_at == T0 + 10 and listed["temp"].revoked_at is None


def test_token_scopes_are_checked(store):
    with pytest.raises(ValueError, match="unknown scope.*admin"):
        store.create_token("bot", {"trade", "admin"}, expires_at=None)
    with pytest.raises(ValueError, match="at least one scope"):
        store.create_token("bot", set(), expires_at=None)
    assert store.list_tokens() == []


# -- failing closed, and the SQLite file ------------------------------------------------------


def test_a_database_error_reaches_the_caller(store):
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE pending_actions"))
    with pytest.raises(DBAPIError):
        PendingQueue(store)  # the engine cannot start with its queue unreadable
    with pytest.raises(DBAPIError):
        store.list_pending()


def test_default_file_is_under_xdg_data_home_in_wal_mode(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    url = Store.default_url()
    assert url == f"sqlite:///{tmp_path / 'data' / 'perpguard' / 'perpguard.db'}"
    with Store(url) as store, store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    assert (tmp_path / "data" / "perpguard" / "perpguard.db").exists()
