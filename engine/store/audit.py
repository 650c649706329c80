"""Reading the audit log: decisions, events and changes (to policies, tokens and settings)
merged, newest first, with filters and a cursor.

Order is (at, table, id) descending, events after decisions at the same instant (the engine
logs an order's events after deciding it), changes after both. A cursor is an item's `ref`
(`events#42`): the next page starts just after that item.
"""

from __future__ import annotations

from sqlalchemy import and_, false, or_, true
from sqlmodel import Session, select

from engine.store import changes
from engine.store.chain import CHAINS
from engine.store.codec import parse

DECISION_KIND = "decision"
_RANK = {"decisions": 0, "events": 1, "changes": 2}
_CHANGE_KINDS = frozenset(changes.ChangeKind)


def audit(session: Session, limit: int, kind: str | None, since: float | None, before: str | None) -> list[dict]:
    if limit < 1:
        raise ValueError(f"limit must be at least 1 (got {limit})")
    cursor = _cursor(session, before) if before is not None else None
    if kind is None:
        tables = list(CHAINS)
    elif kind == DECISION_KIND:
        tables = ["decisions"]
    else:
        tables = ["changes"] if kind in _CHANGE_KINDS else ["events"]
    found = []
    for table in tables:
        model = CHAINS[table][0]
        query = select(model).order_by(model.at.desc(), model.id.desc()).limit(limit)
        if since is not None:
            query = query.where(model.at >= since)
        if kind is not None and table != "decisions":
            query = query.where(model.kind == kind)
        if cursor is not None:
            query = query.where(_older_than(model, _RANK[table], cursor))
        found += [((row.at, _RANK[table], row.id), _item(table, row)) for row in session.exec(query)]
    found.sort(key=lambda pair: pair[0], reverse=True)
    return [item for _, item in found[:limit]]


def _cursor(session: Session, ref: str) -> tuple[float, int, int]:
    table, _, row_id = ref.partition("#")
    if table not in CHAINS or not row_id.isdigit():
        raise ValueError(f"before must be an audit ref like events#42 (got {ref!r})")
    row = session.get(CHAINS[table][0], int(row_id))
    if row is None:
        raise ValueError(f"no audit entry {ref}")
    return row.at, _RANK[table], row.id


def _older_than(model, rank: int, cursor: tuple[float, int, int]):
    at, cursor_rank, cursor_id = cursor
    if rank == cursor_rank:
        same_instant = model.id < cursor_id
    else:
        same_instant = true() if rank < cursor_rank else false()
    return or_(model.at < at, and_(model.at == at, same_instant))


def _item(table: str, row) -> dict:
    """The row's identity, and its payload under its own key (so a payload's `id` never clashes):
    a decision under `decision`, an event's figures under `data`, a change's details under
    `data` with who made it (`actor`) and what it changed (`subject`)."""
    head = {"table": table, "id": row.id, "ref": f"{table}#{row.id}", "at": row.at}
    if table == "decisions":
        return {**head, "kind": DECISION_KIND, "decision": parse(row.body)}
    if table == "changes":
        return {**head, "kind": row.kind, "actor": row.actor, "subject": row.subject,
                "message": changes.message(row.kind, row.actor, row.subject), "data": parse(row.body)}
    return {**head, "kind": row.kind, "message": row.message, "data": parse(row.data)}
