"""The fake venue's markets, built in code (the recordings are never edited): today's `meta`
shape with `marginTables`, a HIP-3 dex `xyz`, and the asset ids the venue gives them.

- Main dex (perpDexs index 0): the recorded 2023 universe in its recorded order (so asset ids
  stay what they were: BTC 0, ETH 1, ..., SOL 5), with today's leverage where it is known:
  BTC 40x (marginTableId 56: 40x from $0, 20x from $150M), ETH 25x (table 55: 25x, 15x from
  $100M), SOL 20x, XRP 20x; the rest 10x (a flat table: an id below 50 is one tier whose max
  leverage is the id). Marks are the recorded allMids.
- HIP-3 dex `xyz` (perpDexs index 1): `xyz:TSLA` (`onlyIsolated: true`, `marginMode:
  "strictIsolated"`, the field today's meta carries beside `onlyIsolated`; the venue's other
  modes are `noCross`, `enabled`, `blocked`) and `xyz:NVDA` (cross allowed), 10x / 20x flat.
- Asset ids (docs "Asset IDs"): main dex = index in its universe; spot = 10000 + index; a
  builder dex = 100000 + perp_dex_index × 10000 + index (the SDK's Info computes 110000 + i ×
  10000 for the i-th dex after the first, the same numbers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from engine.domain.margin import MarginTable, MarginTier, margin_table_for
from fake_hyperliquid.recorded import recorded

# marginTables as `meta` lists them today (docs "Margin tiers"; the ids are the venue's).
MARGIN_TABLES: dict[int, dict[str, Any]] = {
    55: {"description": "tiered 25x", "marginTiers": [{"lowerBound": "0.0", "maxLeverage": 25},
                                                       {"lowerBound": "100000000.0", "maxLeverage": 15}]},
    56: {"description": "tiered 40x", "marginTiers": [{"lowerBound": "0.0", "maxLeverage": 40},
                                                       {"lowerBound": "150000000.0", "maxLeverage": 20}]},
}
# coin -> (maxLeverage, marginTableId) where today's differs from the recording's flat 50x.
TODAY = {"BTC": (40, 56), "ETH": (25, 55), "SOL": (20, 20), "XRP": (20, 20)}
DEFAULT_LEVERAGE_ID = (10, 10)

HIP3_DEX = {"name": "xyz", "fullName": "XYZ", "deployer": "0x88806a71d74ad0a510b350545c9ae490912f0888",
            "oracleUpdater": None, "feeRecipient": None, "assetToStreamingOiCap": [], "assetToFundingMultiplier": []}
# name, szDecimals, maxLeverage, onlyIsolated, marginMode, mark
HIP3_UNIVERSE = [("xyz:TSLA", 3, 10, True, "strictIsolated", 250.0), ("xyz:NVDA", 3, 20, False, None, 120.0)]


@dataclass
class Market:
    name: str
    asset: int  # the venue's asset id
    index: int  # in its dex's universe
    dex: str  # "" for the main dex
    sz_decimals: int
    max_leverage: int
    table_id: int
    table: MarginTable
    only_isolated: bool = False
    margin_mode: str | None = None
    meta_row: dict[str, Any] = field(default_factory=dict)

    @property
    def lot(self) -> Decimal:
        return Decimal(1).scaleb(-self.sz_decimals)

    def price_ok(self, px: Decimal) -> bool:
        """docs "Tick and lot size": at most 5 significant figures (integers always fine) and
        at most 6 − szDecimals decimals for perps."""
        if px <= 0:
            return False
        if px == px.to_integral_value():
            return True
        digits = px.normalize().as_tuple()
        decimals = -digits.exponent if digits.exponent < 0 else 0
        significant = len(digits.digits)
        return significant <= 5 and decimals <= 6 - self.sz_decimals

    def round_px(self, px: float) -> float:
        """The nearest valid price (5 significant figures, 6 − szDecimals decimals)."""
        if px <= 0:
            return 0.0
        rounded = float(f"{px:.5g}")
        return round(rounded, max(0, 6 - self.sz_decimals))


def _table(table_id: int) -> MarginTable:
    listed = {i: MarginTable.from_tiers([MarginTier(float(t["lowerBound"]), float(t["maxLeverage"]))
                                         for t in table["marginTiers"]]) for i, table in MARGIN_TABLES.items()}
    table = margin_table_for(table_id, listed)
    assert table is not None, table_id
    return table


class Markets:
    """Every perp market of every dex, by name and by asset id."""

    def __init__(self) -> None:
        self.dexes = ["", HIP3_DEX["name"]]
        self.by_name: dict[str, Market] = {}
        self.by_asset: dict[int, Market] = {}
        self.start_marks: dict[str, float] = {}
        mids = recorded("allMids")
        for index, row in enumerate(recorded("meta")["universe"]):
            lev, table_id = TODAY.get(row["name"], DEFAULT_LEVERAGE_ID)
            meta_row = {"szDecimals": row["szDecimals"], "name": row["name"], "maxLeverage": lev,
                        "marginTableId": table_id}
            self._add(Market(row["name"], index, index, "", row["szDecimals"], lev, table_id, _table(table_id),
                             meta_row=meta_row))
            if row["name"] in mids:
                self.start_marks[row["name"]] = float(mids[row["name"]])
        for index, (name, sz, lev, only_isolated, mode, mark) in enumerate(HIP3_UNIVERSE):
            meta_row = {"szDecimals": sz, "name": name, "maxLeverage": lev, "marginTableId": lev}
            if only_isolated:
                meta_row["onlyIsolated"] = True
            if mode:
                meta_row["marginMode"] = mode
            self._add(Market(name, 100_000 + 1 * 10_000 + index, index, "xyz", sz, lev, lev, _table(lev),
                             only_isolated, mode, meta_row))
            self.start_marks[name] = mark

    def _add(self, market: Market) -> None:
        self.by_name[market.name] = market
        self.by_asset[market.asset] = market

    def of_dex(self, dex: str) -> list[Market]:
        return [m for m in self.by_name.values() if m.dex == dex]

    def meta(self, dex: str = "") -> dict[str, Any]:
        tables = [[i, t] for i, t in MARGIN_TABLES.items()] if dex == "" else []
        return {"universe": [dict(m.meta_row) for m in self.of_dex(dex)], "marginTables": tables,
                "collateralToken": 0}

    def perp_dexs(self) -> list[Any]:
        return [None, dict(HIP3_DEX)]


SPOT_META = {
    "tokens": [{"name": "USDC", "szDecimals": 8, "weiDecimals": 8, "index": 0,
                "tokenId": "0x6d1e7cde53ba9467b783cb7c530ce054", "isCanonical": True, "evmContract": None,
                "fullName": None},
               {"name": "PURR", "szDecimals": 0, "weiDecimals": 5, "index": 1,
                "tokenId": "0xc1fb593aeffbeb02f85e0308e9956a90", "isCanonical": True, "evmContract": None,
                "fullName": None}],
    "universe": [{"name": "PURR/USDC", "tokens": [1, 0], "index": 0, "isCanonical": True}],
}
