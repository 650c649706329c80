"""`perpguard check` and `perpguard report` as a trader runs them."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli.main import main

ROOT = Path(__file__).parent.parent
SEED = ROOT / "examples/seed-policies.json"


@pytest.fixture
def state(fixtures, tmp_path):
    """The docs example without the exchange's liquidationPx, plus a BTC long of $20,000."""
    data = json.loads((fixtures / "hyperliquid/docs-example-clearinghouse-state.json").read_text())
    for entry in data["assetPositions"]:
        del entry["position"]["liquidationPx"]
    data["assetPositions"].append({"type": "oneWay", "position": {
        "coin": "BTC", "szi": "0.2", "entryPx": "100000.0", "leverage": {"type": "cross", "value": 10},
        "marginUsed": "2000.0", "maxLeverage": 40, "positionValue": "20000.0", "unrealizedPnl": "0.0"}})
    data["marginSummary"]["totalNtlPos"] = "20100.02765"
    path = tmp_path / "state.json"
    path.write_text(json.dumps(data))
    return path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("notional, tier", [(800, "INSTANT"), (3000, "NOTIFY"), (12000, "DELAY"), (25000, "APPROVAL")])
def test_seed_spending_tiers(capsys, fixtures, notional, tier):
    # the documentation example as it is: no BTC position, so $25,000 stays within BTC's 25000 cap
    docs = fixtures / "hyperliquid/docs-example-clearinghouse-state.json"
    code, out, _ = run(capsys, "check", json.dumps({"market": "BTC-USD", "side": "buy", "notional_usd": notional}),
                       "--state", docs, "--policies", SEED, "--json")
    decision = json.loads(out)
    assert (code, decision["verdict"], decision["tier"]) == (0, "ALLOW", tier)


def test_btc_position_to_30k_is_denied_by_the_market_limit(capsys, state):
    # the BTC long is $20,000; adding $10,000 takes it to $30,000 against marketLimits.BTC-USD 25000
    code, out, err = run(capsys, "check", '{"market": "BTC-PERP", "side": "buy", "notional_usd": 10000}',
                         "--state", state, "--policies", SEED, "--json")
    decision = json.loads(out)
    assert code == 3 and decision["verdict"] == "DENY"
    (reason,) = [r for r in decision["reasons"] if r["effect"] == "DENY"]
    assert reason["type"] == "PERP_MAX_POSITION_USD" and reason["limit"] == 25000
    assert reason["value"] == pytest.approx(30000)
    error = json.loads(err)["error"]
    assert error["code"] == "POLICY_DENIED" and error["domain"] == "POLICY" and error["retryable"] is False
    assert "PERP_MAX_POSITION_USD limit of 25000" in error["message"]


def test_six_x_leverage_is_denied(capsys, state):
    code, out, _ = run(capsys, "check", '{"market": "SOL", "side": "buy", "notional_usd": 900, "leverage": 6}',
                       "--state", state, "--policies", SEED, "--json")
    reasons = json.loads(out)["reasons"]
    assert code == 3 and [r["type"] for r in reasons if r["effect"] == "DENY"] == ["PERP_MAX_LEVERAGE"]


def test_account_leverage_over_five_is_denied(capsys, state, tmp_path):
    policies = tmp_path / "lev.json"
    policies.write_text('[{"type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": 5}}]')
    equity = 13109.482328
    just_over = 5.01 * equity - 20100.02765
    code, out, _ = run(capsys, "check", json.dumps({"market": "BTC", "side": "buy", "notional_usd": just_over}),
                       "--state", state, "--policies", policies, "--json")
    assert code == 3 and json.loads(out)["projected"]["account_leverage"] == pytest.approx(5.01, rel=1e-3)
    code, _, _ = run(capsys, "check", json.dumps({"market": "BTC", "side": "buy", "notional_usd": 4.9 * equity - 20100.02765}),
                     "--state", state, "--policies", policies)
    assert code == 0


def test_adding_to_a_20x_isolated_position_is_denied_by_the_default_5x(capsys, state):
    code, out, _ = run(capsys, "check", '{"market": "ETH", "side": "buy", "size": 0.01}', "--state", state, "--json")
    (reason,) = json.loads(out)["reasons"]
    assert code == 3 and reason["code"] == "LEVERAGE_LIMIT" and reason["value"] == pytest.approx(20, rel=0.01)


def test_doge_is_not_an_allowed_market(capsys, state):
    code, out, _ = run(capsys, "check", '{"market": "DOGE", "side": "buy", "notional_usd": 100}',
                       "--state", state, "--policies", SEED, "--json")
    assert code == 3 and json.loads(out)["reasons"][0]["code"] == "MARKET_NOT_ALLOWED"


def test_reducing_the_btc_long_passes_every_entry_rule(capsys, state):
    code, out, _ = run(capsys, "check", '{"market": "BTC", "side": "sell", "size": 0.5, "reduce_only": true}',
                       "--state", state, "--policies", SEED, "--json")
    decision = json.loads(out)
    assert code == 0 and decision["tier"] == "INSTANT"
    assert decision["size"] == pytest.approx(0.2)  # clamped to the position, not rejected
    assert decision["projected"]["position_notional"] == pytest.approx(0)


def test_order_file_and_projected_figures(capsys, state, tmp_path):
    order = tmp_path / "order.json"
    order.write_text('{"market": "BTC", "side": "buy", "size": 0.01, "type": "limit", "limit_px": 99000}')
    code, out, _ = run(capsys, "check", order, "--state", state, "--json")  # default policy set
    projected = json.loads(out)["projected"]
    assert projected["position_notional"] == pytest.approx(0.21 * 100_000)  # valued at mark
    assert 0 < projected["liquidation_px"] < 100_000 and projected["margin_buffer"] > 0.9
    assert code == 0


@pytest.mark.parametrize("argv, needle", [
    (['{"market": "BTC", "side": "buy", "sise": 1}'], "ORDER_JSON.sise"),
    (['{"market": "BTC", "side": "hold", "size": 1}'], "ORDER_JSON.side"),
    (['{"market": "BTC", "side": "buy", "size": -1}'], "ORDER_JSON.size"),
    (['{"market": "BTC", "side": "buy"'], "not valid JSON"),
    (['no-such-order.json'], "neither a JSON object nor a file"),
])
def test_bad_order_exits_2_naming_the_field(capsys, state, argv, needle):
    code, _, err = run(capsys, "check", *argv, "--state", state)
    assert code == 2 and needle in err


def test_bad_policy_file_exits_2_naming_the_field(capsys, state, tmp_path):
    bad = tmp_path / "p.json"
    bad.write_text('[{"type": "PERP_MAX_LEVERAGE", "rules": {"maxLevrage": 5}}]')
    code, _, err = run(capsys, "check", '{"market": "BTC", "side": "buy", "size": 1}', "--state", state, "--policies", bad)
    assert code == 2 and "policies[0].rules.maxLevrage: unknown field" in err and "maxLeverage: Field required" in err


def test_bad_state_exits_2(capsys, tmp_path):
    bad = tmp_path / "s.json"
    bad.write_text('{"assetPositions": []}')
    code, _, err = run(capsys, "check", '{"market": "BTC", "side": "buy", "size": 1}', "--state", bad)
    assert code == 2 and "marginSummary" in err


def test_report_computes_the_liquidation_price_itself(capsys, state):
    code, out, _ = run(capsys, "report", state, "--json")
    report = json.loads(out)
    eth = next(p for p in report["positions"] if p["coin"] == "ETH")
    assert code == 0 and eth["liquidation_px"] == pytest.approx(2866.26936529, rel=1e-4)
    assert eth["distance"] == pytest.approx((eth["mark_px"] - eth["liquidation_px"]) / eth["mark_px"])
    assert eth["margin_buffer"] == pytest.approx(0.7986, abs=1e-4)
    assert eth["leverage"] == pytest.approx(20.1, abs=0.1)
    # the default set's 5x cap fires on the 20x isolated ETH position
    assert any(r["type"] == "PERP_MAX_LEVERAGE" for r in eth["policies_fired"])
    assert {"equity", "maintenance_margin", "margin_buffer"} <= set(report["account"])


def test_report_on_the_2023_shape_says_unknown(capsys, fixtures, tmp_path):
    import yaml

    data = yaml.safe_load((fixtures / "hyperliquid/sdk-cassettes/test_get_user_state.yaml").read_text())
    path = tmp_path / "old.json"
    path.write_text(data["interactions"][0]["response"]["body"]["string"])
    code, out, _ = run(capsys, "report", path, "--json")
    report = json.loads(out)
    assert code == 0 and len(report["positions"]) == 12
    assert all(p["liquidation_px"] is None for p in report["positions"])
    assert "crossMaintenanceMarginUsed" in report["unknown"]
    code, text, _ = run(capsys, "report", path)
    assert "unknown" in text


def test_policy_defaults_round_trip(capsys, tmp_path):
    code, out, _ = run(capsys, "policy", "defaults")
    path = tmp_path / "defaults.json"
    path.write_text(out)
    from engine.risk.policy_file import load_policy_file

    types = {p.type for p in load_policy_file(path)}
    assert code == 0 and {"PERP_MAX_LEVERAGE", "MIN_MARGIN_BUFFER", "STALE_DATA", "RATE_LIMIT"} <= types


def test_installed_console_script_exit_codes(state):
    exe = shutil.which("perpguard", path=str(Path(sys.executable).parent))
    assert exe, "the perpguard console script is installed with the project"
    deny = subprocess.run([exe, "check", '{"market": "DOGE", "side": "buy", "notional_usd": 50}', "--state", str(state),
                           "--policies", str(SEED)], capture_output=True, text=True)
    assert deny.returncode == 3 and json.loads(deny.stderr)["error"]["code"] == "POLICY_DENIED"
