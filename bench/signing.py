"""One Hyperliquid order from intent to the bytes we POST, against the SDK's own path for the
same order (no network either way), and the fast signatures checked against the SDK's.

- ours: the gate's decision (bench.gate's 22 policies, a few positions), the venue order built
  from it (`Executor.request_for`), its cloid, the order wire and fast signature
  (`ActionSigner.order`), and the JSON body as httpx encodes it.
- the SDK's: `Exchange.order(...)` for that order with `post` replaced by the JSON encoding
  requests would do: the wire, the EIP-712 signature and the payload.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any, Callable

from eth_account import Account
from hyperliquid.exchange import Exchange
from hyperliquid.utils.constants import TESTNET_API_URL
from hyperliquid.utils.signing import order_request_to_order_wire, order_wires_to_order_action, sign_l1_action
from hyperliquid.utils.types import Cloid

from bench import gate as gate_bench
from engine.live.execution import Executor
from engine.venues.hyperliquid.fast_signing import sign_l1_action_fast, signing_key
from engine.venues.hyperliquid.signer import ActionSigner, cloid_for

AGENT = Account.from_key("0x" + "a7" * 32)  # a throwaway key made for the bench
ACCOUNT = "0x" + "4d" * 20
META = {"universe": [{"name": c, "szDecimals": d} for c, d in (("BTC", 2), ("ETH", 4), ("SOL", 2))]}
POSITIONS = 5
ORDER_TTL_MS = 10_000


class _EncodingExchange(Exchange):
    """The SDK's Exchange whose `post` only encodes the payload, as `requests.post(json=...)` does."""

    def post(self, url_path: str, payload: Any = None) -> bytes:
        return json.dumps(payload, allow_nan=False).encode("utf-8")


def _httpx_body(payload: dict[str, Any]) -> bytes:
    """The bytes httpx sends for `post(json=payload)` (httpx 0.28's encoding)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def order_paths() -> tuple[Callable[[], bytes], Callable[[], bytes]]:
    """(ours, the SDK's): each builds, signs and encodes one BTC buy, returning the body."""
    gate, intent = gate_bench.build(POSITIONS)
    executor = Executor(None, gate.book, gate.default_slippage)
    signer = ActionSigner(AGENT, ACCOUNT, False, META)
    evaluate, request_for, state = gate.evaluate, executor.request_for, gate.trading.state
    decision = evaluate(intent)
    assert decision.allowed, [r.message for r in decision.reasons]

    def ours() -> bytes:
        decision = evaluate(intent)
        request, _ = request_for(decision, state)
        payload = signer.order(request, cloid_for(request.client_id), int(time.time() * 1000) + ORDER_TTL_MS)
        return _httpx_body(payload)

    request, _ = request_for(decision, state)
    exchange = _EncodingExchange(AGENT, TESTNET_API_URL, meta=META, account_address=ACCOUNT,
                                 spot_meta={"universe": [], "tokens": []})
    sz, px, cloid = float(request.size), float(request.limit_px), Cloid.from_str(cloid_for(request.client_id))

    def sdk() -> bytes:
        exchange.set_expires_after(int(time.time() * 1000) + ORDER_TTL_MS)
        return exchange.order("BTC", True, sz, px, {"limit": {"tif": "Gtc"}}, reduce_only=False, cloid=cloid)

    return ours, sdk


def _p50_us(run: Callable[[], Any], n: int) -> float:
    clock, samples = time.perf_counter_ns, []
    for _ in range(n):
        t0 = clock()
        run()
        samples.append(clock() - t0)
    samples.sort()
    return samples[n // 2] / 1000


def random_order_actions(count: int, seed: int = 7) -> list[tuple[Any, ...]]:
    """`count` (action, vault, nonce, expires_after, is_mainnet) tuples: one random order each
    (asset, side, size and price as the SDK wires them, tif, reduce_only, cloid or none)."""
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        request = {"coin": "", "is_buy": rng.random() < 0.5,
                   "sz": rng.randint(1, 10**7) / 10 ** rng.randint(0, 6),
                   "limit_px": rng.randint(1, 99_999) / 10 ** rng.randint(0, 6),  # 5 significant figures
                   "order_type": {"limit": {"tif": rng.choice(["Gtc", "Ioc", "Alo"])}},
                   "reduce_only": rng.random() < 0.3}
        if rng.random() < 0.8:
            request["cloid"] = Cloid.from_int(rng.getrandbits(128))
        action = order_wires_to_order_action([order_request_to_order_wire(request, rng.randint(0, 200))])
        vault = "0x" + rng.randbytes(20).hex() if rng.random() < 0.2 else None
        expires = rng.randint(1_700_000_000_000, 2_000_000_000_000) if rng.random() < 0.5 else None
        cases.append((action, vault, rng.randint(1_700_000_000_000, 2_000_000_000_000), expires, rng.random() < 0.5))
    return cases


def signatures_identical(count: int = 1000) -> bool:
    """Whether the fast path signs `count` random orders exactly as the SDK does."""
    key = signing_key(AGENT)
    return all(sign_l1_action_fast(key, *case) == sign_l1_action(AGENT, *case) for case in random_order_actions(count))


def measure(n: int = 3000, n_sdk: int = 1000, repeats: int = 5) -> dict:
    """p50 latencies (µs) of one order on our path and on the SDK's, each the median over
    `repeats` interleaved runs; and whether 1,000 random orders sign identically."""
    ours, sdk = order_paths()
    for _ in range(200):  # warm both paths (caches, first-call imports)
        ours(), sdk()
    our_p50s, sdk_p50s = [], []
    for _ in range(repeats):
        our_p50s.append(_p50_us(ours, n))
        sdk_p50s.append(_p50_us(sdk, n_sdk))
    our_p50s.sort()
    sdk_p50s.sort()
    return {"order_path_p50_us": our_p50s[repeats // 2], "sdk_order_path_p50_us": sdk_p50s[repeats // 2],
            "signatures_identical": signatures_identical(1000)}


if __name__ == "__main__":
    print(measure())
