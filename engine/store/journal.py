"""What the engine hands the durable store, through its writer (off the engine loop, in order):

- the gate's answer to every order, chained in `decisions` before the order is acted on
  (`engine.live.journal.Journal`): `action` says what the engine does with it (`send`, `hold`,
  `deny`); what the venue answered is in the orders table and the chained events;
- pending actions (`engine.live.pending.PendingStore`): saved in order; the caller waits for
  `durable()` before acknowledging;
- every change a limit depends on (`RiskCounters(journal=...)`), replayed at start;
- the panic exit's flattening record (`engine.live.journal.Journal.flattening`): saved before the
  exit acts, cleared when flat, read back at start to resume an interrupted exit;
- the trailing stops (`engine.live.journal.Journal.trails`), as venue state `trailing_stops`:
  operational state that follows the marks, kept outside the audit chains like the paper account.

`durable()` waits at most `deadline` seconds (1 s by default): with the database locked or gone,
an order is refused within about a second (nothing is sent) instead of freezing the engine.
"""

from __future__ import annotations

import json
import logging

from engine.domain.model import Decision, Tier
from engine.live.pending import PendingAction
from engine.risk.counters import LONGEST_WINDOW, CounterChange, RiskCounters
from engine.risk.trading_state import Flattening
from engine.store.counter_log import CounterLog
from engine.store.store import Store
from engine.store.writer import StoreWriter

DURABLE_DEADLINE = 1.0  # seconds an order waits for its decision to be journaled
TRAILS_KEY = "trailing_stops"

log = logging.getLogger("perpguard.store")


def planned_action(decision: Decision) -> str:
    if not decision.allowed:
        return "deny"
    return "hold" if decision.tier in (Tier.DELAY, Tier.APPROVAL) else "send"


class DurableJournal:
    def __init__(self, store: Store, writer: StoreWriter, deadline: float = DURABLE_DEADLINE) -> None:
        self.store, self.writer, self.deadline = store, writer, deadline
        self.counter_log = CounterLog(store)

    # ---- decisions (engine.live.journal.Journal) ---------------------------------------------

    def decision(self, decision: Decision, client_id: str | None) -> None:
        record = {"client_id": client_id, "action": planned_action(decision), **decision.as_dict(),
                  "intent": decision.intent.model_dump(mode="json", exclude_none=True)}
        self.writer.submit(self.store.append_decision, record)

    async def durable(self) -> bool:
        return await self.writer.durable(self.deadline)

    # ---- the panic exit's flattening record ---------------------------------------------------

    def flattening(self, record: Flattening | None) -> None:
        self.writer.submit(self.store.save_flattening, record)

    def load_flattening(self) -> Flattening | None:
        return self.store.load_flattening()

    # ---- the trailing stops --------------------------------------------------------------------

    def trails(self, trails: dict[str, tuple[float, float]]) -> None:
        text = json.dumps({coin: [fraction, best] for coin, (fraction, best) in sorted(trails.items())})
        self.writer.submit(self.store.save_venue_state, TRAILS_KEY, text)

    def load_trails(self) -> dict[str, tuple[float, float]]:
        text = self.store.load_venue_state(TRAILS_KEY)
        if text is None:
            return {}
        try:
            return {str(coin): (float(fraction), float(best)) for coin, (fraction, best) in json.loads(text).items()}
        except (ValueError, TypeError, AttributeError):
            # the stops themselves still rest on the venue, where they were moved last
            log.warning("the saved trailing stops cannot be read; they hold where they rest and stop trailing")
            return {}

    # ---- pending actions (engine.live.pending.PendingStore) ----------------------------------

    def save_pending(self, action: PendingAction) -> None:
        self.writer.submit(self.store.save_pending, action)

    def load_open_pending(self) -> list[PendingAction]:
        return self.store.load_open_pending()

    # ---- risk counters ----------------------------------------------------------------------

    def counter_changed(self, change: CounterChange) -> None:
        self.writer.submit(self.counter_log.append, change)

    def counters(self, now: float) -> RiskCounters:
        """Fresh counters that journal every change here; `restore_counters` fills them once the
        policies have registered their windows."""
        self.counter_log.prune(now - LONGEST_WINDOW)
        return RiskCounters(journal=self.counter_changed)

    def restore_counters(self, counters: RiskCounters, now: float) -> None:
        counters.restore(self.counter_log.since(now - LONGEST_WINDOW))
