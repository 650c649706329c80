"""Reading Hyperliquid's info responses: `clearinghouseState` (today's shape and the older
2023 one), `meta` (universe and margin tables, of the main dex and of builder-deployed HIP-3
dexes), and `spotClearinghouseState` for unified and portfolio-margin accounts
(`unified_account`, whose docstring gives the venue's formula).

Fields a snapshot lacks are reported as unknown (`VenueSnapshot.unknown`), never invented.
The snapshot's own `liquidationPx` is ignored: perpguard computes liquidation itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

from engine.domain.margin import MarginTable, margin_table_for
from engine.domain.coins import canonical_coin
from engine.domain.model import Account, MarginMode, MarketInfo, Position
from engine.domain.margin import MarginTier
from engine.venues.connector import AccountMode, VenueSnapshot

USDC_TOKEN = 0  # the spot token index of USDC, the collateral of the main dex (and of most HIP-3 dexes)
# userAbstraction's answer -> VenueSnapshot.account_mode (`disabled`, `default`, `dexAbstraction`: standard)
ABSTRACTION_MODES: dict[str, AccountMode] = {"unifiedAccount": "unified", "portfolioMargin": "portfolio"}
ONLY_ISOLATED_MODES = frozenset({"strictIsolated", "noCross"})  # meta `marginMode`s without cross margin


def account_mode_of(abstraction: Any) -> AccountMode:
    """`userAbstraction` (a bare JSON string, e.g. "unifiedAccount") -> standard | unified | portfolio."""
    return ABSTRACTION_MODES.get(abstraction if isinstance(abstraction, str) else "", "standard")


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
        only_isolated = bool(asset.get("onlyIsolated", False)) or asset.get("marginMode") in ONLY_ISOLATED_MODES
        markets[coin] = MarketInfo(coin, int(asset.get("szDecimals", 0)), table or MarginTable.flat(max_lev),
                                   only_isolated)
    return markets


def merge_states(states: Iterable[VenueSnapshot]) -> VenueSnapshot:
    """Several dexes' `clearinghouseState`s (the main dex and HIP-3 dexes) as one snapshot: every
    dex's positions and marks; account figures summed. A standard account keeps collateral per
    dex (a dex's cross positions draw only on that dex's collateral); the sum is what the account
    holds across them."""
    states = list(states)
    if len(states) == 1:
        return states[0]
    first = states[0]
    positions = tuple(p for s in states for p in s.positions)
    marks: dict[str, float] = {}
    for s in states:
        marks.update(s.marks)

    def total(values: list[float | None]) -> float | None:
        return None if any(v is None for v in values) else sum(values)  # type: ignore[arg-type]

    account = Account(sum(s.account.account_value for s in states),
                      total([s.account.cross_account_value for s in states]),
                      total([s.account.withdrawable for s in states]), first.account.time)
    return VenueSnapshot(account, positions, (), marks, first.time,
                         venue_cross_maintenance=total([s.venue_cross_maintenance for s in states]),
                         unknown=tuple(u for s in states for u in s.unknown))


@dataclass(frozen=True, slots=True)
class UnifiedAccount:
    """A unified or portfolio-margin account's figures in its collateral token (USD for USDC).

    `equity`: the spot balance (`total`), which already holds the perp positions' margins and
    PnL; `isolated_margin`: margin of isolated positions; `cross_collateral` = equity −
    isolated_margin; `cross_maintenance`: Σ crossMaintenanceMarginUsed over the dexes;
    `buffer` = cross_collateral − cross_maintenance (the venue liquidates below 0);
    `ratio` = cross_maintenance / cross_collateral (the venue's Unified Account Ratio; None when
    there is no collateral); `withdrawable` = total − hold."""

    equity: float
    isolated_margin: float
    cross_collateral: float
    cross_maintenance: float
    withdrawable: float
    ratio: float | None

    @property
    def buffer(self) -> float:
        return self.cross_collateral - self.cross_maintenance


def spot_balance(spot_state: Any, token: int = USDC_TOKEN) -> tuple[float, float]:
    """(total, hold) of one token in a `spotClearinghouseState`; (0, 0) when it holds none (the
    venue leaves out tokens with no balance)."""
    balances = _get(spot_state, "balances", "")
    if not isinstance(balances, list):
        raise SnapshotError("balances", "expected a list")
    for i, row in enumerate(balances):
        if isinstance(row, dict) and (row.get("token") == token or (row.get("token") is None and token == USDC_TOKEN
                                                                    and row.get("coin") == "USDC")):
            return (_num(_get(row, "total", f"balances[{i}]"), f"balances[{i}].total"),
                    _num(row.get("hold", 0), f"balances[{i}].hold"))
    return 0.0, 0.0


def unified_account(spot_state: Any, clearinghouse_states: Mapping[str, Any] | Iterable[Any],
                    collateral_tokens: Mapping[str, int] | None = None, token: int = USDC_TOKEN) -> UnifiedAccount:
    """The figures of a unified (`unifiedAccount`) or portfolio-margin (`portfolioMargin`) account,
    by the venue's own formula (Hyperliquid docs, "Account abstraction modes",
    `computeUnifiedAccountRatio`), for the collateral `token` (USDC by default):

        cross_maintenance = Σ over the perp dexes whose collateral is `token` of crossMaintenanceMarginUsed
        isolated_margin   = Σ over those dexes' isolated positions of marginUsed
        cross_collateral  = spot total(token) − isolated_margin
        ratio             = cross_maintenance / cross_collateral      (liquidation at ratio ≥ 1)
        equity            = spot total(token)                          (account value)
        buffer            = cross_collateral − cross_maintenance

    The spot balance is the whole account: in these modes the venue keeps every balance and hold
    in `spotClearinghouseState` and the per-dex `clearinghouseState`s "are not meaningful" for
    collateral (their accountValue reads 0 with no position: hyperliquid-python-sdk #261,
    hummingbot #8165, nautilus_trader #4206). The spot total already contains the perp
    positions' equity, so adding a dex's accountValue to it counts it twice (sushiswap PR #2184);
    the ratio divides by the spot collateral, not by the perp accountValue (OneKey PR #13554).
    Only the perp states' maintenance margins and isolated margins are read.

    `clearinghouse_states`: dex name ("" the main dex) -> its `clearinghouseState` (or a list,
    all taken to use `token`); `collateral_tokens`: dex -> its collateral token (a meta's
    `collateralToken`), USDC when not given. Portfolio margin may also count other assets (HYPE,
    BTC) as collateral: only `token` is counted here, which errs toward less equity."""
    states = clearinghouse_states.items() if isinstance(clearinghouse_states, Mapping) \
        else ((str(i), s) for i, s in enumerate(clearinghouse_states))
    cross_mm = isolated = 0.0
    for dex, state in states:
        if (collateral_tokens or {}).get(dex, USDC_TOKEN) != token:
            continue
        mm = _opt_num(state, "crossMaintenanceMarginUsed", dex)
        cross_mm += mm or 0.0
        for i, entry in enumerate(_get(state, "assetPositions", dex) or []):
            pos = _get(entry, "position", f"{dex}.assetPositions[{i}]")
            if (pos.get("leverage") or {}).get("type") == "isolated":
                isolated += _opt_num(pos, "marginUsed", f"{dex}.assetPositions[{i}].position") or 0.0
    total, hold = spot_balance(spot_state, token)
    collateral = total - isolated
    ratio = cross_mm / collateral if collateral > 0 else (None if cross_mm == 0 else float("inf"))
    return UnifiedAccount(total, isolated, collateral, cross_mm, max(0.0, total - hold), ratio)


def unified_snapshot(perp: VenueSnapshot, unified: UnifiedAccount, mode: AccountMode) -> VenueSnapshot:
    """The perp snapshot (positions, marks) with the account figures of `unified_account`."""
    account = Account(unified.equity, unified.cross_collateral, unified.withdrawable, perp.account.time)
    unknown = tuple(u for u in perp.unknown if not u.startswith(("crossMarginSummary", "crossMaintenance")))
    return replace(perp, account=account, venue_cross_maintenance=unified.cross_maintenance, unknown=unknown,
                   account_mode=mode)


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
