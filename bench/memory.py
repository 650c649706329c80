"""The engine's resident memory with 500 positions after a million audit rows.

Measured in a fresh interpreter (a subprocess), as the engine process would be after a long
session: a SQLite store in a temporary folder gets 1,000,000 chained event rows through
`Store.append_events`; then the Engine (default policies, 500 positions in its Book), its
EngineService over that store and the gateway's FastAPI app are built, with the modules a
live engine on Hyperliquid loads (the venue itself is offline: no key, no socket); the whole chain is
verified once and the audit log queried (newest page, a filtered page, the page after it).
Then VmRSS is read from /proc/self/status (resource's maxrss where there is no /proc).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROWS = 1_000_000
POSITIONS = 500
T0 = 1_700_000_000.0


def _rss_mb() -> tuple[float, float]:
    """(resident now, peak) in MB."""
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return peak, peak


def _events(n: int):
    """What a long session logs: decisions' side effects, fills, stops, de-risk, pending."""
    from engine.domain.events import EngineEvent

    for i in range(n):
        at, coin = T0 + i * 0.5, f"C{i % POSITIONS:03d}"
        match i % 5:
            case 0:
                yield EngineEvent("order_sent", at, f"buy {coin} filled, filled 1.5", {"market": coin, "status": "filled"})
            case 1:
                yield EngineEvent("order_denied", at, f"DENIED sell {coin}: Position would exceed PERP_MAX_POSITION_USD "
                                  f"limit of 50000 (projected {61250 + i % 997})",
                                  {"market": coin, "code": "POSITION_LIMIT", "policy": "PERP_MAX_POSITION_USD", "reasons": 1})
            case 2:
                yield EngineEvent("notify", at, f"NOTIFY: buy {coin} ~{2_000 + i % 3_000:,} USD sent",
                                  {"market": coin, "notional": 2_000.0 + i % 3_000})
            case 3:
                yield EngineEvent("position_closed", at, f"{coin} sell 1.5 @ 101.2: realized -12.40 USD",
                                  {"coin": coin, "pnl": -12.4, "losing_streak": i % 3})
            case _:
                yield EngineEvent("pending_closed", at, f"DELAY buy {coin}: EXECUTED (sent: filled)",
                                  {"id": f"p-{i:08x}", "status": "EXECUTED"})


async def _engine(store):
    # what `perpguard --engine-only` loads, and a live venue's SDK stack (500 positions are not paper)
    for module in ("engine.venues.hyperliquid", "engine.node"):
        importlib.import_module(module)
    from bench.venue import OfflineVenue
    from engine.store.auth import MasterGuard
    from engine.domain.clock import ManualClock
    from engine.venues.connector import VenueSnapshot
    from engine.gateway import create_app
    from engine.domain.margin import MarginTable
    from engine.domain.model import Account, MarketInfo, Position
    from engine.risk.policy_file import default_policies
    from engine.live.engine import Engine
    from engine.facade import EngineService

    coins = [f"C{i:03d}" for i in range(POSITIONS)]
    markets = {c: MarketInfo(c, 2, MarginTable.flat((3, 5, 10, 20)[i % 4])) for i, c in enumerate(coins)}
    marks = {c: 1.0 + i for i, c in enumerate(coins)}
    positions = tuple(Position(c, (1_000.0 / marks[c]) * (1 if i % 2 else -1), marks[c], 5) for i, c in enumerate(coins))
    snapshot = VenueSnapshot(Account(1_000_000.0, 1_000_000.0, 1_000_000.0, T0), positions, (), marks, T0)
    clock = ManualClock(T0 + ROWS)
    engine = Engine(OfflineVenue(markets, snapshot), default_policies(), clock, pending_store=store)
    service = EngineService(engine, store, MasterGuard(store))  # as `engine.node.build` wires them
    app = create_app(service)
    await engine.start()
    assert len(engine.book.positions()) == POSITIONS
    return engine, service, app


def _child() -> dict:
    from engine.store import Store

    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/audit.db")
        t0 = time.perf_counter()
        last = store.append_events(_events(ROWS))
        figures["append_s"] = time.perf_counter() - t0
        figures["rss_after_append_mb"] = _rss_mb()[0]
        engine, service, app = asyncio.run(_engine(store))
        t0 = time.perf_counter()
        report = store.verify_chain()
        figures["verify_s"] = time.perf_counter() - t0
        # + what the engine itself logged at start (engine_started, the positions' venue stops)
        assert report.ok and report.checked >= last + 1, report
        page = store.audit(limit=100)
        denied = store.audit(limit=100, kind="order_denied", since=T0 + ROWS / 4)
        older = store.audit(limit=100, before_id=page[-1]["ref"])
        assert len(page) == len(denied) == len(older) == 100
        figures["rss_mb"], figures["peak_rss_mb"] = _rss_mb()
        figures["positions"] = len(engine.book.positions())
        store.close()
    return figures


def measure() -> dict:
    """RSS (MB) of a fresh engine process after the million-row build, verify and audit reads."""
    out = subprocess.run([sys.executable, "-m", "bench.memory", "--child"], capture_output=True, text=True,
                         timeout=600, cwd=Path(__file__).parent.parent, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(json.dumps(_child() if "--child" in sys.argv else measure()))
