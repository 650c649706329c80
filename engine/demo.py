"""`make demo` until the console lands: the offline tools on a bundled example, as a trader
reads them. Runs `perpguard report` on Hyperliquid's documentation snapshot, then
`perpguard check` with the seed policies for the orders the seed documents talk about."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from engine.cli import main as perpguard

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

ORDERS = [
    ("an $800 BTC buy", {"market": "BTC-USD", "side": "buy", "notional_usd": 800}),
    ("a $3,000 BTC buy", {"market": "BTC-USD", "side": "buy", "notional_usd": 3000}),
    ("a $12,000 BTC buy", {"market": "BTC-USD", "side": "buy", "notional_usd": 12000}),
    ("a $25,000 BTC buy", {"market": "BTC-USD", "side": "buy", "notional_usd": 25000}),
    ("a $30,000 BTC buy (BTC is capped at $25,000)", {"market": "BTC-USD", "side": "buy", "notional_usd": 30000}),
    ("a DOGE buy (not an allowed market)", {"market": "DOGE-USD", "side": "buy", "notional_usd": 500}),
    ("an ETH buy at 6x (ETH is capped at 4x)", {"market": "ETH-USD", "side": "buy", "notional_usd": 500, "leverage": 6}),
    ("closing the ETH long, oversized (clamped, never blocked)", {"market": "ETH", "side": "sell", "size": 1, "reduce_only": True}),
]


def run() -> None:
    state = str(EXAMPLES / "clearinghouse-state.json")
    policies = str(EXAMPLES / "seed-policies.json")
    print("=" * 100)
    print("perpguard report examples/clearinghouse-state.json   (Hyperliquid's own documentation example)")
    print("=" * 100)
    perpguard(["report", state])
    print()
    print("=" * 100)
    print("perpguard check ORDER --state examples/clearinghouse-state.json --policies examples/seed-policies.json")
    print("=" * 100)
    for label, order in ORDERS:
        print(f"\n# {label}: {json.dumps(order)}")
        errors = io.StringIO()
        with contextlib.redirect_stderr(errors):
            code = perpguard(["check", json.dumps(order), "--state", state, "--policies", policies])
        print(f"  exit {code}" + (f"; stderr: {errors.getvalue().strip()[:160]}..." if code == 3 else ""))


if __name__ == "__main__":
    run()
