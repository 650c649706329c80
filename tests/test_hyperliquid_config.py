"""The connector's config: where the agent key comes from, and that it never shows."""

import pytest
from pydantic import ValidationError

from engine.venues.hyperliquid.config import API_WALLET_HELP, AgentKeyError, HyperliquidConfig
from fake_hyperliquid.harness import AGENT, MASTER

KEY_HEX = AGENT.key.hex()


def config(**kw):
    return HyperliquidConfig(**({"account_address": MASTER.address} | kw))


def test_agent_key_from_an_environment_variable(monkeypatch):
    monkeypatch.setenv("HL_KEY", KEY_HEX)
    assert config(agent_key_env="HL_KEY").load_agent().address == AGENT.address


def test_agent_key_from_a_0600_file(tmp_path):
    path = tmp_path / "agent.key"
    path.write_text(KEY_HEX + "\n")
    path.chmod(0o600)
    assert config(agent_key_file=path).load_agent().address == AGENT.address


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_key_file_others_can_read_is_refused(tmp_path, mode):
    path = tmp_path / "agent.key"
    path.write_text(KEY_HEX)
    path.chmod(mode)
    with pytest.raises(AgentKeyError) as refused:
        config(agent_key_file=path).load_agent()
    assert "chmod 600" in str(refused.value) and KEY_HEX not in str(refused.value)


def test_the_master_key_is_refused(monkeypatch):
    monkeypatch.setenv("HL_KEY", MASTER.key.hex())
    with pytest.raises(AgentKeyError, match="master"):
        config(agent_key_env="HL_KEY").load_agent()


def test_a_bad_key_is_refused_without_echoing_it(monkeypatch):
    monkeypatch.setenv("HL_KEY", "0xnot-a-key-but-secret-looking")
    with pytest.raises(AgentKeyError) as refused:
        config(agent_key_env="HL_KEY").load_agent()
    assert "secret-looking" not in str(refused.value)
    assert refused.value.__cause__ is None and refused.value.__suppress_context__


def test_a_missing_variable_says_which(monkeypatch):
    monkeypatch.delenv("HL_KEY", raising=False)
    with pytest.raises(AgentKeyError, match="HL_KEY"):
        config(agent_key_env="HL_KEY").load_agent()


def test_the_config_never_holds_or_shows_the_key(monkeypatch, tmp_path):
    monkeypatch.setenv("HL_KEY", KEY_HEX)
    cfg = config(agent_key_env="HL_KEY")
    cfg.load_agent()
    for text in (repr(cfg), str(cfg), cfg.model_dump_json()):
        assert KEY_HEX not in text and KEY_HEX.removeprefix("0x") not in text
    assert "HL_KEY" in repr(cfg)  # it says where the key is, not what it is


def test_exactly_one_key_source(tmp_path):
    with pytest.raises(ValidationError, match="exactly one"):
        config()
    with pytest.raises(ValidationError, match="exactly one"):
        config(agent_key_env="A", agent_key_file=tmp_path / "k")


def test_networks_and_the_test_override():
    assert config(agent_key_env="A").api_url == "https://api.hyperliquid-testnet.xyz"
    main = config(agent_key_env="A", network="mainnet")
    assert main.api_url == "https://api.hyperliquid.xyz" and main.ws_url == "wss://api.hyperliquid.xyz/ws"
    local = config(agent_key_env="A", network="mainnet", base_url="http://127.0.0.1:9/")
    assert local.ws_url == "ws://127.0.0.1:9/ws" and local.mainnet  # signatures still for mainnet


def test_bad_values_name_their_field():
    with pytest.raises(ValidationError, match="account_address"):
        HyperliquidConfig(account_address="0x123", agent_key_env="A")
    with pytest.raises(ValidationError, match="stale_after_seconds"):
        config(agent_key_env="A", stale_after_seconds=0)
    with pytest.raises(ValidationError, match="agent_key"):
        config(agent_key_env="A", agent_key="0x" + "11" * 32)  # a key is never a config value
    assert config(agent_key_env="A", markets=["eth-usd", "BTC-PERP"]).markets == ("ETH", "BTC")


def test_api_wallet_help_tells_a_trader_what_to_do():
    text = API_WALLET_HELP
    assert "app.hyperliquid.xyz" in text and "More -> API" in text
    assert "Never paste your master private key" in text
    assert "agent_key_env" in text and "agent_key_file" in text and "umask 077" in text
