"""The audit key: what anchors the hash chains outside the database.

Every link is `HMAC-SHA256(key, prev_hash + row)` with a key kept in a file, not in the
database: someone who can write to the database but cannot read that file cannot make a link
that verifies, so an edited row with every later hash recomputed, or a row forged onto the end
with the head moved, is caught. The key file (`audit.key` in the audit folder, by default the
XDG config dir `$XDG_CONFIG_HOME/perpguard`) holds 32 random bytes in hex; it is created 0600,
in a 0700 folder, the first time a store writes, and refused if others can read it. Its content
is never logged, printed or stored.

Each database gets its own id (the `audit_anchor` row) and its links use a key derived from the
audit key and that id, so links cannot be copied from one database to another. The anchor row
also says, per chain, where keyed links begin: a database written by an earlier version keeps
its plain-sha256 rows before that point ("legacy"), and the anchor pins their last hash.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from engine.store.codec import canonical
from engine.store.tables import AuditAnchorRow

KEY_FILE = "audit.key"
GENESIS = "0" * 64


class AuditKeyError(Exception):
    """The audit key cannot be used: missing where it must be, unreadable, or open to others."""


def default_audit_dir() -> Path:
    """`$XDG_CONFIG_HOME/perpguard` (else ~/.config/perpguard): `engine.config.xdg_config_dir()`,
    which the store layer may not import."""
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "perpguard"


def database_location(url: str) -> str:
    """Where a database lives, without credentials: `sqlite:///abs/path`, or the PostgreSQL
    server, database and options (the schema). Checkpoints name it, so a database replaced
    at the same place is noticed."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        path = parsed.database or ""
        resolved = str(Path(path).expanduser().resolve()) if path and path != ":memory:" and not path.startswith("file:") else path
        return f"sqlite:///{resolved}"
    query = "&".join(f"{k}={v}" for k, v in sorted(parsed.query.items()))
    return f"{backend}://{parsed.host or ''}:{parsed.port or ''}/{parsed.database or ''}" + (f"?{query}" if query else "")


class AuditKey:
    """The secret, read from its file. Its repr and str name the file, never the secret."""

    __slots__ = ("_secret", "path")

    def __init__(self, secret: bytes, path: Path) -> None:
        self._secret = secret
        self.path = path

    def __repr__(self) -> str:
        return f"AuditKey({str(self.path)!r})"

    __str__ = __repr__

    def for_database(self, db_id: str) -> DatabaseKey:
        derived = hmac.new(self._secret, b"perpguard audit v1\x00" + db_id.encode(), hashlib.sha256).digest()
        return DatabaseKey(db_id, derived)


class DatabaseKey:
    """The audit key as one database's links use it (derived from the key and the database's id)."""

    __slots__ = ("db_id", "_links", "_macs")

    def __init__(self, db_id: str, derived: bytes) -> None:
        self.db_id = db_id
        self._links = hmac.new(derived, b"link\x00", hashlib.sha256).digest()
        self._macs = hmac.new(derived, b"mac\x00", hashlib.sha256).digest()

    def __repr__(self) -> str:
        return f"DatabaseKey({self.db_id!r})"

    def link(self, prev_hash: str, content: dict) -> str:
        """The link hash of a row: HMAC-SHA256 over the previous hash and the row's canonical JSON."""
        return hmac.new(self._links, (prev_hash + canonical(content)).encode(), hashlib.sha256).hexdigest()

    def mac(self, purpose: str, value: object) -> str:
        """A keyed fingerprint of `value` for `purpose` (anchor, checkpoint, setting, token)."""
        return hmac.new(self._macs, f"{purpose}\x00{canonical(value)}".encode(), hashlib.sha256).hexdigest()

    def matches(self, purpose: str, value: object, mac: str) -> bool:
        return hmac.compare_digest(self.mac(purpose, value), mac)


def load_key(path: Path) -> AuditKey | None:
    """The key in `path`, or None if there is no such file. AuditKeyError if others may read
    it (the fix is named) or it is not a key."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AuditKeyError(f"the audit key {path} is open to other users (mode {stat.S_IMODE(mode):04o}); "
                            f"run: chmod 600 {path}")
    try:
        secret = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not a hex key"
        raise AuditKeyError(f"cannot read the audit key {path}: {reason}") from None
    if len(secret) < 32:
        raise AuditKeyError(f"the audit key {path} is too short ({len(secret)} bytes; 32 expected)")
    return AuditKey(secret, path)


def load_or_create_key(path: Path) -> AuditKey:
    """The key in `path`, created (0600, its folder 0700) if there is none. Two processes
    creating it at once end up with the same key: it is written aside, then linked into place."""
    key = load_key(path)
    if key is not None:
        return key
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_bytes(32).hex() + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(aside, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
    finally:
        aside.unlink(missing_ok=True)
    key = load_key(path)
    if key is None:
        raise AuditKeyError(f"the audit key {path} vanished as it was created")
    return key


# -- the anchor row ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Anchor:
    """A database's anchor: its id, when it was anchored, and per chain where keyed links begin
    (`keyed_from`, a row id) and the hash the legacy rows before it end with."""

    db_id: str
    anchored_at: float
    keyed_from: dict[str, int]
    legacy_heads: dict[str, str]
    mac: str

    def signed_content(self) -> dict:
        return {"db_id": self.db_id, "anchored_at": self.anchored_at,
                "chains": {t: {"keyed_from": self.keyed_from[t], "legacy_head": self.legacy_heads[t]}
                           for t in sorted(self.keyed_from)}}


def read_anchor(session: Session) -> Anchor | None:
    row = session.exec(select(AuditAnchorRow)).first()
    if row is None:
        return None
    try:
        chains = json.loads(row.chains)
        keyed_from = {t: int(c["keyed_from"]) for t, c in chains.items()}
        legacy_heads = {t: str(c["legacy_head"]) for t, c in chains.items()}
    except (ValueError, TypeError, KeyError, AttributeError):
        keyed_from, legacy_heads = {}, {}  # unreadable: its MAC will not match
    return Anchor(row.db_id, row.anchored_at, keyed_from, legacy_heads, row.mac)


def new_anchor(key: AuditKey, heads: dict[str, tuple[int, str]]) -> tuple[Anchor, DatabaseKey]:
    """An anchor for a database whose chains end at `heads` ({table: (last id, last hash)}):
    keyed links begin with the next row of each."""
    db_id = uuid.uuid4().hex
    db_key = key.for_database(db_id)
    unsigned = Anchor(db_id, time.time(), {t: last_id + 1 for t, (last_id, _) in heads.items()},
                      {t: last_hash for t, (_, last_hash) in heads.items()}, "")
    mac = db_key.mac("anchor", unsigned.signed_content())
    return Anchor(unsigned.db_id, unsigned.anchored_at, unsigned.keyed_from, unsigned.legacy_heads, mac), db_key


def anchor_row(anchor: Anchor) -> AuditAnchorRow:
    chains = canonical(anchor.signed_content()["chains"])
    return AuditAnchorRow(id=1, db_id=anchor.db_id, anchored_at=anchor.anchored_at, chains=chains, mac=anchor.mac)
