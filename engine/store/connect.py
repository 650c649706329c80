"""Opening the database: where the default file lives, and how each backend is tuned."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

BUSY_TIMEOUT_MS = 5000  # a second process holding the write lock is waited for, not failed


def default_url() -> str:
    """SQLite under `$XDG_DATA_HOME/perpguard/perpguard.db` (else ~/.local/share/...)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return f"sqlite:///{Path(base) / 'perpguard' / 'perpguard.db'}"


def open_engine(url: str) -> Engine:
    """A SQLAlchemy engine for `url`. `postgresql://` means psycopg 3 (the driver we ship)."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
        private_database_file(Path(parsed.database).expanduser())
    engine = create_engine(parsed, connect_args={"check_same_thread": False})
    event.listen(engine, "connect", _tune_sqlite)
    return engine


def private_database_file(path: Path) -> None:
    """The SQLite file holds the master password hash and the token hashes: create it 0600 in a
    0700 folder before SQLite opens it (SQLite gives its -wal and -shm files the database file's
    mode), and take group and other access off one that exists already, and off its companions."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError, PermissionError):  # not ours to change: leave it
            mode = stat.S_IMODE(file.stat().st_mode)
            if mode & 0o077:
                os.chmod(file, mode & 0o700)


def _tune_sqlite(dbapi_connection, _record) -> None:
    """WAL with synchronous=NORMAL: a commit is in the WAL file when it returns, so it survives
    the process being killed (kill -9); only an OS crash or power loss can drop the newest
    commits. Foreign keys on, and a busy timeout so concurrent writers wait."""
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", f"busy_timeout={BUSY_TIMEOUT_MS}"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()
