"""What perpguard's Hyperliquid-compatible API costs a bot: the same SDK order (a resting BTC
limit buy) sent straight to the strict fake venue, and sent through a running perpguard
(`/hl/exchange` on its gateway: signature recovery, nonce, gate, re-signature by perpguard's
agent, the venue round trip and the reconciliation that follows), interleaved in one run over
loopback. Each order is cancelled again, untimed, before the next one.

Also `signer_recover_us`: recovering the signer of one SDK-signed order from its signature
(the action's hash, the EIP-712 digest and one public-key recovery: the phantom-agent source
`/hl/exchange` tries first, the one bots behind it last signed with; a bot signing with the other
one costs a second recovery).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the fake venue lives with the tests

import httpx  # noqa: E402
from eth_account import Account  # noqa: E402
from hyperliquid.exchange import Exchange  # noqa: E402
from hyperliquid.utils.signing import order_request_to_order_wire, order_wires_to_order_action, sign_l1_action  # noqa: E402

from engine.gateway.hl.signatures import candidates  # noqa: E402
from engine.risk.policy_file import DEFAULT_POLICY_BODIES  # noqa: E402

BOT = Account.from_key("0x" + "b0" * 32)  # a throwaway key made for the bench
POLICIES = [dict(b) for b in DEFAULT_POLICY_BODIES if b["type"] not in ("CIRCUIT_BREAKER", "LOSS_LIMIT", "RATE_LIMIT")]
SIZE = 0.001


def _p50_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def order_paths(trials: int = 60) -> dict:
    from engine_server import MASTER as PASSWORD, EngineThread
    from fake_hyperliquid.harness import AGENT, AGENT_ENV, MASTER, engine_config, start_fake

    os.environ[AGENT_ENV] = AGENT.key.hex()
    fake = start_fake()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            policies = Path(tmp) / "policies.json"
            policies.write_text(json.dumps(POLICIES))
            with EngineThread(Path(tmp), policies=policies, config_file=engine_config(fake, tmp)) as engine:
                connector = engine.service.engine.connector
                connector.budget.limit = 1_000_000  # 120 round trips spend the connector's own minute budget
                added = httpx.post(engine.url + "/v1/bots", headers={"X-Master-Password": PASSWORD},
                                   json={"name": "bench", "address": BOT.address})
                added.raise_for_status()
                direct = Exchange(AGENT, fake.url, account_address=MASTER.address)
                behind = Exchange(BOT, engine.url + "/hl", account_address=MASTER.address)
                px = round(float(direct.info.all_mids()["BTC"]) * 0.97)  # inside PRICE_BAND, below the bids: it rests
                times: dict[str, list[float]] = {"direct": [], "hl": []}
                for trial in range(trials):
                    for name, client in (("direct", direct), ("hl", behind)) if trial % 2 else \
                            (("hl", behind), ("direct", direct)):
                        start = time.perf_counter()
                        answer = client.order("BTC", True, SIZE, px, {"limit": {"tif": "Gtc"}})
                        times[name].append(time.perf_counter() - start)
                        status = answer["response"]["data"]["statuses"][0]
                        if "resting" not in status:
                            raise RuntimeError(f"{name}: the order did not rest: {status}")
                        oid = status["resting"]["oid"]
                        client.cancel("BTC", oid)
    finally:
        fake.stop()
    warm = {name: samples[5:] for name, samples in times.items()}  # the first few warm connections up
    return {"hl_order_p50_ms": _p50_ms(warm["hl"]), "direct_order_p50_ms": _p50_ms(warm["direct"])}


def signer_recover_us(rounds: int = 2000) -> float:
    wire = order_request_to_order_wire({"coin": "BTC", "is_buy": True, "sz": 0.01, "limit_px": 60000.0,
                                        "order_type": {"limit": {"tif": "Gtc"}}, "reduce_only": False}, 0)
    action = order_wires_to_order_action([wire], None)
    nonce = int(time.time() * 1000)
    signature = sign_l1_action(BOT, action, None, nonce, None, False)
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        next(candidates(action, nonce, signature, None, None, first="testnet"))
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


if __name__ == "__main__":
    print(order_paths(), signer_recover_us())
