"""Hyperliquid's order wire, read into perpguard's OrderIntent, and perpguard's answers written
back as the venue's per-order `statuses`.

An order on the wire (docs "Exchange endpoint", the SDK's `order_request_to_order_wire`):
`{"a": asset, "b": is_buy, "p": price, "s": size, "r": reduce_only, "t": {"limit": {"tif":
"Gtc"|"Ioc"|"Alo"}} | {"trigger": {"isMarket", "triggerPx", "tpsl"}}, "c": cloid?}`, prices and
sizes as decimal strings. Asset ids are the index in the venue's `meta` universe; a HIP-3 dex's
assets are numbered 100000 + 10000 × (the dex's index in `perpDexs`) + the index in its meta.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any

from pydantic import ValidationError

from engine.domain.model import BuilderFee, OrderIntent
from engine.idempotency import Answer
from engine.venues.hl_api import VenueApi

CLOID = re.compile(r"^0x[0-9a-fA-F]{32}$")
TIFS = {"Gtc": "Gtc", "Ioc": "Ioc", "Alo": "Alo", "FrontendMarket": "Ioc"}


class WireError(ValueError):
    """A body the venue could not deserialize; `field` names the part that is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class AssetMap:
    """Asset id <-> coin, from the venue's own `meta` (and `perpDexs` and each dex's meta)."""

    def __init__(self, coins: dict[int, str]) -> None:
        self.coins = coins
        self.assets = {coin: asset for asset, coin in coins.items()}

    @classmethod
    async def load(cls, venue: VenueApi) -> AssetMap:
        meta = await venue.info({"type": "meta"})
        coins = {i: asset["name"] for i, asset in enumerate(meta.get("universe", []))}
        dexes = await venue.info({"type": "perpDexs"})
        for index, dex in enumerate(dexes or []):
            if index == 0 or not isinstance(dex, dict) or not dex.get("name"):
                continue
            dex_meta = await venue.info({"type": "meta", "dex": dex["name"]})
            for i, asset in enumerate(dex_meta.get("universe", [])):
                coins[100_000 + 10_000 * index + i] = asset["name"]
        return cls(coins)

    def coin(self, asset: Any, field: str) -> str:
        if isinstance(asset, bool) or not isinstance(asset, int):
            raise WireError(field, f"asset must be an integer id, not {asset!r}")
        coin = self.coins.get(asset)
        if coin is None:
            raise WireError(field, f"unknown asset {asset}")
        return coin


def _decimal(value: Any, field: str) -> float:
    """A wire number: a decimal string (as the clients send them) or a JSON number."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise WireError(field, f"must be a decimal string, not {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise WireError(field, f"must be a decimal string, not {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise WireError(field, f"must be a finite non-negative number, not {value!r}")
    return number


def _bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise WireError(field, f"must be true or false, not {value!r}")
    return value


def cloid_of(order: dict[str, Any], field: str) -> str | None:
    cloid = order.get("c")
    if cloid is None:
        return None
    if not isinstance(cloid, str) or not CLOID.match(cloid):
        raise WireError(field, f"cloid must be 0x and 32 hex digits, not {cloid!r}")
    return cloid.lower()


def intent_for(order: Any, assets: AssetMap, field: str, *, bot: str | None, builder: BuilderFee | None = None,
               stop_loss: float | None = None, take_profit: float | None = None) -> OrderIntent:
    """The OrderIntent of one wire order (`field` locates it in the action, e.g. `orders[0]`).
    A limit `Ioc` is a limit order with time in force Ioc (the SDK's market orders are Ioc limits
    at mid ± slippage: their price is the worst the bot accepts, and the gate prices them there)."""
    if not isinstance(order, dict):
        raise WireError(field, "must be an order object {a, b, p, s, r, t}")
    coin = assets.coin(order.get("a"), f"{field}.a")
    side = "buy" if _bool(order.get("b"), f"{field}.b") else "sell"
    px = _decimal(order.get("p"), f"{field}.p")
    size = _decimal(order.get("s"), f"{field}.s")
    reduce_only = _bool(order.get("r", False), f"{field}.r")
    kind = order.get("t")
    fields: dict[str, Any] = {"market": coin, "side": side, "size": size, "reduce_only": reduce_only,
                              "client_id": cloid_of(order, f"{field}.c"), "bot": bot,
                              "stop_loss": stop_loss, "take_profit": take_profit, "builder": builder}
    if isinstance(kind, dict) and isinstance(kind.get("limit"), dict):
        tif = kind["limit"].get("tif")
        if tif not in TIFS:
            raise WireError(f"{field}.t.limit.tif", f"must be Gtc, Ioc or Alo, not {tif!r}")
        fields.update(type="limit", limit_px=px, tif=TIFS[tif])
    elif isinstance(kind, dict) and isinstance(kind.get("trigger"), dict):
        trigger = kind["trigger"]
        tpsl = trigger.get("tpsl")
        if tpsl not in ("tp", "sl"):
            raise WireError(f"{field}.t.trigger.tpsl", f"must be tp or sl, not {tpsl!r}")
        is_market = _bool(trigger.get("isMarket"), f"{field}.t.trigger.isMarket")
        fields.update(trigger_px=_decimal(trigger.get("triggerPx"), f"{field}.t.trigger.triggerPx"), tpsl=tpsl,
                      type="market" if is_market else "limit", limit_px=None if is_market else px)
    else:
        raise WireError(f"{field}.t", "must be {limit: {tif}} or {trigger: {isMarket, triggerPx, tpsl}}")
    if size <= 0:
        raise WireError(f"{field}.s", "size must be positive")
    try:
        return OrderIntent(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"]) or "order"
        raise WireError(f"{field} ({where})", problem["msg"]) from None


def _num(value: float) -> str:
    """A number as the venue writes it in answers (shortest decimal)."""
    return format(value, "f").rstrip("0").rstrip(".") if value != int(value) else str(int(value)) + ".0"


def ok(kind: str = "default", data: Any = None) -> dict[str, Any]:
    """The venue's `{"status": "ok", "response": {"type": kind, "data"?: data}}`."""
    response: dict[str, Any] = {"type": kind}
    if data is not None:
        response["data"] = data
    return {"status": "ok", "response": response}


def err(text: str) -> dict[str, Any]:
    """The venue's refusal of a whole action: `{"status": "err", "response": text}`."""
    return {"status": "err", "response": text}


def refusal(code: str, message: str) -> str:
    """The text of perpguard's refusal, where the venue would put its own error."""
    return f"perpguard: {code}: {message}"


def status_for(answer: Answer) -> dict[str, Any]:
    """One entry of the venue's `statuses` for perpguard's answer to one order."""
    body = answer.body
    if answer.status == 202:
        pending = body["pending"]
        when = pending.get("execute_at")
        release = (f"releases at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(when))} unless cancelled"
                   if when else "waits for the trader's approval")
        return {"error": refusal("HELD", f"{pending['tier']}: pending {pending['id']} {release}; its fill will "
                                         f"come over userFills and orderUpdates")}
    if "error" in body:
        error = body["error"]
        if error["code"] == "VENUE_REJECTED":
            return {"error": error["message"]}  # the venue's own text
        return {"error": refusal(error["code"], error["message"])}
    order = body.get("order")
    if order is None:  # a dry run
        return {"error": refusal("DRY_RUN", "judged, not sent")}
    oid = int(order["oid"]) if order.get("oid") is not None and str(order["oid"]).isdigit() else order.get("oid")
    if order.get("filled_size") and order["status"] in ("filled", "partially_filled") or order.get("remaining") == 0:
        filled: dict[str, Any] = {"totalSz": _num(order["filled_size"]), "avgPx": _num(order["avg_px"] or 0.0),
                                  "oid": oid}
        return {"filled": _with_cloid(filled, order)}
    return {"resting": _with_cloid({"oid": oid}, order)}


def _with_cloid(status: dict[str, Any], order: dict[str, Any]) -> dict[str, Any]:
    cloid = order.get("client_id")
    if isinstance(cloid, str) and CLOID.match(cloid):
        status["cloid"] = cloid
    return status
