"""The paper account across restarts (issue 16, item 6): `restore_paper` puts the saved account
back into a fresh paper exchange before the engine reconciles with it, and `PaperAccountSaver`
writes it as it changes (see there for how much a `kill -9` can lose)."""

from __future__ import annotations

import asyncio
import json
import logging
import time

from engine.store.store import Store
from engine.store.writer import StoreWriter
from engine.venues.paper.account_state import export_account, restore_account
from engine.venues.paper.exchange import PaperExchange

log = logging.getLogger("perpguard.paper")


class UnreadableAccount(ValueError):
    """The saved paper account cannot be read (the start stops rather than start afresh)."""

PAPER_ACCOUNT_KEY = "paper_account"


def restore_paper(store: Store, paper: PaperExchange) -> bool:
    """Put the paper account saved in `store` back into `paper` (a fresh exchange); False when
    none was saved (a first start: `[paper] equity` applies; afterwards the saved cash does).
    A saved account that cannot be read stops the start (UnreadableAccount) rather than silently
    replacing weeks of paper trading with a fresh account."""
    text = store.load_venue_state(PAPER_ACCOUNT_KEY)
    if text is None:
        return False
    try:
        restore_account(paper, json.loads(text))
    except ValueError as exc:  # json.JSONDecodeError is one
        raise UnreadableAccount(f"the saved paper account (venue state {PAPER_ACCOUNT_KEY!r}) cannot be read: {exc}") \
            from None
    log.info("paper account restored: %d positions, %d open orders, %d fills remembered",
             len(paper.ledger.holdings), len(paper.open_orders()), len(paper.history.fills))
    return True


class PaperAccountSaver:
    """Writes the paper account to the store (venue state `paper_account`, through the service's
    StoreWriter so the engine loop never waits on the database) whenever it changed.

    When: at most every `SAVE_SECONDS` (0.2 s) after any change of the account (its `revision`:
    orders, cancels, fills, funding, leverage, the dead-man switch); at once after a fill (or,
    when a write is still in flight, as soon as it is committed); the marks alone at most every
    `MARKS_SECONDS` (30 s); and always on a clean stop (`save(True)`). One write in flight at a
    time, each taking the latest state.

    What a `kill -9` can lose: a fill is handed to the writer on the loop's next turn and
    committed within milliseconds (two commits at worst), so only the fills of that last moment
    are lost; other changes at most `SAVE_SECONDS` plus a commit; the marks at most
    `MARKS_SECONDS` (the walk then resumes from older marks). The account is venue state, not
    configuration: it is kept in its own table, outside the audit chains (as the venue's own
    account is), so saving it often adds nothing to them."""

    SAVE_SECONDS = 0.2
    MARKS_SECONDS = 30.0

    def __init__(self, paper: PaperExchange, store: Store, writer: StoreWriter) -> None:
        self.paper, self.store, self.writer = paper, store, writer
        self.saved_revision = paper.revision
        self._marks_saved_at = time.monotonic()
        self._marks_saved = dict(paper.mark_times)
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._in_flight = None
        self._fill_pending = False  # a fill not saved yet: save as soon as the writer is free
        paper.history.fill_listeners.append(self._on_fill)
        self.saves = 0

    def _on_fill(self, _fill: object) -> None:
        self._fill_pending = True
        if self._wake is not None:
            self._wake.set()

    def _written(self, _future: object) -> None:
        """On the writer's thread, a save committed: a fill that came meanwhile is saved now."""
        if self._fill_pending and self._loop is not None and self._wake is not None:
            try:
                self._loop.call_soon_threadsafe(self._wake.set)
            except RuntimeError:  # the loop is closed: the clean stop saved the account itself
                pass

    async def run(self, stop: asyncio.Event) -> None:
        self._wake, self._loop = asyncio.Event(), asyncio.get_running_loop()
        waiter = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                woken = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait({woken, waiter}, timeout=self.SAVE_SECONDS, return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
                self._wake.clear()
                try:
                    self.save()
                except Exception:  # a bad state must not stop the engine; the next change retries
                    log.exception("saving the paper account failed")
        finally:
            waiter.cancel()

    def save(self, force: bool = False) -> bool:
        """Hand the account to the writer if it changed (or `force`); True if it did."""
        paper = self.paper
        if not force and self._in_flight is not None and not self._in_flight.done():
            return False
        marks_due = (time.monotonic() - self._marks_saved_at >= self.MARKS_SECONDS
                     and paper.mark_times != self._marks_saved)
        if not (force or marks_due or paper.revision != self.saved_revision):
            return False
        state = export_account(paper)
        self._fill_pending = False
        self._in_flight = self.writer.submit(_write_paper_account, self.store, state)
        self._in_flight.add_done_callback(self._written)
        self.saved_revision = paper.revision
        self._marks_saved_at, self._marks_saved = time.monotonic(), dict(paper.mark_times)
        self.saves += 1
        return True

    def close(self) -> None:
        if self._on_fill in self.paper.history.fill_listeners:
            self.paper.history.fill_listeners.remove(self._on_fill)


def _write_paper_account(store: Store, state: dict) -> None:
    """On the writer's thread: the JSON is made here, off the engine loop."""
    store.save_venue_state(PAPER_ACCOUNT_KEY, json.dumps(state, separators=(",", ":")))
