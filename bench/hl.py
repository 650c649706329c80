"""What perpguard's Hyperliquid-compatible API costs a bot: the same SDK order (a resting BTC
limit buy) sent straight to the strict fake venue, and sent through a running perpguard
(`/hl/exchange` on its gateway: signature recovery, nonce, gate, the journal's commit,
re-signature by perpguard's agent, the venue round trip), interleaved in one run over loopback.
Each order is cancelled again, untimed, before the next one.

Three processes, as deployed: the bot (this process, the SDK), `perpguard --engine-only` and the
fake venue. Run as threads of one interpreter instead, the three would share one GIL, which no
deployment does: every hand-over between them (a socket send waking another thread) then costs
the sender a wait for the GIL, and the path through perpguard has three times as many.

Also `signer_recover_us`: recovering the signer of one SDK-signed order from its signature
(the action's hash, the EIP-712 digest and one public-key recovery: the phantom-agent source
`/hl/exchange` tries first, the one bots behind it last signed with; a bot signing with the other
one costs a second recovery).
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))  # the fake venue and the engine-process helpers live with the tests

import httpx  # noqa: E402
from eth_account import Account  # noqa: E402
from hyperliquid.exchange import Exchange  # noqa: E402
from hyperliquid.utils.signing import order_request_to_order_wire, order_wires_to_order_action, sign_l1_action  # noqa: E402

from engine.gateway.hl.signatures import candidates  # noqa: E402
from engine.risk.policy_file import DEFAULT_POLICY_BODIES  # noqa: E402
from engine_process import PASSWORD, free_port, perpguard, wait_healthy  # noqa: E402

BOT = Account.from_key("0x" + "b0" * 32)  # a throwaway key made for the bench
POLICIES = [dict(b) for b in DEFAULT_POLICY_BODIES if b["type"] not in ("CIRCUIT_BREAKER", "LOSS_LIMIT", "RATE_LIMIT")]
SIZE = 0.001


def _p50_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


FAKE_VENUE = ("import sys; sys.path.insert(0, sys.argv[1]); from fake_hyperliquid.harness import start_fake; "
              "fake = start_fake(); print(fake.url, flush=True); sys.stdin.read(); fake.stop()")


@contextmanager
def _fake_venue() -> Iterator[str]:
    """The strict fake venue in a process of its own; its URL."""
    child = subprocess.Popen([sys.executable, "-c", FAKE_VENUE, str(TESTS)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        url = child.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError("the fake venue did not start")
        yield url
    finally:
        child.stdin.close()
        child.wait(10)


@contextmanager
def _engine(tmp: Path, venue_url: str) -> Iterator[str]:
    """`perpguard --engine-only` trading the fake venue's master account; its URL."""
    from engine.store import Store
    from engine.store.auth import set_master_password
    from fake_hyperliquid.harness import AGENT, AGENT_ENV, engine_config

    port = free_port()
    policies = tmp / "policies.json"
    policies.write_text(json.dumps(POLICIES))
    config = engine_config(SimpleNamespace(url=venue_url), tmp, listen=f"127.0.0.1:{port}", policies=policies)
    env = {**os.environ, AGENT_ENV: AGENT.key.hex(), "XDG_CONFIG_HOME": str(tmp / "config"),
           "XDG_DATA_HOME": str(tmp / "data")}
    with Store(f"sqlite:///{tmp / 'pg.db'}", audit_dir=tmp / "config" / "perpguard") as store:
        set_master_password(store, PASSWORD)
    child = perpguard("--engine-only", "--config", config, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, child, timeout=60)
        yield url
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(20)
        except subprocess.TimeoutExpired:
            child.kill()


def order_paths(trials: int = 60) -> dict:
    from fake_hyperliquid.harness import AGENT, MASTER

    with tempfile.TemporaryDirectory() as tmp, _fake_venue() as venue, _engine(Path(tmp), venue) as engine:
        added = httpx.post(engine + "/v1/bots", headers={"X-Master-Password": PASSWORD},
                           json={"name": "bench", "address": BOT.address})
        added.raise_for_status()
        direct = Exchange(AGENT, venue, account_address=MASTER.address)
        behind = Exchange(BOT, engine + "/hl", account_address=MASTER.address)
        px = round(float(direct.info.all_mids()["BTC"]) * 0.97)  # inside PRICE_BAND, below the bids: it rests
        times: dict[str, list[float]] = {"direct": [], "hl": []}
        for trial in range(trials):
            for name, client in (("direct", direct), ("hl", behind)) if trial % 2 else \
                    (("hl", behind), ("direct", direct)):
                start = time.perf_counter()
                answer = client.order("BTC", True, SIZE, px, {"limit": {"tif": "Gtc"}})
                times[name].append(time.perf_counter() - start)
                status = answer["response"]["data"]["statuses"][0] if answer.get("status") == "ok" else answer
                if "resting" not in status:
                    raise RuntimeError(f"{name}: the order did not rest: {status}")
                client.cancel("BTC", status["resting"]["oid"])
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
