"""The audit hash chains: decisions, events and changes (to policies, tokens and settings), each
row linked to the one before it.

Each row stores `prev_hash` and `hash = HMAC-SHA256(key, prev_hash + canonical JSON of its
content)`, where the content is every other column (id included, so rows cannot be renumbered)
and the key is the database's audit key (`engine.store.anchor`), kept outside the database.
Rows written before keys existed ("legacy", up to the anchor's `keyed_from`) were linked with
plain sha256 and are verified so; the anchor pins their last hash. Ids are assigned here as
head + 1, so a deleted row leaves a gap that names it; the head row (`chain_heads`) anchors the
tail, so deleting the newest rows is caught too (and moving the head back is caught by the
checkpoints, `engine.store.checkpoints`).

Verification streams each table in id order, a batch at a time: memory stays flat however
long the chain (a benchmark writes a million rows).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import bindparam, func, insert, update
from sqlmodel import Session, SQLModel, select

from engine.store.anchor import GENESIS, DatabaseKey
from engine.store.codec import canonical
from engine.store.tables import ChainHead, ChangeRow, DecisionRow, EventRow

VERIFY_BATCH = 2000

# table -> (row model, the columns hashed, in the order they are read back)
CHAINS: dict[str, tuple[type[SQLModel], tuple[str, ...]]] = {
    "decisions": (DecisionRow, ("id", "at", "body")),
    "events": (EventRow, ("id", "at", "kind", "message", "data")),
    "changes": (ChangeRow, ("id", "at", "kind", "actor", "subject", "body")),
}


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What `audit verify` found. `checked` rows recomputed (`rows` per chain); `first_bad` names
    the first thing wrong (`events#42`: a row edited, missing, forged or not anchored;
    `policies#max-leverage`: a table that does not match the chain's record; `audit_anchor`),
    and `problem` says what, in words. None when `ok`. `anchored`: keyed links (False: a
    database no version with keys has written to yet); `legacy_rows` checked with plain sha256;
    `checkpoints` of this database that matched; `notes` what the check could not prove."""

    ok: bool
    checked: int
    first_bad: str | None = None
    problem: str | None = None
    anchored: bool = False
    legacy_rows: int = 0
    checkpoints: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


# Built once, on the tables (SQLAlchemy Core), and run on the session's connection: a statement
# made per call costs more to construct and look up in SQLAlchemy's cache than to run, and the
# ORM's execute path (bulk-insert machinery, session events) more than twice what Core costs.
# The head read and moved, and the rows added, run for every decision and event.
_HEADS = ChainHead.__table__
_HEAD_FOR_UPDATE = (select(_HEADS.c.last_id, _HEADS.c.last_hash)
                    .where(_HEADS.c.table == bindparam("chain")).with_for_update())
_MOVE_HEAD = (update(_HEADS).where(_HEADS.c.table == bindparam("chain"))
              .values(last_id=bindparam("new_id"), last_hash=bindparam("new_hash")))
_NEW_HEAD = insert(_HEADS).values(table=bindparam("chain"), last_id=bindparam("new_id"),
                                  last_hash=bindparam("new_hash"))
_ADD_ROWS = {table: insert(model.__table__) for table, (model, _fields) in CHAINS.items()}


def link_hash(prev_hash: str, content: dict) -> str:
    """A legacy (unkeyed) link: sha256 over the previous hash and the row's canonical JSON."""
    return hashlib.sha256((prev_hash + canonical(content)).encode()).hexdigest()


def append(session: Session, table: str, contents: Iterable[dict], key: DatabaseKey) -> tuple[int, str]:
    """Add the next links of `table` in the caller's transaction; returns the new head (last
    row's id and hash).

    The head row is read FOR UPDATE (PostgreSQL), so concurrent writers queue; on SQLite a
    racing writer fails on the primary key instead of forking the chain (fail closed).
    Plain SQL statements, not ORM objects: this runs for every decision and event."""
    _model, fields = CHAINS[table]
    connection = session.connection()
    head = connection.execute(_HEAD_FOR_UPDATE, {"chain": table}).first()
    last_id, last_hash = head if head else (0, GENESIS)
    rows = []
    for content in contents:
        values = {"id": last_id + 1, **content}
        digest = key.link(last_hash, {f: values[f] for f in fields})
        rows.append({**values, "prev_hash": last_hash, "hash": digest})
        last_id, last_hash = values["id"], digest
    if not rows:
        return last_id, last_hash
    connection.execute(_ADD_ROWS[table], rows)
    connection.execute(_MOVE_HEAD if head else _NEW_HEAD, {"chain": table, "new_id": last_id, "new_hash": last_hash})
    return last_id, last_hash


def heads(session: Session) -> dict[str, tuple[int, str]]:
    """Every chain's head: (last id, last hash), (0, GENESIS) for an empty chain."""
    found = {row.table: (row.last_id, row.last_hash) for row in session.exec(select(ChainHead))}
    return {table: found.get(table, (0, GENESIS)) for table in CHAINS}


def row_hash(session: Session, table: str, row_id: int) -> str | None:
    model = CHAINS[table][0]
    return session.exec(select(model.hash).where(model.id == row_id)).first()


@dataclass(frozen=True, slots=True)
class TableCheck:
    """One chain verified: rows `checked` (of them `legacy`), the first bad row and why, and the
    head it was checked up to."""

    checked: int
    legacy: int
    first_bad: str | None = None
    problem: str | None = None
    head_id: int = 0


def verify_table(session: Session, table: str, key: DatabaseKey | None, keyed_from: int, legacy_head: str | None,
                 on_row: Callable[[dict], None] | None = None) -> TableCheck:
    """Recompute `table`'s links: plain sha256 below `keyed_from`, keyed from there on (no key:
    plain throughout). `legacy_head` (from the anchor) is the hash the legacy rows must end
    with. `on_row` sees each verified row's content, in order. Rows up to the head read at the
    start are checked; rows a concurrent writer appends meanwhile are left for the next run."""
    model, fields = CHAINS[table]
    columns = [getattr(model, f) for f in fields] + [model.prev_hash, model.hash]
    head_id, head_hash = heads(session)[table]
    prev, next_id, legacy = GENESIS, 1, 0

    def bad(row_id: int, problem: str) -> TableCheck:
        return TableCheck(next_id - 1, legacy, f"{table}#{row_id}", problem, head_id)

    def legacy_rewritten() -> TableCheck:
        return bad(next_id - 1, "the rows written before the audit was anchored no longer end with the hash the "
                                "anchor recorded: a row before it was rewritten")

    while next_id <= head_id:
        query = (select(*columns).where(model.id >= next_id, model.id <= head_id)
                 .order_by(model.id).limit(VERIFY_BATCH))
        rows = session.exec(query).all()
        if not rows:  # the newest rows were deleted
            return bad(next_id, f"missing: the chain's head says it goes on to #{head_id}")
        for row in rows:
            if next_id == keyed_from and legacy_head is not None and prev != legacy_head:
                return legacy_rewritten()
            content = dict(zip(fields, row[:len(fields)], strict=True))
            if content["id"] != next_id:
                return bad(next_id, "missing: deleted from the chain")
            keyed = key is not None and next_id >= keyed_from
            expected = key.link(prev, content) if keyed else link_hash(prev, content)
            if row.prev_hash != prev or not hmac.compare_digest(expected, row.hash):
                how = "keyed hash (HMAC-SHA256)" if keyed else "sha256 hash"
                return bad(next_id, f"its {how} does not match its content and the row before it: edited or forged")
            if on_row is not None:
                on_row(content)
            legacy += not keyed
            prev, next_id = row.hash, next_id + 1
    if legacy_head is not None and head_id < keyed_from - 1:
        return bad(head_id + 1, f"missing: the anchor recorded rows up to #{keyed_from - 1} written before it")
    if legacy_head is not None and head_id == keyed_from - 1 and prev != legacy_head:
        return legacy_rewritten()
    if prev != head_hash:  # the last row rewritten with a recomputed hash
        return TableCheck(head_id - 1, legacy, f"{table}#{head_id}", "the chain's head does not match its last row", head_id)
    newest = session.exec(select(func.max(model.id))).one()
    if newest is not None and newest > head_id:
        anchored_id, _ = heads(session)[table]  # a concurrent append moves the head too
        if newest > anchored_id:
            return TableCheck(head_id, legacy, f"{table}#{anchored_id + 1}", "not anchored by the chain's head", head_id)
    return TableCheck(head_id, legacy, head_id=head_id)
