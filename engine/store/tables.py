"""The store's tables (SQLModel). Same schema on SQLite and PostgreSQL.

JSON payloads live in Text columns written by `engine.store.codec`, not in a JSON column type:
the hash chain hashes the exact stored text, and engine figures may be non-finite (a latched
cause's `until` is infinity), which PostgreSQL's JSON types refuse.
Times are epoch seconds (float, double precision on both databases).
"""

from __future__ import annotations

from sqlalchemy import Text
from sqlmodel import Field, SQLModel


class PolicyRow(SQLModel, table=True):
    """A policy body as `Policy.as_body()` gives it; `seq` keeps insertion order."""

    __tablename__ = "policies"
    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True, index=True)
    body: str = Field(sa_type=Text)


class PendingRow(SQLModel, table=True):
    """A PendingAction; `intent` is OrderIntent JSON."""

    __tablename__ = "pending_actions"
    id: str = Field(primary_key=True)
    tier: str
    status: str = Field(index=True)
    intent: str = Field(sa_type=Text)
    created_at: float = Field(index=True)
    execute_at: float | None = None
    expires_at: float | None = None
    reason: str = Field(sa_type=Text)
    outcome: str | None = Field(default=None, sa_type=Text)
    closed_at: float | None = None


class DecisionRow(SQLModel, table=True):
    """One gate decision, a link of the decisions hash chain. `id` is assigned by the chain
    (head + 1), never by the database, so a deleted row leaves a visible gap."""

    __tablename__ = "decisions"
    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: float = Field(index=True)
    body: str = Field(sa_type=Text)
    prev_hash: str
    hash: str


class EventRow(SQLModel, table=True):
    """One EngineEvent, a link of the events hash chain (ids as for decisions)."""

    __tablename__ = "events"
    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: float = Field(index=True)
    kind: str = Field(index=True)
    message: str = Field(sa_type=Text)
    data: str = Field(sa_type=Text)
    prev_hash: str
    hash: str


class ChangeRow(SQLModel, table=True):
    """One change to what the engine enforces or who may call it (a policy saved or deleted, a
    token created or revoked, a setting changed), a link of the changes hash chain (ids as for
    decisions). `actor` made it (`master`, `system`, `local:<user>`, a token's id); `subject`
    names what changed (a policy id, a token id, a setting key); `body` says how (JSON)."""

    __tablename__ = "changes"
    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: float = Field(index=True)
    kind: str = Field(index=True)
    actor: str
    subject: str
    body: str = Field(sa_type=Text)
    prev_hash: str
    hash: str


class AuditAnchorRow(SQLModel, table=True):
    """The database's one anchor, written when this version first writes to it: its id (which
    keys its links) and, per chain, the first keyed row and the last unkeyed (legacy) hash
    (`chains`, JSON). `mac` is keyed, so the row cannot be forged or moved without the key."""

    __tablename__ = "audit_anchor"
    id: int = Field(default=1, primary_key=True, sa_column_kwargs={"autoincrement": False})
    db_id: str
    anchored_at: float
    chains: str = Field(sa_type=Text)
    mac: str


class ChainHead(SQLModel, table=True):
    """The last link of each chain. Anchors the tail, so deleting the newest rows is caught,
    and serialises appends (PostgreSQL locks this row; the primary key stops a fork anyway)."""

    __tablename__ = "chain_heads"
    table: str = Field(primary_key=True)
    last_id: int
    last_hash: str


class OrderRow(SQLModel, table=True):
    """An order sent to the venue (or refused by it). `size` base units, `px` USD."""

    __tablename__ = "orders"
    id: int | None = Field(default=None, primary_key=True)
    at: float = Field(index=True)
    coin: str
    side: str
    size: float
    px: float | None = None
    status: str
    oid: str | None = Field(default=None, index=True)
    client_id: str | None = Field(default=None, index=True)
    reduce_only: bool = False
    error: str | None = Field(default=None, sa_type=Text)


class FillRow(SQLModel, table=True):
    """A fill. `size` base units (unsigned; `side` says which way), `px`, `fee`, `realized_pnl` USD."""

    __tablename__ = "fills"
    id: int | None = Field(default=None, primary_key=True)
    at: float = Field(index=True)
    oid: str = Field(index=True)
    coin: str
    side: str
    size: float
    px: float
    fee: float = 0.0
    realized_pnl: float = 0.0
    client_id: str | None = None


class EquityRow(SQLModel, table=True):
    """Account equity (USD) and margin buffer (fraction) over time, for the console's chart."""

    __tablename__ = "equity_points"
    id: int | None = Field(default=None, primary_key=True)
    at: float = Field(index=True)
    equity: float
    margin_buffer: float | None = None


class SettingRow(SQLModel, table=True):
    """Small named values: the master password hash, the trading state."""

    __tablename__ = "settings"
    key: str = Field(primary_key=True)
    value: str = Field(sa_type=Text)


class VenueStateRow(SQLModel, table=True):
    """What a simulated venue keeps between runs (the paper account). Venue state, not
    configuration: outside the audit chains, as the venue's own books are."""

    __tablename__ = "venue_state"
    key: str = Field(primary_key=True)
    value: str = Field(sa_type=Text)
    saved_at: float


class ResultRow(SQLModel, table=True):
    """The answer given to a `client_id`, so a retried request gets the same answer."""

    __tablename__ = "idempotency_results"
    client_id: str = Field(primary_key=True)
    body: str = Field(sa_type=Text)


class TokenRow(SQLModel, table=True):
    """A bot token: only the sha256 of its plaintext is kept. `scopes` comma-separated."""

    __tablename__ = "tokens"
    id: str = Field(primary_key=True)
    name: str
    scopes: str
    token_hash: str = Field(unique=True, index=True)
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None


class BotRow(SQLModel, table=True):
    """A bot identity for the Hyperliquid-compatible API: the address (0x + 40 hex, lower case)
    whose signatures `/hl/exchange` accepts, never a key. `scopes` comma-separated."""

    __tablename__ = "bots"
    name: str = Field(primary_key=True)
    address: str = Field(unique=True, index=True)
    scopes: str
    created_at: float
