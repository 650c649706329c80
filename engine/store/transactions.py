"""How the store's writes reach the database: each in a transaction of its own, or several in
one (`batch`: the writer's group commit), and the links they add to the audit chains under one
lock, with the database's key and the checkpoints that follow a commit (`engine.store.trail`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlmodel import Session

from engine.store.trail import AuditTrail, ChainedWrite


class Transactions:
    """Sessions on `engine` for the store whose audit trail is `trail`."""

    def __init__(self, engine: Engine, trail: AuditTrail) -> None:
        self.engine = engine
        self._trail = trail
        # One appender per process (see chain.append for others); reentrant, so the writes of a
        # batch (which holds it throughout) take it again.
        self.lock = threading.RLock()
        self._batch = threading.local()  # .write: the ChainedWrite of this thread's batch, if any

    def _batch_write(self) -> ChainedWrite | None:
        return getattr(self._batch, "write", None)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Every write this thread makes inside the block joins one transaction, committed once
        at its end (one commit for all the writes the writer found queued, instead of one each).
        Any error rolls all of them back and propagates. Nested: joins the outer one."""
        if self._batch_write() is not None:
            yield
            return
        with self.lock:
            key = self._trail.database_key()  # anchoring commits on its own: before the batch begins
            with Session(self.engine, expire_on_commit=False) as session:
                write = self._batch.write = ChainedWrite(session, key)
                try:
                    yield
                    session.commit()
                finally:
                    self._batch.write = None
            self._trail.committed(write.rows, change=write.changes > 0)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session committed on leaving the block (inside `batch()`: the batch's, committed with
        it); any error rolls back and propagates."""
        batch = self._batch_write()
        if batch is not None:
            yield batch.session
            return
        with Session(self.engine, expire_on_commit=False) as session:
            yield session
            session.commit()

    @contextmanager
    def rows(self) -> Iterator[Connection]:
        """A SQLAlchemy Core connection, for the plain statements built once that every order
        and fill runs (half the cost of the ORM's execute path): inside `batch()` the batch's,
        committed with it; otherwise a transaction of its own, committed on leaving the block."""
        batch = self._batch_write()
        if batch is not None:
            yield batch.session.connection()
            return
        with self.engine.begin() as connection:
            yield connection

    @contextmanager
    def chained(self) -> Iterator[ChainedWrite]:
        """A write that adds links: the lock held, the database anchored first (on the first
        write), a checkpoint after the commit when one is due."""
        batch = self._batch_write()
        if batch is not None:
            yield batch
            return
        with self.lock:
            key = self._trail.database_key()
            with self.write() as session:
                write = ChainedWrite(session, key)
                yield write
            self._trail.committed(write.rows, change=write.changes > 0)

    def read(self) -> Session:
        return Session(self.engine, expire_on_commit=False)
