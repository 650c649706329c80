"""Every limit's usage, durable (SPEC section 6: "every limit's usage ... survives a restart").

The risk counters journal each change a limit depends on (`RiskCounters(journal=...)`): a
submission or a spend counted into a rolling window, a losing or winning close, a new UTC day
or ISO week with its starting equity, a new peak equity. The rows go through the store's
writer (off the engine loop, in order); at start the engine replays the last 30 days into a
fresh `RiskCounters` (`RiskCounters.restore`), so a restart, `kill -9` included, changes no
limit's usage. Rows older than the longest window are pruned at start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import delete, insert
from sqlmodel import Field, Session, SQLModel, select

from engine.risk.counters import CounterChange

if TYPE_CHECKING:
    from engine.store.store import Store


class CounterChangeRow(SQLModel, table=True):
    """One `CounterChange`: `kind` (add, close, day, week, peak), the window `metric` for adds,
    `at` epoch seconds, `value` (USD, or a count)."""

    __tablename__ = "counter_changes"
    id: int | None = Field(default=None, primary_key=True)
    at: float = Field(index=True)
    kind: str
    metric: str = ""
    value: float


_ADD = insert(CounterChangeRow.__table__)


class CounterLog:
    """The journal's table in `store`'s database; its writes join the store's batch (one
    commit with the decision they come with, see `Transactions.batch`)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine
        CounterChangeRow.__table__.create(self.engine, checkfirst=True)

    def append(self, change: CounterChange) -> None:
        with self.store.transactions.rows() as connection:  # a plain INSERT, built once: this runs for every order
            connection.execute(_ADD, {"at": change.at, "kind": change.kind, "metric": change.metric, "value": change.value})

    def since(self, at: float) -> list[CounterChange]:
        """The changes at or after `at` (epoch s), in the order they happened."""
        with Session(self.engine) as session:
            rows = session.exec(select(CounterChangeRow).where(CounterChangeRow.at >= at).order_by(CounterChangeRow.id))
            return [CounterChange(row.kind, row.metric, row.at, row.value) for row in rows]

    def prune(self, before: float) -> None:
        """Forget changes older than `before` (epoch s): no window reaches back that far."""
        with self.store.transactions.write() as session:
            session.exec(delete(CounterChangeRow).where(CounterChangeRow.at < before))
