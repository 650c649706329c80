"""`audit verify`: what the audit trail promises, checked from the database and the files beside
the audit key (never from the running engine, which a verifier should not trust).

In order, stopping at the first thing wrong: the key and the anchor row (keyed, so it cannot be
forged or edited); every link of the decisions, events and changes chains (plain sha256 for the
legacy rows before the anchor, keyed after it); the policies, tokens and settings tables against
what the changes chain adds up to; every checkpoint of this database (its rows must still be
there, unchanged) and of the database that was at this location before (a database replaced, or
its anchor deleted to pass it off as an unkeyed one, is caught).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import Session

from engine.store import checkpoints
from engine.store.anchor import GENESIS, KEY_FILE, AuditKeyError, load_key, read_anchor
from engine.store.chain import CHAINS, ChainReport, row_hash, verify_table
from engine.store.changes import RecordedState

ANCHOR = "audit_anchor"


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def verify(session: Session, audit_dir: Path, where: str) -> ChainReport:
    """Verify the database behind `session` (at `where`, `anchor.database_location`) with the
    key and checkpoints in `audit_dir`."""
    key_path, checkpoint_path = audit_dir / KEY_FILE, audit_dir / checkpoints.CHECKPOINT_FILE
    checked, legacy, rows, notes = 0, 0, {}, []

    def failed(first_bad: str, problem: str) -> ChainReport:
        return ChainReport(False, checked, first_bad, problem, anchor is not None, legacy, 0, rows, tuple(notes))

    anchor = read_anchor(session)
    try:
        key = load_key(key_path)
    except AuditKeyError as exc:
        return failed(ANCHOR, str(exc))
    db_key = None
    if anchor is not None:
        if key is None:
            return failed(ANCHOR, f"this database is anchored to an audit key, but there is none at {key_path}: "
                                  "restore that file to verify it")
        db_key = key.for_database(anchor.db_id)
        if not db_key.matches("anchor", anchor.signed_content(), anchor.mac):
            return failed(ANCHOR, f"the anchor row does not match the audit key {key_path}: it was edited or forged, "
                                  "or the database belongs to another key")
    else:
        notes.append("not anchored: no version with keyed hashes has written to this database yet, so its links are "
                     "plain sha256 and anyone who could write to it could have rewritten them (the engine anchors it "
                     "on its next write)")

    state = RecordedState()
    head_ids: dict[str, int] = {}
    for table in CHAINS:
        keyed_from = anchor.keyed_from.get(table, 1) if anchor else sys.maxsize
        legacy_head = anchor.legacy_heads.get(table, GENESIS) if anchor else None
        on_row = state.apply if anchor is not None and table == "changes" else None
        result = verify_table(session, table, db_key, keyed_from, legacy_head, on_row)
        checked, legacy = checked + result.checked, legacy + result.legacy
        rows[table], head_ids[table] = result.checked, result.head_id
        if result.first_bad is not None:
            return failed(result.first_bad, result.problem or "")

    if anchor is not None:
        mismatch = state.mismatch(session, db_key)
        if mismatch is not None:
            return failed(*mismatch)

    found = checkpoints.read(checkpoint_path, key)
    before = [c for c in found if c.signed and c.where == where and (anchor is None or c.db_id != anchor.db_id)]
    if before:
        earlier = before[-1]
        now = "carries no anchor" if anchor is None else f"is anchored as {anchor.db_id[:12]}"
        return failed(ANCHOR, f"the database at {where} was anchored as {earlier.db_id[:12]} (checkpoint of "
                              f"{_when(earlier.at)}, {checkpoint_path} line {earlier.line}) but now {now}: it was "
                              "replaced, or its anchor removed to pass it off as unkeyed (if you replaced it yourself, "
                              "delete that database's lines from the file)")
    mine = [c for c in found if anchor is not None and c.db_id == anchor.db_id]
    for point in mine:
        if not point.signed:
            return failed(ANCHOR, f"line {point.line} of {checkpoint_path} is not signed by the audit key: the file "
                                  "was edited")
        for table, (last_id, last_hash) in point.heads.items():
            if table not in CHAINS or last_id == 0:
                continue
            if last_id > head_ids[table]:
                return failed(f"{table}#{head_ids[table] + 1}", f"missing: the checkpoint of {_when(point.at)} "
                              f"recorded {table} up to #{last_id}, and the chain now ends at #{head_ids[table]}: "
                              "its newest rows were deleted")
            if row_hash(session, table, last_id) != last_hash:
                return failed(f"{table}#{last_id}", f"differs from the checkpoint of {_when(point.at)}")
    if anchor is not None and not mine:
        notes.append(f"no checkpoint of this database in {checkpoint_path}: deleting its newest rows would go unseen")
    elif mine:
        newest = mine[-1]
        uncovered = sum(head_ids[t] - newest.heads.get(t, (0, ""))[0] for t in CHAINS)
        if uncovered > 0:
            notes.append(f"{uncovered} rows written after the newest checkpoint ({_when(newest.at)}) are not yet "
                         "covered by one: deleting them would go unseen")
    return ChainReport(True, checked, None, None, anchor is not None, legacy, len(mine), rows, tuple(notes))
