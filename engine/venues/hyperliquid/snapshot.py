"""Reading Hyperliquid's info responses: `clearinghouseState` (today's shape and the older
2023 one) and `meta` (universe and margin tables).

Fields a snapshot lacks are reported as unknown (`VenueSnapshot.unknown`), never invented.
The snapshot's own `liquidationPx` is ignored: perpguard computes liquidation itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.domain.margin import MarginTable, margin_table_for
from engine.domain.coins import canonical_coin
from engine.domain.model import Account, MarginMode, MarketInfo, Position
from engine.domain.margin import MarginTier
from engine.venues.connector import VenueSnapshot


class SnapshotError(ValueError):
    """A response that cannot be read; `field` is the JSON path of the problem."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def _get(obj: Any, key: str, path: str) -> Any:
    if not isinstance(obj, dict):
        raise SnapshotError(path, "expected an object")
    if key not in obj:
        raise SnapshotError(f"{path}.{key}" if path else key, "missing")
    return obj[key]


def _num(value: Any, path: str) -> float:
    if isinstance(value, bool):
        raise SnapshotError(path, "expected a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SnapshotError(path, f"expected a number, got {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise SnapshotError(path, "expected a finite number")
    return number


def _opt_num(obj: dict, key: str, path: str) -> float | None:
    value = obj.get(key)
    return None if value is None else _num(value, f"{path}.{key}")


def parse_clearinghouse_state(data: Any, marks: dict[str, float] | None = None) -> VenueSnapshot:
    """`clearinghouseState` JSON -> VenueSnapshot (no open orders). Marks: `positionValue / |szi|` unless given."""
    unknown: list[str] = []
    summary = _get(data, "marginSummary", "")
    account_value = _num(_get(summary, "accountValue", "marginSummary"), "marginSummary.accountValue")
    cross = data.get("crossMarginSummary")
    cross_value = _opt_num(cross, "accountValue", "crossMarginSummary") if isinstance(cross, dict) else None
    if cross_value is None:
        unknown.append("crossMarginSummary.accountValue")
    venue_cross_mm = _opt_num(data, "crossMaintenanceMarginUsed", "")
    if venue_cross_mm is None:
        unknown.append("crossMaintenanceMarginUsed")
    time_ms = _opt_num(data, "time", "")
    positions, snapshot_marks = [], {}
    entries = _get(data, "assetPositions", "")
    if not isinstance(entries, list):
        raise SnapshotError("assetPositions", "expected a list")
    for i, entry in enumerate(entries):
        path = f"assetPositions[{i}].position"
        pos = _get(entry, "position", f"assetPositions[{i}]")
        coin = canonical_coin(str(_get(pos, "coin", path)))
        size = _num(_get(pos, "szi", path), f"{path}.szi")
        if size == 0:
            continue
        lev = pos.get("leverage") or {}
        mode = MarginMode.ISOLATED if lev.get("type") == "isolated" else MarginMode.CROSS
        max_lev = _opt_num(pos, "maxLeverage", path)
        if max_lev is None:
            unknown.append(f"{coin}.maxLeverage")
        position_value = _opt_num(pos, "positionValue", path)
        if position_value is not None:
            snapshot_marks[coin] = position_value / abs(size)
        cum = pos.get("cumFunding")
        positions.append(Position(
            coin=coin,
            size=size,
            entry_px=_num(_get(pos, "entryPx", path), f"{path}.entryPx"),
            leverage=_opt_num(lev, "value", f"{path}.leverage") if isinstance(lev, dict) else None,
            margin_mode=mode,
            isolated_margin=_opt_num(pos, "marginUsed", path) if mode is MarginMode.ISOLATED else None,
            max_leverage=max_lev,
            unrealized_pnl=_opt_num(pos, "unrealizedPnl", path),
            cum_funding=_opt_num(cum, "sinceOpen", f"{path}.cumFunding") if isinstance(cum, dict) else None,
        ))
    merged = {**snapshot_marks, **{canonical_coin(k): v for k, v in (marks or {}).items()}}
    for p in positions:
        if p.coin not in merged:
            unknown.append(f"{p.coin}.mark")
    time = time_ms / 1000.0 if time_ms is not None else None
    account = Account(account_value, cross_value, _opt_num(data, "withdrawable", ""), time)
    return VenueSnapshot(account, tuple(positions), (), merged, time, venue_cross_maintenance=venue_cross_mm,
                         unknown=tuple(unknown))


def parse_meta(data: Any) -> dict[str, MarketInfo]:
    """`meta` (or `metaAndAssetCtxs`' first element) -> MarketInfo per coin."""
    if isinstance(data, list) and data:
        data = data[0]
    universe = _get(data, "universe", "")
    listed: dict[int, MarginTable] = {}
    for i, item in enumerate(data.get("marginTables") or []):
        path = f"marginTables[{i}]"
        if not (isinstance(item, list) and len(item) == 2):
            raise SnapshotError(path, "expected [id, table]")
        table_id, table = item
        tiers = [MarginTier(_num(_get(t, "lowerBound", f"{path}.marginTiers[{j}]"), f"{path}.marginTiers[{j}].lowerBound"),
                            _num(_get(t, "maxLeverage", f"{path}.marginTiers[{j}]"), f"{path}.marginTiers[{j}].maxLeverage"))
                 for j, t in enumerate(_get(table, "marginTiers", path))]
        listed[int(table_id)] = MarginTable.from_tiers(tiers)
    markets = {}
    for i, asset in enumerate(universe):
        path = f"universe[{i}]"
        coin = canonical_coin(str(_get(asset, "name", path)))
        max_lev = _num(_get(asset, "maxLeverage", path), f"{path}.maxLeverage")
        table = None
        if asset.get("marginTableId") is not None:
            table = margin_table_for(int(asset["marginTableId"]), listed)
        markets[coin] = MarketInfo(coin, int(asset.get("szDecimals", 0)), table or MarginTable.flat(max_lev),
                                   bool(asset.get("onlyIsolated", False)))
    return markets


def read_json(path: str | Path, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except OSError as exc:
        raise SnapshotError(str(path), f"cannot read {what}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise SnapshotError(str(path), f"{what} is not valid JSON: {exc}") from None


def read_marks(path: str | Path) -> dict[str, float]:
    """A marks file: `{"BTC": 65000, ...}` (USD)."""
    data = read_json(path, "marks")
    if not isinstance(data, dict):
        raise SnapshotError(str(path), 'expected {"COIN": price, ...}')
    marks = {}
    for coin, px in data.items():
        value = _num(px, coin)
        if value <= 0:
            raise SnapshotError(coin, "a mark must be positive")
        marks[canonical_coin(coin)] = value
    return marks
