"""The paper account as a JSON-able dict and back, so a paper account traded for weeks survives
restarts (issue 16, item 6): cash and positions (size, entry, cumulative funding), per-market
leverage, marks and their times, resting orders and trigger orders with their oids (and the oid
counter, so new oids continue), normalTpsl children and groups, orders still in flight, the
cloids already used, the funding clock and rates, the dead-man switch (its deadline and the
day's fires) and the venue's history (orders, fills, funding, volume).

Not kept: fault switches (a test's), the feed's staleness (the feed restarts with the venue),
the candles (rebuilt from the marks after a restart). The account address and mode come from
the node (store and config), not from here.

`export_account(paper)` is cheap on the engine loop: plain values, and the fill rows by
reference (they are never changed once made). `restore_account(paper, state)` on a fresh
exchange, before the engine starts: it replaces what the constructor set up. This module is the
exchange's own serializer and reads the state of its parts (`matching`, `triggers`, `intake`,
`in_flight`, `dead_man_switch`, `funding`, `history`); `tests/test_paper_restart.py` round-trips
every part.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from itertools import islice
from typing import Any

from engine.venues.connector import OrderRequest, Trigger
from engine.venues.paper.exchange import PaperExchange
from engine.venues.paper.in_flight import InFlight
from engine.venues.paper.matching import RestingOrder
from engine.venues.paper.triggers import RestingTrigger
from engine.venues.paper.ledger import Holding

log = logging.getLogger("perpguard.paper")

VERSION = 1
CLIENT_IDS_KEPT = 10_000  # cloids remembered for DuplicateCloid (the most recent)


def _request(order: OrderRequest) -> dict[str, Any]:
    row: dict[str, Any] = {"coin": order.coin, "side": order.side, "size": str(order.size),
                           "limit_px": str(order.limit_px), "tif": order.tif, "reduce_only": order.reduce_only,
                           "client_id": order.client_id}
    if order.trigger is not None:
        row["trigger"] = {"trigger_px": str(order.trigger.trigger_px), "tpsl": order.trigger.tpsl,
                          "is_market": order.trigger.is_market}
    return row


def _order(row: dict[str, Any]) -> OrderRequest:
    trigger = row.get("trigger")
    return OrderRequest(row["coin"], row["side"], Decimal(row["size"]), Decimal(row["limit_px"]), row["tif"],
                        bool(row["reduce_only"]), row.get("client_id"),
                        Trigger(Decimal(trigger["trigger_px"]), trigger["tpsl"], bool(trigger["is_market"]))
                        if trigger else None)


def export_account(paper: PaperExchange) -> dict[str, Any]:
    """Everything a restart needs, as plain JSON values (sizes and prices of orders as exact
    decimal strings)."""
    ledger, triggers, dead_man = paper.ledger, paper.triggers, paper.dead_man_switch
    client_ids = reversed(list(islice(reversed(paper.intake.client_ids.items()), CLIENT_IDS_KEPT)))
    return {
        "version": VERSION,
        "ledger": {
            "cash": ledger.cash, "fees_paid": ledger.fees_paid, "realized_pnl": ledger.realized_pnl,
            "funding_paid": ledger.funding_paid, "leverage": dict(ledger.leverage), "marks": dict(ledger.marks),
            "holdings": {coin: {"size": str(h.size), "entry_px": h.entry_px, "cum_funding": h.cum_funding}
                         for coin, h in ledger.holdings.items()},
        },
        "mark_times": dict(paper.mark_times),
        "resting": [{"oid": r.oid, "request": _request(r.request), "remaining": str(r.remaining)}
                    for r in paper.matching.resting.values()],
        "triggers": [{"oid": t.oid, "request": _request(t.request), "px": t.px, "falling": t.falling,
                      "position_tpsl": t.position_tpsl, "group": t.group, "waiting": t.waiting}
                     for t in triggers.resting.values()],
        "children": {entry: list(kids) for entry, kids in triggers.children.items()},
        "group": triggers.groups,
        "in_flight": [{"due": f.due, "oids": list(f.oids), "requests": [_request(o) for o in f.requests],
                       "grouping": f.grouping} for f in paper.in_flight.flights],
        "client_ids": dict(client_ids),
        "next_oid": paper.intake.next_oid,
        "funding": {"rates": dict(paper.funding.rates), "hour": paper.funding._hour},
        "dead_man": {"at": dead_man.deadline, "fires": list(dead_man.fires), "reason": dead_man.reason},
        "revision": paper.revision,
        "history": paper.history.export(),
    }


def restore_account(paper: PaperExchange, state: dict[str, Any]) -> None:
    """Put a saved account back into a freshly built exchange (before anything trades on it).
    A market no longer listed is dropped from the state, with a warning. Raises ValueError for
    a state of another version or a malformed one."""
    if state.get("version") != VERSION:
        raise ValueError(f"paper account state version {state.get('version')!r} is not {VERSION}")
    listed = paper.markets
    try:
        saved = state["ledger"]
        ledger = paper.ledger
        ledger.cash = float(saved["cash"])
        ledger.fees_paid = float(saved["fees_paid"])
        ledger.realized_pnl = float(saved["realized_pnl"])
        ledger.funding_paid = float(saved["funding_paid"])
        ledger.leverage.update({c: int(v) for c, v in saved["leverage"].items() if c in listed})
        ledger.marks.update({c: float(v) for c, v in saved["marks"].items() if c in listed})
        ledger.holdings.clear()
        for coin, h in saved["holdings"].items():
            if _listed(coin, listed, "position"):
                ledger.holdings[coin] = Holding(Decimal(h["size"]), float(h["entry_px"]), float(h["cum_funding"]))
        paper.mark_times.update({c: float(t) for c, t in state["mark_times"].items() if c in listed})
        resting = paper.matching.resting
        resting.clear()
        for r in state["resting"]:
            if _listed(r["request"]["coin"], listed, f"order {r['oid']}"):
                resting[r["oid"]] = RestingOrder(r["oid"], _order(r["request"]), Decimal(r["remaining"]))
        triggers = paper.triggers
        triggers.resting.clear()
        for t in state["triggers"]:
            if _listed(t["request"]["coin"], listed, f"trigger order {t['oid']}"):
                triggers.resting[t["oid"]] = RestingTrigger(t["oid"], _order(t["request"]), float(t["px"]),
                                                            bool(t["falling"]), bool(t["position_tpsl"]), t["group"],
                                                            bool(t["waiting"]))
        triggers.children = {entry: [k for k in kids if k in triggers.resting]
                             for entry, kids in state["children"].items() if entry in resting}
        triggers.groups = int(state["group"])
        paper.in_flight.flights = [InFlight(float(f["due"]), list(f["oids"]), [_order(o) for o in f["requests"]],
                                            f["grouping"]) for f in state["in_flight"]]
        paper.intake.client_ids = dict(state["client_ids"])
        paper.intake.next_oid = int(state["next_oid"])
        paper.funding.rates.update({c: float(r) for c, r in state["funding"]["rates"].items() if c in listed})
        paper.funding._hour = int(state["funding"]["hour"])
        dead_man = state["dead_man"]
        switch = paper.dead_man_switch
        switch.deadline = dead_man["at"]
        switch.fires = [float(at) for at in dead_man["fires"]]
        switch.reason = dead_man["reason"]
        paper.history.restore(state["history"])
        paper.revision = int(state["revision"]) + 1
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise ValueError(f"malformed paper account state: {exc!r}") from None
    paper._last_mark_at = paper.clock.now()  # the feed gets its full grace period after the restart


def _listed(coin: str, listed: dict, what: str) -> bool:
    if coin in listed:
        return True
    log.warning("the saved paper account has a %s on %s, which the paper exchange no longer lists: dropped", what, coin)
    return False
