"""The store's side of the anchored audit trail: the key its links use, the database's anchor
(written on the first write by this version), and the checkpoints it writes as the chains grow.

A store that only reads (`audit verify`) never creates a key, an anchor or a checkpoint: the
anchor is made by the first write, so a verifier cannot bless what it finds.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session

from engine.store import chain, changes
from engine.store.anchor import (KEY_FILE, AuditKeyError, DatabaseKey, anchor_row, database_location, load_key,
                                 load_or_create_key, new_anchor, read_anchor)
from engine.store.checkpoints import CHECKPOINT_FILE, Checkpointer

log = logging.getLogger("perpguard.store")


class AuditTrail:
    """For one store: `database_key()` before chaining anything (under the store's chain lock),
    `committed(rows)` after the commit, `close()` when the store closes."""

    def __init__(self, engine: Engine, url: str, audit_dir: Path) -> None:
        self.engine = engine
        self.audit_dir = audit_dir
        self.where = database_location(url)
        self._key: DatabaseKey | None = None
        self._checkpoints = Checkpointer(audit_dir / CHECKPOINT_FILE, self.where)

    @property
    def key_path(self) -> Path:
        return self.audit_dir / KEY_FILE

    def database_key(self) -> DatabaseKey:
        """The key this database's links use. The first call anchors a database no version with
        keys has written to (creating the audit key if there is none). AuditKeyError if the
        database is anchored and its key is missing or open to others: nothing is written."""
        if self._key is None:
            self._key = self._anchored()
        return self._key

    def open(self) -> None:
        """At the store's opening: a database already anchored needs its key now, so an engine
        whose key is missing or open to others fails as it starts (AuditKeyError), not at its
        first write. A database not yet anchored is left alone (reading it anchors nothing)."""
        self._key = self._existing()

    def _existing(self) -> DatabaseKey | None:
        with Session(self.engine) as session:
            found = read_anchor(session)
        if found is None:
            return None
        key = load_key(self.key_path)
        if key is None:
            raise AuditKeyError(f"this database is anchored to an audit key, but there is none at {self.key_path}: "
                                "restore that file (nothing is written without it)")
        return key.for_database(found.db_id)

    def _anchored(self) -> DatabaseKey:
        existing = self._existing()
        if existing is not None:
            return existing
        key = load_or_create_key(self.key_path)
        try:
            with Session(self.engine) as session:
                anchor, db_key = new_anchor(key, chain.heads(session))
                session.add(anchor_row(anchor))
                session.flush()  # a racing process anchoring too fails here, before anything is chained
                recorded = changes.baseline(session, db_key, anchor.anchored_at)
                if recorded is not None:
                    chain.append(session, "changes", [recorded], db_key)
                session.commit()
        except IntegrityError:  # another process anchored it first: use its anchor
            with Session(self.engine) as session:
                found = read_anchor(session)
            if found is None:
                raise
            return key.for_database(found.db_id)
        legacy = sum(n - 1 for n in anchor.keyed_from.values())
        log.info("audit trail anchored: keyed links from now on (%d legacy rows before them), key file %s",
                 legacy, self.key_path)
        self._checkpoint(db_key)
        return db_key

    def committed(self, rows: int, change: bool = False) -> None:
        """`rows` links were just committed (`change`: a policy, token or setting change, which
        is checkpointed at once)."""
        if self._key is not None and self._checkpoints.due(rows, change):
            self._checkpoint(self._key)

    def close(self) -> None:
        if self._key is not None and self._checkpoints.pending:
            self._checkpoint(self._key)

    def _checkpoint(self, key: DatabaseKey) -> None:
        """Never raises: the rows are committed, and a caller must not think otherwise (and retry them)."""
        try:
            with Session(self.engine) as session:
                heads = chain.heads(session)
        except SQLAlchemyError as exc:
            log.warning("could not read the chain heads for an audit checkpoint: %s", exc.__class__.__name__)
            return
        self._checkpoints.write(key, heads)


class ChainedWrite:
    """A write transaction that adds links (`Transactions.chained()` gives one): `append`
    counts them, so the checkpointer knows what moved."""

    def __init__(self, session: Session, key: DatabaseKey) -> None:
        self.session = session
        self.key = key
        self.rows = 0
        self.changes = 0

    def append(self, table: str, contents: list[dict]) -> int:
        """Chain `contents` onto `table`; returns the last row's id."""
        last_id, _ = chain.append(self.session, table, contents, self.key)
        self.rows += len(contents)
        self.changes += len(contents) if table == "changes" else 0
        return last_id
