"""The durable store (SPEC section 12): SQLite by default, PostgreSQL by URL.

Every write method commits before it returns, so the caller may acknowledge right after
(durable before acknowledged). Database errors propagate: the caller refuses the request
rather than acting on something that was not saved (fail closed). Methods are synchronous;
the engine loop calls them where it must wait for durability, or in a thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import islice

from sqlmodel import Session, SQLModel, select

from engine.domain.events import EngineEvent
from engine.live.pending import PendingAction, PendingStatus
from engine.risk.policies import PolicyError, parse_policy
from engine.store import audit as audit_log
from engine.store import chain, codec, tokens
from engine.store.connect import default_url, open_engine
from engine.store.tables import EquityRow, FillRow, OrderRow, PendingRow, PolicyRow, ResultRow, SettingRow, TokenRow
from engine.store.tokens import TokenInfo
from engine.risk.trading_state import TradingStateMachine

TRADING_STATE_KEY = "trading_state"
APPEND_BATCH = 5000  # events per transaction in append_events


class Store:
    """Opens (and creates) the database at `url`: `sqlite:///path` or `postgresql+psycopg://...`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = open_engine(url)  # public for maintenance scripts and tests (raw SQL)
        self._chain_lock = threading.Lock()  # one appender per process; see chain.append for others
        SQLModel.metadata.create_all(self.engine)

    @staticmethod
    def default_url() -> str:
        return default_url()

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """A session committed on leaving the block; any error rolls back and propagates."""
        with Session(self.engine, expire_on_commit=False) as session:
            yield session
            session.commit()

    def _read(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # -- policies -------------------------------------------------------------------------------

    def list_policies(self) -> list[dict]:
        """Saved policy bodies (as Policy.as_body() gives them), in the order first saved."""
        with self._read() as session:
            return [codec.parse(row.body) for row in session.exec(select(PolicyRow).order_by(PolicyRow.seq))]

    def save_policy(self, body: dict) -> dict:
        """Validate `body`, then insert it or replace the policy with its id (keeping its place).
        Returns the stored body. Raises PolicyError naming the bad field."""
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise PolicyError("id", "a saved policy needs an id (a string)")
        stored = parse_policy(body, body["id"]).as_body()
        with self._write() as session:
            row = session.exec(select(PolicyRow).where(PolicyRow.id == stored["id"])).first()
            if row is None:
                row = PolicyRow(id=stored["id"], body="")
            row.body = codec.canonical(stored)
            session.add(row)
        return stored

    def delete_policy(self, policy_id: str) -> bool:
        with self._write() as session:
            row = session.exec(select(PolicyRow).where(PolicyRow.id == policy_id)).first()
            if row is not None:
                session.delete(row)
            return row is not None

    # -- pending actions (engine.live.pending.PendingStore) -----------------------------------------

    def save_pending(self, action: PendingAction) -> None:
        with self._write() as session:
            session.merge(codec.pending_row(action))

    def load_open_pending(self) -> list[PendingAction]:
        """Actions still PENDING, oldest first: what the queue resumes with after a restart."""
        with self._read() as session:
            query = (select(PendingRow).where(PendingRow.status == PendingStatus.PENDING.value)
                     .order_by(PendingRow.created_at))
            return [codec.pending_action(row) for row in session.exec(query)]

    def list_pending(self, limit: int = 100) -> list[PendingAction]:
        """The most recent actions, any status, newest first."""
        with self._read() as session:
            query = select(PendingRow).order_by(PendingRow.created_at.desc()).limit(limit)
            return [codec.pending_action(row) for row in session.exec(query)]

    # -- trading state --------------------------------------------------------------------------

    def save_trading(self, machine: TradingStateMachine, event: EngineEvent | None = None) -> None:
        """State, every cause with its `until` (LATCHED included) and the halt cause. With
        `event` (the transition's `state_changed`), the event is chained in the same
        transaction: a crash cannot keep the new state and lose the record of why."""
        with self._chain_lock, self._write() as session:
            session.merge(SettingRow(key=TRADING_STATE_KEY, value=codec.trading_text(machine)))
            if event is not None:
                chain.append(session, "events", [_event_content(event)])

    def load_trading(self) -> TradingStateMachine | None:
        """The saved machine, or None if none was ever saved (a fresh install starts ACTIVE)."""
        text = self.get_setting(TRADING_STATE_KEY)
        return codec.trading_machine(text) if text is not None else None

    # -- audit chain ----------------------------------------------------------------------------

    def append_decision(self, record: dict) -> int:
        """Chain a decision record (Decision.as_dict() plus whatever the caller adds; needs
        `at`, epoch seconds). Returns the row id."""
        if "at" not in record:
            raise ValueError("a decision record needs 'at' (epoch seconds)")
        return self._append("decisions", [{"at": float(record["at"]), "body": codec.canonical(record)}])

    def append_event(self, event: EngineEvent) -> int:
        """Chain an engine event. Returns the row id."""
        return self.append_events([event])

    def append_events(self, events: Iterable[EngineEvent]) -> int:
        """Chain many events, committed in batches (replays, benchmarks): far cheaper than one
        append_event each. Returns the last row id."""
        last_id = 0
        contents = (_event_content(event) for event in events)
        while batch := list(islice(contents, APPEND_BATCH)):
            last_id = self._append("events", batch)
        return last_id

    def _append(self, table: str, contents: list[dict]) -> int:
        with self._chain_lock, self._write() as session:
            return chain.append(session, table, contents)

    def audit(self, limit: int = 100, kind: str | None = None, since: float | None = None,
              before_id: str | None = None) -> list[dict]:
        """Decisions and events, newest first. Each item has `table`, `id`, `ref` (`events#42`),
        `at`, `kind` (`decision`, or the event's kind) and its payload. `kind` filters on it;
        `since` keeps items at or after that time (epoch s); `before_id` is an item's `ref`,
        to fetch the page after it. ValueError for a malformed or unknown ref."""
        with self._read() as session:
            return audit_log.audit(session, limit, kind, since, before_id)

    def verify_chain(self) -> chain.ChainReport:
        """Recompute every hash of both chains (streamed in batches)."""
        with self._read() as session:
            return chain.verify(session)

    # -- orders, fills, equity ------------------------------------------------------------------

    def record_order(self, *, at: float, coin: str, side: str, size: float, status: str, px: float | None = None,
                     oid: str | None = None, client_id: str | None = None, reduce_only: bool = False,
                     error: str | None = None) -> None:
        """An order sent (or refused by the venue): `size` base units, `px` USD, `status` as the
        venue's ack says (filled, resting, rejected, ...)."""
        with self._write() as session:
            session.add(OrderRow(at=at, coin=coin, side=side, size=size, px=px, status=status, oid=oid,
                                 client_id=client_id, reduce_only=reduce_only, error=error))

    def record_fill(self, *, at: float, oid: str, coin: str, side: str, size: float, px: float, fee: float = 0.0,
                    realized_pnl: float = 0.0, client_id: str | None = None) -> None:
        """A fill: `size` base units (unsigned), `px`, `fee`, `realized_pnl` USD."""
        with self._write() as session:
            session.add(FillRow(at=at, oid=oid, coin=coin, side=side, size=size, px=px, fee=fee,
                                realized_pnl=realized_pnl, client_id=client_id))

    def record_equity(self, at: float, equity: float, margin_buffer: float | None) -> None:
        """Equity in USD, margin buffer as a fraction (None when there is no margin in use)."""
        with self._write() as session:
            session.add(EquityRow(at=at, equity=equity, margin_buffer=margin_buffer))

    def recent_orders(self, limit: int = 100) -> list[OrderRow]:
        with self._read() as session:
            return list(session.exec(select(OrderRow).order_by(OrderRow.id.desc()).limit(limit)))

    def recent_fills(self, limit: int = 100) -> list[FillRow]:
        with self._read() as session:
            return list(session.exec(select(FillRow).order_by(FillRow.id.desc()).limit(limit)))

    def equity_since(self, since: float) -> list[EquityRow]:
        """Equity points at or after `since` (epoch s), oldest first: the console's chart."""
        with self._read() as session:
            return list(session.exec(select(EquityRow).where(EquityRow.at >= since).order_by(EquityRow.at)))

    # -- settings and idempotency ---------------------------------------------------------------

    def get_setting(self, key: str) -> str | None:
        with self._read() as session:
            row = session.get(SettingRow, key)
            return row.value if row else None

    def set_setting(self, key: str, value: str) -> None:
        with self._write() as session:
            session.merge(SettingRow(key=key, value=value))

    def save_result(self, client_id: str, body: dict) -> None:
        """The answer given to `client_id` (replacing any earlier one), so a retry gets it back."""
        with self._write() as session:
            session.merge(ResultRow(client_id=client_id, body=codec.canonical(body)))

    def load_result(self, client_id: str) -> dict | None:
        with self._read() as session:
            row = session.get(ResultRow, client_id)
            return codec.parse(row.body) if row else None

    # -- bot tokens -----------------------------------------------------------------------------

    def create_token(self, name: str, scopes: set[str], expires_at: float | None,
                     now: float | None = None) -> tuple[TokenInfo, str]:
        """A new token; returns its info and the plaintext, which is never stored or shown again.
        `scopes` a non-empty subset of {trade, read, kill}; `expires_at` epoch s or None."""
        if not name or not name.strip():
            raise ValueError("a token needs a name")
        plaintext = tokens.new_plaintext()
        scope_text = ",".join(sorted(tokens.checked_scopes(scopes)))
        row = TokenRow(id=tokens.new_token_id(), name=name.strip(), scopes=scope_text,
                       token_hash=tokens.digest(plaintext), created_at=time.time() if now is None else now,
                       expires_at=expires_at)
        with self._write() as session:
            session.add(row)
        return tokens.token_info(row), plaintext

    def find_token(self, plaintext: str, now: float) -> TokenInfo | None:
        """The token's info if it exists, is not revoked and has not expired at `now` (epoch s)."""
        if not plaintext.startswith(tokens.PREFIX):
            return None
        with self._read() as session:
            row = session.exec(select(TokenRow).where(TokenRow.token_hash == tokens.digest(plaintext))).first()
        info = tokens.token_info(row) if row else None
        return info if info is not None and info.usable(now) else None

    def revoke_token(self, token_id: str, now: float | None = None) -> bool:
        """Revoke for good (the first revocation time is kept). False if no such token."""
        with self._write() as session:
            row = session.get(TokenRow, token_id)
            if row is not None and row.revoked_at is None:
                row.revoked_at = time.time() if now is None else now
                session.add(row)
            return row is not None

    def list_tokens(self) -> list[TokenInfo]:
        """Every token, revoked and expired ones included, oldest first (no secrets in them)."""
        with self._read() as session:
            return [tokens.token_info(row) for row in session.exec(select(TokenRow).order_by(TokenRow.created_at))]


def _event_content(event: EngineEvent) -> dict:
    return {"at": float(event.at), "kind": event.kind, "message": event.message, "data": codec.canonical(event.data)}
