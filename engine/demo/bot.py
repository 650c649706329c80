"""The demo bot: a scripted strategy that trades through the real gateway (HTTP, a bot token),
so its orders meet every tier, a breaker and a de-risk. Each step is one log line on
`perpguard.demo`, stamped with the demo time (`t+12s`).

Timeline at pace 1 (seconds from the start; the demo market's flash crash starts at 80 s):

    2     INSTANT   buy  2,000 USD SOL
    3.5   NOTIFY    buy 25,000 USD BTC                 sent, and the trader notified
    5     DELAY     buy 200,000 USD BTC                held 20 s, re-checked and sent by the engine (~25)
    6.5   APPROVAL  buy 300,000 USD BTC                left pending: press `a` in the console
    8     INSTANT   buy  3,000 USD BTC
    9.5   DENIED    buy DOGE (not an allowed market)
    11    DENIED    buy 60,000 USD SOL (over the SOL cap)
    ~27   three losing round trips on ETH (open, close: fees and slippage) -> CIRCUIT_BREAKER
    ~32   DENIED    an entry during the breaker's 30 s cooldown
    ~61   scale in to 6x account leverage (three NOTIFY clips)
    80    the crash: the buffer falls under warn near -4.8% (~92 s): REDUCE_ONLY, one reduce-only
          order back to target, lift; the bot reports what the engine did, then stops

`pace` multiplies the bot's own waits (0.2 = five times faster, with a market five times
faster). Waits for the engine (the DELAY's release, the cooldown) are observed, not guessed.
The bot never raises on a denial: a denial is an answer. A trader pressing `!` or `a` midway
changes what it sees, and it carries on.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import datetime

from engine.api.client import AsyncClient, Reply
from engine.api.errors import LINK_DOWN, ApiError

log = logging.getLogger("perpguard.demo")

TARGET_LEVERAGE = 6.0  # account leverage the bot scales in to before the crash
CLIP_USD = 150_000.0  # the top of the demo's NOTIFY tier
ROUND_TRIP_USD = 4_000.0  # inside the INSTANT tier
WATCH_SECONDS = 90.0  # after scaling in, how long (paced) the bot watches for the de-risk
REPORTED = ("breaker_tripped", "derisk_order", "reduce_filled", "reduce_failed", "state_changed", "panic_exit", "liquidated")


def _clock(at: float | None) -> str:
    return datetime.fromtimestamp(at).strftime("%H:%M:%S") if at else "?"


def describe(reply: Reply) -> str:
    """One line for a gateway answer, as a trader reads it."""
    body = reply.body
    tier = body.get("decision", {}).get("tier", "?")
    if reply.status == 200:
        order = body.get("order") or {}
        return f"{tier}: sent, {order.get('status', '?')} {order.get('filled_size') or 0:g} @ {order.get('avg_px') or 0:,.2f}"
    if reply.status == 202:
        pending = body.get("pending", {})
        if pending.get("tier") == "DELAY":
            return f"DELAY: held as {pending.get('id')} until {_clock(pending.get('execute_at'))}, then re-checked (cancellable until then)"
        return (f"APPROVAL: held as {pending.get('id')} for a human (press `a` in the console) until "
                f"{_clock(pending.get('expires_at'))}; approval re-checks it against that moment's state")
    error = body.get("error", {})
    if reply.status == 403:
        denials = [r for r in body.get("decision", {}).get("reasons", []) if r.get("effect") == "DENY"]
        codes = ", ".join(sorted({r.get("code", "?") for r in denials})) or error.get("code", "?")
        return f"DENIED [{codes}]: {error.get('message', '')}"
    return f"the venue refused it ({error.get('code', reply.status)}): {error.get('message', '')}"


def _gross(state: dict) -> float:
    return sum(abs(p.get("notional") or 0.0) for p in state.get("positions", []))


def _size(state: dict, coin: str) -> float:
    return next((p["size"] for p in state.get("positions", []) if p["coin"] == coin), 0.0)


def payload(item: dict) -> dict:
    """An audit item's own figures: an event's `data` (`state`, `cause`, `status`, ...) or a
    decision's body (`tier`, `outcome`, ...), beside the item's identity."""
    return {**item, **(item["decision"] if item["kind"] == "decision" else item["data"])}


def _breaker(state: dict, kind: str) -> dict:
    return next((b for b in state.get("breakers", []) if b.get("type") == kind), {})


class DemoBot:
    def __init__(self, client: AsyncClient, stop: asyncio.Event, pace: float) -> None:
        if pace <= 0:
            raise ValueError("pace must be positive")
        self.client, self.stop, self.pace = client, stop, pace
        self.run_id = uuid.uuid4().hex[:6]
        self.count = 0
        self.started = time.monotonic()

    # ---- plumbing ----------------------------------------------------------------------------

    def say(self, message: str, *args) -> None:
        log.info("t+%3.0fs " + message, (time.monotonic() - self.started) / self.pace, *args)

    async def real_wait(self, seconds: float) -> bool:
        """Wait `seconds` of real time; True when the demo is stopping."""
        try:
            await asyncio.wait_for(self.stop.wait(), max(0.0, seconds))
            return True
        except asyncio.TimeoutError:
            return False

    async def pause(self, seconds: float) -> bool:
        """Wait `seconds` of demo time (× pace); True when the demo is stopping."""
        return await self.real_wait(seconds * self.pace)

    async def order(self, step: str, intent: dict) -> Reply:
        self.count += 1
        reply = await self.client.submit({"client_id": f"demo-{self.run_id}-{self.count}", **intent})
        what = f"{intent['side']} {intent['market']} " + (f"${intent['notional_usd']:,.0f}" if "notional_usd" in intent
                                                          else f"{intent['size']:g}")
        self.say("%-9s %s -> %s", step, what, describe(reply))
        return reply

    async def events(self, kinds: tuple[str, ...], since: float) -> list[dict]:
        """Engine events of these kinds at or after `since` (epoch s), oldest first."""
        return [e for e in reversed(await self.client.audit(limit=200, since=since)) if e["kind"] in kinds]

    # ---- the script ----------------------------------------------------------------------------

    async def run(self) -> None:
        self.say("demo bot trading through the gateway at %s (policies: examples/demo-policies.json)", self.client.url)
        steps = [
            ("INSTANT", {"market": "SOL", "side": "buy", "notional_usd": 2_000}),
            ("NOTIFY", {"market": "BTC", "side": "buy", "notional_usd": 25_000}),
            ("DELAY", {"market": "BTC", "side": "buy", "notional_usd": 200_000}),
            ("APPROVAL", {"market": "BTC", "side": "buy", "notional_usd": 300_000}),
            ("INSTANT", {"market": "BTC", "side": "buy", "notional_usd": 3_000}),
            ("DENY", {"market": "DOGE", "side": "buy", "notional_usd": 1_000}),
            ("DENY", {"market": "SOL", "side": "buy", "notional_usd": 60_000}),
        ]
        held = None
        for i, (step, intent) in enumerate(steps):
            if await self.pause(2.0 if i == 0 else 1.5):
                return
            reply = await self.order(step, intent)
            if step == "DELAY":
                held = reply.pending_id
        if held and await self.await_release(held):
            return
        for n in (1, 2, 3):
            if await self.round_trip(n) or await self.pause(1.5):
                return
        await self.order("DENY", {"market": "BTC", "side": "buy", "notional_usd": 2_000})
        if await self.wait_cooldown() or await self.scale_in():
            return
        await self.watch()

    async def await_release(self, action_id: str) -> bool:
        """Wait for the engine to release the DELAY order at its execute_at; report the outcome."""
        since = time.time() - 1.0
        deadline = time.monotonic() + 120.0
        while time.monotonic() < deadline:
            if await self.pause(0.5):
                return True
            if all(p["id"] != action_id for p in await self.client.pending()):
                break
        closed = [e for e in await self.events(("pending_closed",), since)
                  if payload(e).get("id") == action_id or e.get("message", "").startswith("DELAY ")]
        state = await self.client.state()
        btc = next((p for p in state["positions"] if p["coin"] == "BTC"), None)
        outcome = closed[-1]["message"] if closed else "still held"
        self.say("DELAY     the engine re-checked the held order at its time: %s; BTC long now $%s", outcome,
                 f"{btc['notional']:,.0f}" if btc else "0")
        return False

    async def round_trip(self, n: int) -> bool:
        """Open and close a small ETH long at once: fees and slippage make it a losing close."""
        opened = await self.client.submit({"market": "ETH", "side": "buy", "notional_usd": ROUND_TRIP_USD,
                                           "client_id": f"demo-{self.run_id}-rt{n}-open"})
        if not opened.sent:
            self.say("LOSS %d/3  could not open the round trip: %s", n, describe(opened))
            return False
        size, bought = opened.body["order"]["filled_size"], opened.body["order"]["avg_px"] or 0.0
        if await self.pause(0.5):
            return True
        closed = await self.client.submit({"market": "ETH", "side": "sell", "size": size, "reduce_only": True,
                                           "client_id": f"demo-{self.run_id}-rt{n}-close"})
        sold = (closed.body.get("order") or {}).get("avg_px") or 0.0
        streak = _breaker(await self.client.state(), "CIRCUIT_BREAKER")
        self.say("LOSS %d/3  round trip ETH %g: bought @ %.2f, sold @ %.2f (%+.2f USD before fees); losing streak %s/%s%s",
                 n, size, bought, sold, size * (sold - bought), streak.get("used"), streak.get("limit"),
                 ": CIRCUIT_BREAKER tripped" if streak.get("tripped") else "")
        return False

    async def wait_cooldown(self) -> bool:
        breaker = _breaker(await self.client.state(), "CIRCUIT_BREAKER")
        left = float(breaker.get("cooldown_seconds") or 0.0)
        self.say("COOLDOWN  waiting out the breaker: entries resume in %.0f s", left)
        return await self.real_wait(left + 0.2 * self.pace)

    async def scale_in(self) -> bool:
        """Buy BTC in NOTIFY-sized clips until the account runs TARGET_LEVERAGE."""
        state = await self.client.state()
        equity = state["account"]["equity"]
        want = TARGET_LEVERAGE * equity - _gross(state)
        self.say("SCALE IN  to %.0fx account leverage: +$%s BTC in clips of at most $%s", TARGET_LEVERAGE,
                 f"{max(want, 0):,.0f}", f"{CLIP_USD:,.0f}")
        while want > 1_000:
            reply = await self.order("NOTIFY", {"market": "BTC", "side": "buy", "notional_usd": round(min(want, CLIP_USD))})
            if not reply.sent:
                break
            want -= min(want, CLIP_USD)
            if await self.pause(1.0):
                return True
        account = (await self.client.state())["account"]
        self.say("HOLD      account leverage %.2fx, margin buffer %.3f (warn %s, panic %s): waiting for the market",
                 account["account_leverage"] or 0.0, account["margin_buffer"] or 0.0, account["warn_buffer"],
                 account["panic_buffer"])
        return False

    async def watch(self) -> None:
        """Report what the engine does during the crash, until the de-risk has been lifted."""
        since = time.time() - 1.0
        deadline = time.monotonic() + WATCH_SECONDS * self.pace
        reported: set[str] = set()
        lifted = False
        while time.monotonic() < deadline and not lifted:
            if await self.pause(1.0):
                return
            for event in await self.events(REPORTED, since):
                if event["ref"] in reported:
                    continue
                reported.add(event["ref"])
                self.say("ENGINE    %s", event["message"])
                fields = payload(event)
                lifted = lifted or (event["kind"] == "state_changed" and fields.get("state") == "ACTIVE"
                                    and "margin_buffer" in str(fields.get("cause")))
        state = await self.client.state()
        account = state["account"]
        self.say("DONE      %s: BTC %+g, equity %s USD, margin buffer %.3f, trading %s. The script is over; the "
                 "engine runs on: `a` approves the held order, `c` cancels it, `!` flattens everything",
                 "de-risked and back to ACTIVE" if lifted else "no de-risk seen", _size(state, "BTC"),
                 f"{account['equity']:,.0f}", account["margin_buffer"] or 0.0, state["trading_state"])


async def run_demo_bot(client: AsyncClient, stop: asyncio.Event, *, pace: float = 1.0) -> None:
    """Run the script once against the gateway `client` talks to; returns at its end, or as soon
    as `stop` is set. Gateway errors end the bot with a log line, never with an exception."""
    bot = DemoBot(client, stop, pace)
    try:
        await bot.run()
    except ApiError as exc:
        why = "the gateway is unreachable" if exc.code == LINK_DOWN else "the gateway refused it"
        log.error("demo bot stopped: %s: %s", why, exc)
