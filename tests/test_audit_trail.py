"""An audit trail that cannot be rewritten (issue 13, item 4), on SQLite and a real PostgreSQL.

Policy, token and settings changes are links of the hash chain, with who made them; the links
are keyed (HMAC-SHA256 with a key in a 0600 file outside the database) and the chain heads are
checkpointed, signed, into a file beside the key. `perpguard audit verify` then catches what
someone holding the database but not the key does to it.
"""

from __future__ import annotations

import asyncio

import hashlib
import json
import logging
import stat
from pathlib import Path

import pytest
from builders import T0, make_gate, order
from pg_server import postgres_server, store_url  # noqa: F401  (fixtures)
from sqlalchemy import text

from engine.cli.main import main
from engine.config import load_config
from engine.domain.clock import ManualClock
from engine.domain.events import EngineEvent
from engine.facade import EngineService
from engine.live.engine import Engine
from engine.node import stored_policies
from engine.risk.policies import parse_policies
from engine.risk.policy_file import DEFAULT_POLICY_BODIES
from engine.store import Store
from engine.store.auth import MASTER_HASH_KEY, set_master_password
from engine.venues.paper.exchange import PaperExchange
from engine.venues.paper.universe import PAPER_MARKETS, START_PRICES


@pytest.fixture(autouse=True)
def config_home(tmp_path, monkeypatch) -> Path:
    """The XDG config dir, where the audit key and the checkpoints live: a fresh one per test."""
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home / "perpguard"


@pytest.fixture
def store(store_url):  # noqa: F811
    with Store(store_url) as opened:
        yield opened


def verify_cli(capsys, url: str, tmp_path: Path) -> tuple[int, str]:
    config = tmp_path / "perpguard.toml"
    config.touch()
    code = main(["audit", "verify", "--db", url, "--config", str(config)])
    out, err = capsys.readouterr()
    return code, out + err


def seeded_service(store: Store, tmp_path: Path) -> EngineService:
    """What the node does on a first start (the default policies stored by "system"), and the
    service the gateway calls on top of it."""
    config_file = tmp_path / "perpguard.toml"
    config_file.touch()
    bodies = stored_policies(store, load_config(str(config_file)))
    clock = ManualClock(T0)
    paper = PaperExchange(PAPER_MARKETS, equity=100_000, clock=clock)
    for coin, px in START_PRICES.items():
        paper.set_mark(coin, px)
    return EngineService(Engine(paper, parse_policies(bodies), clock), store)


def fill_audit_log(store: Store, rounds: int = 4) -> None:
    gate, _clock = make_gate([{"id": "max-leverage", "type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": 5}}])
    for i in range(rounds):
        size = 1.0 if i % 2 == 0 else 50.0
        decision = gate.evaluate(order("BTC", size=size, client_id=f"bot-{i}"), now=T0 + i)
        store.append_decision({**decision.as_dict(), "client_id": f"bot-{i}"})
        store.append_event(EngineEvent("order_sent", T0 + i, f"order BTC {size:g}", {"market": "BTC", "size": size}))


def plain_sha256(prev: str, content: dict) -> str:
    """The link hash as an attacker without the key computes it (the old, unkeyed chain)."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256((prev + canonical).encode()).hexdigest()


# -- 1. policy changes are in the chain, with who made them --------------------------------------


def test_deleting_every_policy_and_adding_max_leverage_1e6_leaves_a_trace(store, store_url, tmp_path, capsys):  # noqa: F811
    service = seeded_service(store, tmp_path)
    seeded = [b["id"] for b in DEFAULT_POLICY_BODIES]
    for policy_id in seeded:
        asyncio.run(service.remove_policy(policy_id))
    wild = asyncio.run(service.add_policy({"type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": 1e6}}))

    saved = store.audit(kind="policy_saved")
    assert [(i["subject"], i["actor"]) for i in reversed(saved)] == (
        [(pid, "system") for pid in seeded] + [(wild["id"], "master")])
    assert saved[0]["data"]["policy"]["rules"]["maxLeverage"] == 1e6
    deleted = store.audit(kind="policy_deleted")
    assert sorted((i["subject"], i["actor"]) for i in deleted) == sorted((pid, "master") for pid in seeded)
    assert {i["table"] for i in store.audit()} == {"changes"}  # the listing shows them

    report = store.verify_chain()
    assert report.ok and report.anchored and report.checked == len(seeded) * 2 + 1
    code, out = verify_cli(capsys, store_url, tmp_path)
    assert code == 0 and "intact" in out and f"{len(seeded) * 2 + 1} changes" in out


def test_token_and_setting_changes_are_chained_with_their_actor(store):
    set_master_password(store, "correct horse battery")
    info, _plaintext = store.create_token("grid bot", {"trade", "read"}, expires_at=None, now=T0)
    store.revoke_token(info.id, now=T0 + 5)
    items = {(i["kind"], i["subject"]): i for i in store.audit()}
    assert items[("token_created", info.id)]["actor"] == "master"
    assert items[("token_created", info.id)]["data"]["token"]["name"] == "grid bot"
    assert items[("token_revoked", info.id)]["at"] == T0 + 5
    changed = items[("setting_changed", MASTER_HASH_KEY)]
    assert changed["actor"].startswith("local")  # a process with the database open (perpguard init)
    assert "argon2" not in json.dumps(changed)  # a keyed fingerprint, never the hash itself
    assert store.verify_chain().ok


# -- 2. the policies, tokens and settings tables edited behind the store's back ------------------


def _raise_max_leverage(conn) -> None:
    body = json.loads(conn.execute(text("SELECT body FROM policies WHERE id = 'max-leverage'")).scalar_one())
    body["rules"]["maxLeverage"] = 1e6
    conn.execute(text("UPDATE policies SET body = :b WHERE id = 'max-leverage'"),
                 {"b": json.dumps(body, sort_keys=True, separators=(",", ":"))})


def _insert_policy(conn) -> None:
    body = {"id": "extra", "type": "RATE_LIMIT", "rules": {"maxTransactions": 1_000_000, "period": "minute"}}
    conn.execute(text("INSERT INTO policies (id, body) VALUES ('extra', :b)"), {"b": json.dumps(body)})


BEHIND_THE_STORE = {
    "a policy's limit raised": (_raise_max_leverage, "policies#max-leverage"),
    "a policy deleted": ("DELETE FROM policies WHERE id = 'loss-limit'", "policies#loss-limit"),
    "a policy inserted": (_insert_policy, "policies#extra"),
    "a token's hash swapped for the attacker's": ("UPDATE tokens SET token_hash = 'ab' || token_hash", "tokens#"),
    "a revoked token brought back": ("UPDATE tokens SET revoked_at = NULL", "tokens#"),
    "a token given more scopes": ("UPDATE tokens SET scopes = 'kill,read,trade'", "tokens#"),
    "the master password replaced": (f"UPDATE settings SET value = 'x' || value WHERE key = '{MASTER_HASH_KEY}'",
                                     f"settings#{MASTER_HASH_KEY}"),
    "a HALT lifted": ("UPDATE settings SET value = REPLACE(value, 'HALTED', 'ACTIVE') WHERE key = 'trading_state'",
                      "settings#trading_state"),
}


@pytest.mark.parametrize("edit, named", BEHIND_THE_STORE.values(), ids=BEHIND_THE_STORE.keys())
def test_a_table_edited_behind_the_store_fails_verify_naming_it(store, store_url, tmp_path, capsys, edit, named):  # noqa: F811
    from engine.risk.trading_state import TradingStateMachine

    seeded_service(store, tmp_path)
    set_master_password(store, "correct horse battery")
    info, _ = store.create_token("read bot", {"read"}, expires_at=None, now=T0)
    store.revoke_token(info.id, now=T0 + 1)
    halted = TradingStateMachine()
    halted.halt("kill switch", T0 + 2)
    store.save_trading(halted, EngineEvent("state_changed", T0 + 2, "trading ACTIVE -> HALTED: kill switch"))
    assert store.verify_chain().ok

    with store.engine.begin() as conn:
        edit(conn) if callable(edit) else conn.execute(text(edit))
    report = store.verify_chain()
    expected = named + (info.id if named == "tokens#" else "")
    assert not report.ok and report.first_bad == expected
    code, out = verify_cli(capsys, store_url, tmp_path)
    assert code == 1 and f"BROKEN at {expected}" in out and "does not match" in out


# -- 3, 4. rewrites by someone without the key ---------------------------------------------------


def test_decision_1_edited_and_every_later_hash_recomputed_is_caught_at_decision_1(store, store_url, tmp_path,
                                                                                  capsys):  # noqa: F811
    fill_audit_log(store)
    with store.engine.begin() as conn:
        rows = conn.execute(text("SELECT id, at, body FROM decisions ORDER BY id")).all()
        prev = conn.execute(text("SELECT prev_hash FROM decisions WHERE id = 1")).scalar_one()
        for row in rows:
            body = row.body.replace('"DENY"', '"ALLOW"') if row.id == 1 else row.body
            digest = plain_sha256(prev, {"id": row.id, "at": row.at, "body": body})
            conn.execute(text("UPDATE decisions SET body = :b, prev_hash = :p, hash = :h WHERE id = :i"),
                         {"b": body, "p": prev, "h": digest, "i": row.id})
            prev = digest
        conn.execute(text("UPDATE chain_heads SET last_hash = :h WHERE \"table\" = 'decisions'"), {"h": prev})
    report = store.verify_chain()
    assert not report.ok and report.first_bad == "decisions#1"
    code, out = verify_cli(capsys, store_url, tmp_path)
    assert code == 1 and "BROKEN at decisions#1" in out


def test_a_forged_row_appended_with_the_head_moved_is_caught(store, store_url, tmp_path, capsys):  # noqa: F811
    fill_audit_log(store)
    with store.engine.begin() as conn:
        last_id, last_hash = conn.execute(text("SELECT last_id, last_hash FROM chain_heads WHERE \"table\" = 'events'")).one()
        forged = {"id": last_id + 1, "at": T0 + 99, "kind": "order_sent", "message": "nothing to see",
                  "data": "{}"}
        conn.execute(text("INSERT INTO events (id, at, kind, message, data, prev_hash, hash) "
                          "VALUES (:id, :at, :kind, :message, :data, :p, :h)"),
                     {**forged, "p": last_hash, "h": plain_sha256(last_hash, forged)})
        conn.execute(text("UPDATE chain_heads SET last_id = :i, last_hash = :h WHERE \"table\" = 'events'"),
                     {"i": last_id + 1, "h": plain_sha256(last_hash, forged)})
    report = store.verify_chain()
    assert not report.ok and report.first_bad == f"events#{last_id + 1}"
    code, out = verify_cli(capsys, store_url, tmp_path)
    assert code == 1 and f"BROKEN at events#{last_id + 1}" in out


def test_the_newest_rows_deleted_and_the_head_moved_back_are_caught_by_the_checkpoint(store):
    fill_audit_log(store)
    store.close()  # a clean stop checkpoints the heads
    with store.engine.begin() as conn:
        row = conn.execute(text("SELECT id, hash FROM events WHERE id = 2")).one()
        conn.execute(text("DELETE FROM events WHERE id > 2"))
        conn.execute(text("UPDATE chain_heads SET last_id = 2, last_hash = :h WHERE \"table\" = 'events'"),
                     {"h": row.hash})
    report = store.verify_chain()
    assert not report.ok and report.first_bad == "events#3" and "checkpoint" in report.problem


def test_the_anchor_removed_and_the_chain_recomputed_unkeyed_is_caught(store):
    """A "downgrade" to the old plain chain: the checkpoints still know this database."""
    fill_audit_log(store)
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_anchor"))
        prev = "0" * 64
        for row in conn.execute(text("SELECT id, at, kind, message, data FROM events ORDER BY id")).all():
            digest = plain_sha256(prev, dict(row._mapping))
            conn.execute(text("UPDATE events SET prev_hash = :p, hash = :h WHERE id = :i"), {"p": prev, "h": digest, "i": row.id})
            prev = digest
        conn.execute(text("UPDATE chain_heads SET last_hash = :h WHERE \"table\" = 'events'"), {"h": prev})
        conn.execute(text("DELETE FROM decisions"))
        conn.execute(text("DELETE FROM chain_heads WHERE \"table\" = 'decisions'"))
    report = store.verify_chain()
    assert not report.ok and report.first_bad == "audit_anchor"


# -- 5. an untouched database verifies -------------------------------------------------------------


def test_an_untouched_database_verifies(store, store_url, tmp_path, capsys):  # noqa: F811
    service = seeded_service(store, tmp_path)
    set_master_password(store, "correct horse battery")
    store.create_token("bot", {"trade"}, expires_at=None, now=T0)
    fill_audit_log(store)
    asyncio.run(service.add_policy({"id": "max-leverage", "type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": 3}}))
    with reopen_after_close(store, store_url) as again:
        again.append_event(EngineEvent("engine_started", T0 + 10, "engine reconciled"))
        report = again.verify_chain()
    assert report.ok and report.anchored and report.checkpoints >= 1 and report.first_bad is None
    code, out = verify_cli(capsys, store_url, tmp_path)
    assert code == 0 and "intact" in out


def reopen_after_close(store: Store, url: str) -> Store:
    store.close()
    return Store(url)


# -- 6. the key ----------------------------------------------------------------------------------


def test_the_key_file_is_0600_and_never_shown(store, store_url, tmp_path, config_home, capsys, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG)
    fill_audit_log(store)
    seeded_service(store, tmp_path)
    key_file = config_home / "audit.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) & 0o077 == 0
    secret = key_file.read_text().strip()
    assert len(secret) >= 64

    outputs = [verify_cli(capsys, store_url, tmp_path)[1]]
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE events SET message = 'edited' WHERE id = 1"))
    outputs.append(verify_cli(capsys, store_url, tmp_path)[1])
    outputs.append(repr(store.verify_chain()))
    with store.engine.connect() as conn:
        for table in ("decisions", "events", "changes", "audit_anchor", "chain_heads", "settings", "policies"):
            outputs.append(repr(conn.execute(text(f"SELECT * FROM {table}")).all()))
    outputs.append((config_home / "audit.checkpoints").read_text())
    for shown in [*outputs, caplog.text]:
        assert secret not in shown and bytes.fromhex(secret).hex().upper() not in shown


def test_a_key_file_others_can_read_is_refused(store, config_home):
    from engine.store.anchor import AuditKeyError

    fill_audit_log(store, rounds=1)
    (config_home / "audit.key").chmod(0o644)
    report = store.verify_chain()
    assert not report.ok and "chmod 600" in report.problem
    with pytest.raises(AuditKeyError, match="chmod 600"):
        Store(store.url)  # an engine refuses to start on it, rather than fail at its first write


def test_a_missing_key_fails_verify_and_says_where_it_was_looked_for(store, store_url, tmp_path, config_home,
                                                                    capsys):  # noqa: F811
    fill_audit_log(store, rounds=1)
    (config_home / "audit.key").unlink()
    report = store.verify_chain()
    assert not report.ok and report.first_bad == "audit_anchor" and str(config_home / "audit.key") in report.problem
    code, out = verify_cli(capsys, store_url, tmp_path)
    assert code == 1 and "BROKEN at audit_anchor" in out and str(config_home / "audit.key") in out


# -- existing databases ----------------------------------------------------------------------------


def write_legacy_database(url: str) -> None:
    """A database as the previous version left it: plain sha256 links, policies and a token
    with no record of who made them, no anchor."""
    with Store(url) as fresh, fresh.engine.begin() as conn:
        prev = "0" * 64
        for i in range(1, 4):
            content = {"id": i, "at": T0 + i, "kind": "order_sent", "message": f"legacy {i}", "data": "{}"}
            digest = plain_sha256(prev, content)
            conn.execute(text("INSERT INTO events (id, at, kind, message, data, prev_hash, hash) "
                              "VALUES (:id, :at, :kind, :message, :data, :p, :h)"), {**content, "p": prev, "h": digest})
            prev = digest
        conn.execute(text("INSERT INTO chain_heads (\"table\", last_id, last_hash) VALUES ('events', 3, :h)"), {"h": prev})
        conn.execute(text("INSERT INTO policies (id, body) VALUES ('max-leverage', :b)"),
                     {"b": '{"enabled":true,"id":"max-leverage","rules":{"leverageTiers":{},"maxLeverage":5.0},'
                           '"type":"PERP_MAX_LEVERAGE"}'})


def test_a_legacy_database_is_verified_unkeyed_until_the_engine_anchors_it(store_url):  # noqa: F811
    write_legacy_database(store_url)
    with Store(store_url) as legacy:
        report = legacy.verify_chain()
        assert report.ok and not report.anchored and report.legacy_rows == 3
        assert any("not anchored" in note for note in report.notes)

        legacy.append_event(EngineEvent("engine_started", T0 + 10, "engine reconciled"))  # the first write anchors
        report = legacy.verify_chain()
        assert report.ok and report.anchored and report.legacy_rows == 3 and report.checked == 5  # + the baseline
        baseline = legacy.audit(kind="baseline_recorded")[0]
        assert baseline["actor"] == "system" and [p["id"] for p in baseline["data"]["policies"]] == ["max-leverage"]

        with legacy.engine.begin() as conn:  # a legacy row rewritten after the anchor, plain hashes recomputed
            rows = conn.execute(text("SELECT id, at, kind, message, data FROM events WHERE id <= 3 ORDER BY id")).all()
            prev = "0" * 64
            for row in rows:
                content = {**row._mapping, "message": "rewritten"} if row.id == 2 else dict(row._mapping)
                digest = plain_sha256(prev, content)
                conn.execute(text("UPDATE events SET message = :m, prev_hash = :p, hash = :h WHERE id = :i"),
                             {"m": content["message"], "p": prev, "h": digest, "i": row.id})
                prev = digest
        report = legacy.verify_chain()
    assert not report.ok and report.first_bad == "events#3"  # the legacy head the anchor pinned


def test_two_stores_on_one_database_share_its_anchor(store_url):  # noqa: F811
    """The engine and `perpguard init` (or a script) open the same database: whichever writes
    first anchors it, and the other's links use that anchor."""
    with Store(store_url) as first, Store(store_url) as second:  # both opened before either wrote
        first.append_event(EngineEvent("engine_started", T0, "engine reconciled"))
        set_master_password(second, "correct horse battery")
        first.save_policy({"id": "max-leverage", "type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": 3}})
        with first.engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM audit_anchor")).scalar_one() == 1
        report = second.verify_chain()
    assert report.ok and report.rows == {"decisions": 0, "events": 1, "changes": 2}
