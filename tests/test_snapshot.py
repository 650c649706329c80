"""Reading real Hyperliquid responses: today's shape, the 2023 shape, and meta."""

import json

import pytest
import yaml

from engine.venues.hyperliquid.snapshot import SnapshotError, parse_clearinghouse_state, parse_meta


def cassette(fixtures, name):
    data = yaml.safe_load((fixtures / "hyperliquid/sdk-cassettes" / name).read_text())
    return json.loads(data["interactions"][0]["response"]["body"]["string"])


def test_todays_shape(fixtures):
    data = json.loads((fixtures / "hyperliquid/docs-example-clearinghouse-state.json").read_text())
    state = parse_clearinghouse_state(data)
    (eth,) = state.positions
    assert eth.coin == "ETH" and eth.size == 0.0335 and eth.margin_mode.value == "isolated"
    assert eth.isolated_margin == pytest.approx(4.967826) and eth.max_leverage == 50
    assert state.marks["ETH"] == pytest.approx(100.02765 / 0.0335)
    assert state.account.account_value == pytest.approx(13109.482328)
    assert state.unknown == ()


def test_2023_shape_parses_and_reports_what_it_lacks(fixtures):
    state = parse_clearinghouse_state(cassette(fixtures, "test_get_user_state.yaml"))
    assert len(state.positions) == 12
    assert "crossMaintenanceMarginUsed" in state.unknown
    assert "BTC.maxLeverage" in state.unknown
    book = state.book()
    # no margin table is known, so nothing is invented
    assert book.maintenance_margin is None and book.margin_buffer is None
    assert book.liquidation_px("BTC") is None


def test_2023_shape_with_meta_computes_liquidation(fixtures):
    markets = parse_meta(cassette(fixtures, "test_get_info.yaml"))
    assert markets["BTC"].sz_decimals == 5
    book = parse_clearinghouse_state(cassette(fixtures, "test_get_user_state.yaml")).book(markets)
    assert book.maintenance_margin is not None
    # the short BTC position liquidates above its mark
    assert book.liquidation_px("BTC") > book.marks["BTC"]


def test_missing_field_is_named():
    with pytest.raises(SnapshotError) as err:
        parse_clearinghouse_state({"marginSummary": {"accountValue": "1"}, "assetPositions": [{"position": {"coin": "BTC"}}]})
    assert err.value.field == "assetPositions[0].position.szi"
    with pytest.raises(SnapshotError) as err:
        parse_clearinghouse_state({"marginSummary": {"accountValue": "abc"}, "assetPositions": []})
    assert err.value.field == "marginSummary.accountValue"


def test_tiered_meta_tables():
    meta = {"universe": [{"name": "BTC", "szDecimals": 5, "maxLeverage": 40, "marginTableId": 56},
                         {"name": "DOGE", "szDecimals": 0, "maxLeverage": 10, "marginTableId": 10}],
            "marginTables": [[56, {"description": "tiered 40x", "marginTiers": [
                {"lowerBound": "0.0", "maxLeverage": 40}, {"lowerBound": "150000000.0", "maxLeverage": 20}]}]]}
    markets = parse_meta(meta)
    assert markets["BTC"].margin_table.max_leverage(200e6) == 20
    assert markets["DOGE"].margin_table.maintenance_rate(1) == pytest.approx(0.05)
