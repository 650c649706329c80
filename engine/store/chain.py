"""The audit hash chains: decisions and events, each row linked to the one before it.

Each row stores `prev_hash` and `hash = sha256(prev_hash + canonical JSON of its content)`,
where the content is every other column (id included, so rows cannot be renumbered). Ids are
assigned here as head + 1, so a deleted row leaves a gap that names it; the head row
(`chain_heads`) anchors the tail, so deleting the newest rows is caught too.

Verification streams each table in id order, a batch at a time: memory stays flat however
long the chain (a benchmark writes a million rows).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, insert, update
from sqlmodel import Session, SQLModel, select

from engine.store.codec import canonical
from engine.store.tables import ChainHead, DecisionRow, EventRow

GENESIS = "0" * 64
VERIFY_BATCH = 2000

# table -> (row model, the columns hashed, in the order they are read back)
CHAINS: dict[str, tuple[type[SQLModel], tuple[str, ...]]] = {
    "decisions": (DecisionRow, ("id", "at", "body")),
    "events": (EventRow, ("id", "at", "kind", "message", "data")),
}


@dataclass(frozen=True, slots=True)
class ChainReport:
    """`checked` rows recomputed; `first_bad` names the first broken row (`events#42`): edited,
    missing, or not anchored by the chain head. None when `ok`."""

    ok: bool
    checked: int
    first_bad: str | None = None


def link_hash(prev_hash: str, content: dict) -> str:
    return hashlib.sha256((prev_hash + canonical(content)).encode()).hexdigest()


def append(session: Session, table: str, contents: Iterable[dict]) -> int:
    """Add the next links of `table` in the caller's transaction; returns the last row's id.

    The head row is read FOR UPDATE (PostgreSQL), so concurrent writers queue; on SQLite a
    racing writer fails on the primary key instead of forking the chain (fail closed).
    Plain SQL statements, not ORM objects: this runs for every decision and event."""
    model, fields = CHAINS[table]
    head = session.exec(select(ChainHead.last_id, ChainHead.last_hash)
                        .where(ChainHead.table == table).with_for_update()).first()
    last_id, last_hash = head if head else (0, GENESIS)
    rows = []
    for content in contents:
        values = {"id": last_id + 1, **content}
        digest = link_hash(last_hash, {f: values[f] for f in fields})
        rows.append({**values, "prev_hash": last_hash, "hash": digest})
        last_id, last_hash = values["id"], digest
    if not rows:
        return last_id
    session.execute(insert(model), rows)
    moved = {"last_id": last_id, "last_hash": last_hash}
    if head:
        session.execute(update(ChainHead).where(ChainHead.table == table).values(**moved))
    else:
        session.execute(insert(ChainHead).values(table=table, **moved))
    return last_id


def verify(session: Session) -> ChainReport:
    checked = 0
    for table in CHAINS:
        count, first_bad = _verify_table(session, table)
        checked += count
        if first_bad is not None:
            return ChainReport(False, checked, first_bad)
    return ChainReport(True, checked)


def _head(session: Session, table: str) -> tuple[int, str]:
    row = session.exec(select(ChainHead.last_id, ChainHead.last_hash).where(ChainHead.table == table)).first()
    return (row.last_id, row.last_hash) if row else (0, GENESIS)


def _verify_table(session: Session, table: str) -> tuple[int, str | None]:
    """(rows checked, first bad row or None). Rows up to the head read at the start are
    checked; rows a concurrent writer appends meanwhile are left for the next run."""
    model, fields = CHAINS[table]
    columns = [getattr(model, f) for f in fields] + [model.prev_hash, model.hash]
    head_id, head_hash = _head(session, table)
    prev, next_id = GENESIS, 1
    while next_id <= head_id:
        query = (select(*columns).where(model.id >= next_id, model.id <= head_id)
                 .order_by(model.id).limit(VERIFY_BATCH))
        rows = session.exec(query).all()
        if not rows:  # the newest rows were deleted
            return next_id - 1, f"{table}#{next_id}"
        for row in rows:
            content = dict(zip(fields, row[:len(fields)], strict=True))
            if content["id"] != next_id or row.prev_hash != prev or link_hash(prev, content) != row.hash:
                return next_id - 1, f"{table}#{next_id}"
            prev, next_id = row.hash, next_id + 1
    if prev != head_hash:  # the last row rewritten with a recomputed hash
        return head_id - 1, f"{table}#{head_id}"
    newest = session.exec(select(func.max(model.id))).one()
    if newest is not None and newest > head_id:
        anchored, _ = _head(session, table)  # a concurrent append moves the head too
        if newest > anchored:
            return head_id, f"{table}#{anchored + 1}"
    return head_id, None
