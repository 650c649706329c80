"""The thin CLI clients against a running engine (real gateway on 127.0.0.1), and `audit
verify` reading the database itself."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from engine.cli.main import main
from engine.store import Store
from tests.engine_server import MASTER, EngineThread


@pytest.fixture
def engine(tmp_path, monkeypatch):
    monkeypatch.setenv("PERPGUARD_MASTER_PASSWORD", MASTER)
    monkeypatch.delenv("PERPGUARD_TOKEN", raising=False)
    with EngineThread(tmp_path) as running:
        yield running


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_status_policy_token_kill_and_resume_from_the_command_line(engine, capsys, monkeypatch):
    url = ("--url", engine.url)
    code, out, _ = run(capsys, "status", *url)
    assert code == 0 and json.loads(out)["trading_state"] == "ACTIVE"

    body = json.dumps({"type": "PERP_ALLOWED_MARKETS", "rules": {"allowedMarkets": ["BTC"]}, "id": "btc-only"})
    assert run(capsys, "policy", "add", body, *url)[0] == 0
    code, out, _ = run(capsys, "policy", "list", *url)
    assert "btc-only" in {p["id"] for p in json.loads(out)}
    assert run(capsys, "policy", "rm", "btc-only", *url)[0] == 0

    code, out, _ = run(capsys, "token", "create", "ops", "--scopes", "kill,read", *url)
    created = json.loads(out)
    assert code == 0 and created["token"].startswith("pg_") and created["scopes"] == ["kill", "read"]

    monkeypatch.delenv("PERPGUARD_MASTER_PASSWORD")
    code, _, err = run(capsys, "kill", "--reason", "ops drill", "--token", created["token"], *url)
    assert code == 0 and "HALTED" in err
    code, out, _ = run(capsys, "status", "--token", created["token"], *url)
    assert json.loads(out)["trading_state"] == "HALTED"

    monkeypatch.setenv("PERPGUARD_MASTER_PASSWORD", "wrong password")
    code, _, err = run(capsys, "resume", *url)
    assert code == 2 and "UNAUTHORIZED" in err
    monkeypatch.setenv("PERPGUARD_MASTER_PASSWORD", MASTER)
    code, _, err = run(capsys, "resume", *url)
    assert code == 0 and "ACTIVE" in err

    assert run(capsys, "token", "revoke", created["id"], *url)[0] == 0
    code, _, err = run(capsys, "status", "--token", created["token"], *url)
    assert code == 2 and "UNAUTHORIZED" in err


def test_a_client_with_no_engine_to_talk_to_says_so(capsys, monkeypatch):
    monkeypatch.setenv("PERPGUARD_MASTER_PASSWORD", MASTER)
    code, _, err = run(capsys, "status", "--url", "http://127.0.0.1:9")
    assert code == 1 and "cannot reach the engine" in err


def test_audit_verify_names_the_first_tampered_row(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'audit.db'}"
    with EngineThread(tmp_path, db_url=db) as engine:
        engine.call(engine.service.service.kill("drill"))
    assert run(capsys, "audit", "verify", "--db", db, "--config", str(tmp_path / "perpguard.toml"))[0] == 0
    with Store(db) as store, store.engine.begin() as conn:
        conn.execute(text("UPDATE events SET message = 'nothing happened' WHERE id = 2"))
    code, out, _ = run(capsys, "audit", "verify", "--db", db, "--config", str(tmp_path / "perpguard.toml"))
    assert code == 1 and "events#2" in out


def test_init_refuses_a_bad_listen_address_before_writing_anything(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PERPGUARD_MASTER_PASSWORD", MASTER)
    config = tmp_path / "perpguard.toml"
    code, _, err = run(capsys, "init", "--config", str(config), "--db", f"sqlite:///{tmp_path / 'x.db'}", "--listen", "nonsense")
    assert code == 2 and "--listen" in err and not config.exists()
