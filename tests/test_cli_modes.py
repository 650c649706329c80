"""No mode drops a global option silently: each refuses (exit 2, the message naming the option and
saying why) every option it would not use, through the real entry points: the installed
`perpguard` script for the modes that start an engine or a console, `engine.cli.main.main` for
the commands. What a mode does use still works, and `--help` says which options each refuses."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli.modes import refuse_ignored_options
from engine.cli.main import build_parser, main
from engine.config import load_config

PERPGUARD = shutil.which("perpguard", path=str(Path(sys.executable).parent))
ORDER = '{"market": "BTC", "side": "buy", "notional_usd": 100}'


def closed_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def perpguard(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """The installed script, its XDG dirs under tmp_path. A refusal returns at once; a mode that
    started instead would run until the timeout fails the test."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_STATE_HOME": str(tmp_path / "state")}
    return subprocess.run([PERPGUARD, *args], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)


# ---- the modes that start something: the installed script ----------------------------------------


@pytest.mark.parametrize("argv, refused", [
    (["--demo", "--db", "sqlite:///mine.db"], ["--db"]),
    (["--demo", "--config", "mine.toml"], ["--config"]),
    (["--demo", "--db", "sqlite:///mine.db", "--config", "mine.toml"], ["--db", "--config"]),
    (["attach", "--db", "sqlite:///mine.db"], ["--db"]),
    (["attach", "--listen", "127.0.0.1:9999"], ["--listen"]),
    (["--allow-remote", "attach"], ["--allow-remote"]),
    (["--demo", "attach"], ["--demo"]),
    (["--engine-only", "--demo"], ["--demo"]),
    (["--engine-only", "status"], ["--engine-only"]),
])
def test_a_mode_refuses_the_options_it_would_ignore(tmp_path, argv, refused):
    assert PERPGUARD, "the perpguard console script is installed with the project"
    done = perpguard(tmp_path, *argv)
    assert done.returncode == 2, done.stderr
    for option in refused:
        assert f"{option}:" in done.stderr  # named, with the reason after it
    assert not (tmp_path / "state" / "perpguard" / "perpguard.log").exists()  # no console was started


def test_the_demo_says_why_it_refuses_a_database(tmp_path):
    done = perpguard(tmp_path, "--demo", "--db", "sqlite:///mine.db")
    assert done.stderr.startswith("perpguard --demo: error: --db:") and "throwaway database" in done.stderr


# ---- the commands: engine.cli.main --------------------------------------------------------------


# A thin client that was not refused would ask the engine at URL, where nothing listens.
@pytest.mark.parametrize("argv, refused", [
    (["status", "--db", "sqlite:///x.db", "--url", "URL"], "--db"),
    (["--listen", "127.0.0.1:1", "kill", "--url", "URL"], "--listen"),
    (["policy", "list", "--allow-remote", "--url", "URL"], "--allow-remote"),
    (["token", "create", "ops", "--db", "sqlite:///x.db", "--url", "URL"], "--db"),
    (["--demo", "resume", "--url", "URL"], "--demo"),
    (["audit", "verify", "--listen", "127.0.0.1:1"], "--listen"),
    (["--config", "mine.toml", "check", ORDER, "--state", "state.json"], "--config"),
    (["--db", "sqlite:///x.db", "report", "state.json"], "--db"),
    (["--listen", "127.0.0.1:1", "replay", "c.csv", "--market", "BTC", "--side", "long", "--leverage", "2"], "--listen"),
    (["--config", "mine.toml", "policy", "defaults"], "--config"),
])
def test_a_command_refuses_the_options_it_would_ignore(capsys, monkeypatch, tmp_path, argv, refused):
    monkeypatch.setenv("PERPGUARD_MASTER_PASSWORD", "irrelevant")
    monkeypatch.chdir(tmp_path)
    url = closed_url()
    code = main([url if a == "URL" else a for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and f"error: {refused}:" in err
    assert "cannot reach" not in err  # refused before anything was asked of an engine


def test_init_refuses_a_mode_flag_before_writing_anything(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PERPGUARD_MASTER_PASSWORD", "a master password")
    config = tmp_path / "perpguard.toml"
    assert main(["--demo", "init", "--config", str(config)]) == 2
    assert "--demo:" in capsys.readouterr().err and not config.exists()


# ---- what a mode uses it takes ------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["--demo", "--listen", "127.0.0.1:0", "--allow-remote"],
    ["--config", "mine.toml", "--db", "sqlite:///x.db", "--listen", "127.0.0.1:0"],
    ["--engine-only", "--config", "mine.toml", "--db", "sqlite:///x.db", "--listen", "0.0.0.0:1", "--allow-remote"],
    ["attach", "--url", "http://127.0.0.1:1", "--token", "pg_x", "--config", "mine.toml"],
    ["init", "--config", "mine.toml", "--db", "sqlite:///x.db", "--listen", "0.0.0.0:1", "--allow-remote"],
    ["status", "--config", "mine.toml", "--url", "http://127.0.0.1:1"],
    ["audit", "verify", "--config", "mine.toml", "--db", "sqlite:///x.db"],
    ["check", ORDER, "--state", "state.json", "--policies", "p.json"],
])
def test_the_options_a_mode_uses_are_not_refused(argv):
    refuse_ignored_options(build_parser().parse_args(argv))


def test_init_writes_allow_remote_when_given(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PERPGUARD_MASTER_PASSWORD", "a master password")
    config = tmp_path / "perpguard.toml"
    assert main(["init", "--config", str(config), "--db", f"sqlite:///{tmp_path / 'pg.db'}",
                 "--listen", "0.0.0.0:8710", "--allow-remote"]) == 0
    engine = load_config(str(config)).engine
    assert engine.allow_remote and engine.listen == "0.0.0.0:8710"


def test_help_says_which_options_each_mode_refuses(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    top = " ".join(capsys.readouterr().out.split())
    assert "master password: refuses --db, --config" in top  # --demo
    assert "Refused by --demo; attach; the thin clients" in top  # --db
    with pytest.raises(SystemExit):
        main(["attach", "--help"])
    attach = " ".join(capsys.readouterr().out.split())
    assert "--db URL refused: the console attaches to a running engine" in attach
