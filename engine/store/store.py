"""The durable store (SPEC section 12): SQLite by default, PostgreSQL by URL.

Every write method commits before it returns, so the caller may acknowledge right after
(durable before acknowledged); inside `transactions.batch()` (the writer's group commit) the
writes commit together when the batch ends, and the writer resolves each one's future only
then. Database errors propagate: the caller refuses the request
rather than acting on something that was not saved (fail closed). Methods are synchronous;
the engine loop calls them where it must wait for durability, or in a thread.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from itertools import islice
from pathlib import Path

from sqlalchemy import insert
from sqlmodel import Session, SQLModel, select

from engine.domain.events import EngineEvent
from engine.live.pending import PendingAction, PendingStatus
from engine.risk.policies import PolicyError, parse_policy
from engine.store import audit as audit_log
from engine.store import bots, chain, changes, codec, tokens
from engine.store.anchor import default_audit_dir
from engine.store.changes import MASTER, SYSTEM
from engine.store.connect import default_url, open_engine
from engine.store.trail import AuditTrail
from engine.store.transactions import Transactions
from engine.store.verify import verify
from engine.store.tables import (BotRow, EquityRow, FillRow, OrderRow, PendingRow, PolicyRow, ResultRow, SettingRow,
                                 TokenRow, VenueStateRow)
from engine.store.bots import BotExists, BotInfo
from engine.store.tokens import TokenInfo
from engine.risk.trading_state import Flattening, TradingStateMachine

TRADING_STATE_KEY = "trading_state"
FLATTENING_KEY = "flattening"  # the panic exit under way (engine.risk.trading_state.Flattening)
APPEND_BATCH = 5000  # events per transaction in append_events
# Plain INSERTs built once (on the tables, run by `transactions.rows()`), for the rows every
# order, fill and equity point adds
_ADD_ORDER, _ADD_FILL, _ADD_EQUITY = (insert(model.__table__) for model in (OrderRow, FillRow, EquityRow))


class Store:
    """Opens (and creates) the database at `url`: `sqlite:///path` or `postgresql+psycopg://...`.

    `audit_dir` holds the audit key and the checkpoints that anchor the hash chains outside the
    database (default: the XDG config dir, `$XDG_CONFIG_HOME/perpguard`); see engine.store.anchor."""

    def __init__(self, url: str, *, audit_dir: str | Path | None = None) -> None:
        self.url = url
        self.engine = open_engine(url)  # public for maintenance scripts and tests (raw SQL)
        SQLModel.metadata.create_all(self.engine)
        self.audit_dir = Path(audit_dir) if audit_dir is not None else default_audit_dir()
        self._trail = AuditTrail(self.engine, url, self.audit_dir)
        # every write goes through these (`transactions.batch()`: several in one commit)
        self.transactions = Transactions(self.engine, self._trail)
        try:
            self._trail.open()  # AuditKeyError: an anchored database whose key is missing or open to others
        except BaseException:
            self.engine.dispose()
            raise

    @staticmethod
    def default_url() -> str:
        return default_url()

    def close(self) -> None:
        with self.transactions.lock:
            self._trail.close()  # a checkpoint of what was written since the last one
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    # -- policies -------------------------------------------------------------------------------

    def list_policies(self) -> list[dict]:
        """Saved policy bodies (as Policy.as_body() gives them), in the order first saved."""
        with self.transactions.read() as session:
            return [codec.parse(row.body) for row in session.exec(select(PolicyRow).order_by(PolicyRow.seq))]

    def save_policy(self, body: dict, *, actor: str = SYSTEM, at: float | None = None) -> dict:
        """Validate `body`, then insert it or replace the policy with its id (keeping its place),
        chaining the change with `actor` (who made it; "system" is the engine's own first-start
        seeding) at `at` (epoch s, default now). Returns the stored body. Raises PolicyError
        naming the bad field."""
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise PolicyError("id", "a saved policy needs an id (a string)")
        stored = parse_policy(body, body["id"]).as_body()
        with self.transactions.chained() as write:
            session = write.session
            row = session.exec(select(PolicyRow).where(PolicyRow.id == stored["id"])).first()
            if row is None:
                row = PolicyRow(id=stored["id"], body="")
            row.body = codec.canonical(stored)
            session.add(row)
            write.append("changes", [changes.policy_saved(stored, actor, _now(at))])
        return stored

    def delete_policy(self, policy_id: str, *, actor: str = SYSTEM, at: float | None = None) -> bool:
        """Delete the policy (chained with `actor` and `at`, as for save_policy). False if there is none."""
        with self.transactions.chained() as write:
            row = write.session.exec(select(PolicyRow).where(PolicyRow.id == policy_id)).first()
            if row is not None:
                write.session.delete(row)
                write.append("changes", [changes.policy_deleted(policy_id, codec.parse(row.body), actor, _now(at))])
            return row is not None

    # -- pending actions (engine.live.pending.PendingStore) -----------------------------------------

    def save_pending(self, action: PendingAction) -> None:
        with self.transactions.write() as session:
            session.merge(codec.pending_row(action))

    def load_open_pending(self) -> list[PendingAction]:
        """Actions still PENDING or RELEASING, oldest first: what the queue resumes with after a restart."""
        with self.transactions.read() as session:
            open_statuses = (PendingStatus.PENDING.value, PendingStatus.RELEASING.value)
            query = (select(PendingRow).where(PendingRow.status.in_(open_statuses)).order_by(PendingRow.created_at))
            return [codec.pending_action(row) for row in session.exec(query)]

    def list_pending(self, limit: int = 100) -> list[PendingAction]:
        """The most recent actions, any status, newest first."""
        with self.transactions.read() as session:
            query = select(PendingRow).order_by(PendingRow.created_at.desc()).limit(limit)
            return [codec.pending_action(row) for row in session.exec(query)]

    # -- trading state --------------------------------------------------------------------------

    def save_trading(self, machine: TradingStateMachine, event: EngineEvent | None = None) -> None:
        """State, every cause with its `until` (LATCHED included) and the halt cause. With
        `event` (the transition's `state_changed`), the event is chained in the same
        transaction: a crash cannot keep the new state and lose the record of why. The setting's
        change is chained too (by "system"), so a state edited behind the store's back is caught."""
        text = codec.trading_text(machine)
        with self.transactions.chained() as write:
            write.session.merge(SettingRow(key=TRADING_STATE_KEY, value=text))
            if event is not None:
                write.append("events", [_event_content(event)])
            at = float(event.at) if event is not None else time.time()
            write.append("changes", [changes.setting_changed(write.key, TRADING_STATE_KEY, text, SYSTEM, at)])

    def load_trading(self) -> TradingStateMachine | None:
        """The saved machine, or None if none was ever saved (a fresh install starts ACTIVE)."""
        text = self.get_setting(TRADING_STATE_KEY)
        return codec.trading_machine(text) if text is not None else None

    def save_flattening(self, record: Flattening | None, at: float | None = None) -> None:
        """The panic exit's record (None: flat, cleared), chained as a setting change by "system"."""
        self.set_setting(FLATTENING_KEY, codec.flattening_text(record), actor=SYSTEM,
                         at=record.since if record is not None and at is None else at)

    def load_flattening(self) -> Flattening | None:
        """The record if a panic exit was still flattening when the engine last ran, else None."""
        text = self.get_setting(FLATTENING_KEY)
        return codec.flattening_record(text) if text is not None else None

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
        with self.transactions.chained() as write:
            return write.append(table, contents)

    def audit(self, limit: int = 100, kind: str | None = None, since: float | None = None,
              before_id: str | None = None) -> list[dict]:
        """Decisions, events and changes, newest first. Each item has `table`, `id`, `ref`
        (`events#42`), `at`, `kind` (`decision`, the event's kind, or the change's:
        `policy_saved`, `token_revoked`, ...) and its payload (a change's `actor`, `subject`,
        `message` and `data`). `kind` filters on it;
        `since` keeps items at or after that time (epoch s); `before_id` is an item's `ref`,
        to fetch the page after it. ValueError for a malformed or unknown ref."""
        with self.transactions.read() as session:
            return audit_log.audit(session, limit, kind, since, before_id)

    def verify_chain(self) -> chain.ChainReport:
        """Everything `audit verify` checks (engine.store.verify): the anchor, every link of the
        three chains (streamed in batches), the policies, tokens and settings against the
        changes chain, and the checkpoints. Reads one snapshot of the database; writes nothing
        (no key, anchor or checkpoint is created)."""
        with self.transactions.read() as session:
            _snapshot(session)
            return verify(session, self.audit_dir, self._trail.where)

    # -- orders, fills, equity ------------------------------------------------------------------

    def record_order(self, *, at: float, coin: str, side: str, size: float, status: str, px: float | None = None,
                     oid: str | None = None, client_id: str | None = None, reduce_only: bool = False,
                     error: str | None = None) -> None:
        """An order sent (or refused by the venue): `size` base units, `px` USD, `status` as the
        venue's ack says (filled, resting, rejected, ...)."""
        with self.transactions.rows() as connection:
            connection.execute(_ADD_ORDER, {"at": at, "coin": coin, "side": side, "size": size, "px": px, "status": status,
                                            "oid": oid, "client_id": client_id, "reduce_only": reduce_only, "error": error})

    def record_fill(self, *, at: float, oid: str, coin: str, side: str, size: float, px: float, fee: float = 0.0,
                    realized_pnl: float = 0.0, client_id: str | None = None) -> None:
        """A fill: `size` base units (unsigned), `px`, `fee`, `realized_pnl` USD."""
        with self.transactions.rows() as connection:
            connection.execute(_ADD_FILL, {"at": at, "oid": oid, "coin": coin, "side": side, "size": size, "px": px,
                                           "fee": fee, "realized_pnl": realized_pnl, "client_id": client_id})

    def record_equity(self, at: float, equity: float, margin_buffer: float | None) -> None:
        """Equity in USD, margin buffer as a fraction (None when there is no margin in use)."""
        with self.transactions.rows() as connection:
            connection.execute(_ADD_EQUITY, {"at": at, "equity": equity, "margin_buffer": margin_buffer})

    def recent_orders(self, limit: int = 100) -> list[OrderRow]:
        with self.transactions.read() as session:
            return list(session.exec(select(OrderRow).order_by(OrderRow.id.desc()).limit(limit)))

    def recent_fills(self, limit: int = 100) -> list[FillRow]:
        with self.transactions.read() as session:
            return list(session.exec(select(FillRow).order_by(FillRow.id.desc()).limit(limit)))

    def equity_since(self, since: float) -> list[EquityRow]:
        """Equity points at or after `since` (epoch s), oldest first: the console's chart."""
        with self.transactions.read() as session:
            return list(session.exec(select(EquityRow).where(EquityRow.at >= since).order_by(EquityRow.at)))

    # -- settings and idempotency ---------------------------------------------------------------

    def get_setting(self, key: str) -> str | None:
        with self.transactions.read() as session:
            row = session.get(SettingRow, key)
            return row.value if row else None

    def set_setting(self, key: str, value: str, *, actor: str | None = None, at: float | None = None) -> None:
        """Set a named value, chaining the change (a keyed fingerprint of the value, never the
        value) with `actor` (default `local:<user>`: a process holding the database itself,
        as `perpguard init` does)."""
        with self.transactions.chained() as write:
            write.session.merge(SettingRow(key=key, value=value))
            write.append("changes", [changes.setting_changed(write.key, key, value, actor or changes.local_actor(),
                                                             _now(at))])

    def save_venue_state(self, key: str, value: str) -> None:
        """Replace the named venue state (the paper account); not chained (see VenueStateRow)."""
        with self.transactions.write() as session:
            session.merge(VenueStateRow(key=key, value=value, saved_at=time.time()))

    def load_venue_state(self, key: str) -> str | None:
        with self.transactions.read() as session:
            row = session.get(VenueStateRow, key)
            return row.value if row else None

    def save_result(self, client_id: str, body: dict) -> None:
        """The answer given to `client_id` (replacing any earlier one), so a retry gets it back."""
        with self.transactions.write() as session:
            session.merge(ResultRow(client_id=client_id, body=codec.canonical(body)))

    def load_result(self, client_id: str) -> dict | None:
        with self.transactions.read() as session:
            row = session.get(ResultRow, client_id)
            return codec.parse(row.body) if row else None

    # -- bot tokens -----------------------------------------------------------------------------

    def create_token(self, name: str, scopes: set[str], expires_at: float | None,
                     now: float | None = None, *, actor: str = MASTER) -> tuple[TokenInfo, str]:
        """A new token; returns its info and the plaintext, which is never stored or shown again.
        `scopes` a non-empty subset of {trade, read, kill}; `expires_at` epoch s or None. The
        change is chained with `actor` (default "master": the gateway's token calls need it)."""
        if not name or not name.strip():
            raise ValueError("a token needs a name")
        plaintext = tokens.new_plaintext()
        scope_text = ",".join(sorted(tokens.checked_scopes(scopes)))
        row = TokenRow(id=tokens.new_token_id(), name=name.strip(), scopes=scope_text,
                       token_hash=tokens.digest(plaintext), created_at=time.time() if now is None else now,
                       expires_at=expires_at)
        with self.transactions.chained() as write:
            write.session.add(row)
            write.append("changes", [changes.token_created(row, write.key, actor)])
        return tokens.token_info(row), plaintext

    def find_token(self, plaintext: str, now: float) -> TokenInfo | None:
        """The token's info if it exists, is not revoked and has not expired at `now` (epoch s)."""
        if not plaintext.startswith(tokens.PREFIX):
            return None
        with self.transactions.read() as session:
            row = session.exec(select(TokenRow).where(TokenRow.token_hash == tokens.digest(plaintext))).first()
        info = tokens.token_info(row) if row else None
        return info if info is not None and info.usable(now) else None

    def revoke_token(self, token_id: str, now: float | None = None, *, actor: str = MASTER) -> bool:
        """Revoke for good (the first revocation time is kept), chained with `actor` (as for
        create_token). False if no such token."""
        with self.transactions.chained() as write:
            row = write.session.get(TokenRow, token_id)
            if row is not None and row.revoked_at is None:
                row.revoked_at = _now(now)
                write.session.add(row)
                write.append("changes", [changes.token_revoked(row, actor)])
            return row is not None

    def list_tokens(self) -> list[TokenInfo]:
        """Every token, revoked and expired ones included, oldest first (no secrets in them)."""
        with self.transactions.read() as session:
            return [tokens.token_info(row) for row in session.exec(select(TokenRow).order_by(TokenRow.created_at))]

    # -- bot identities (engine.store.bots) -------------------------------------------------------

    def add_bot(self, name: str, address: str, scopes: set[str] | frozenset[str] = bots.SCOPES, *,
                actor: str = MASTER, now: float | None = None) -> BotInfo:
        """Register a bot: `address` 0x + 40 hex (kept lower case), `scopes` a non-empty subset of
        {trade, read}. Chained with `actor`. BotError naming the field for bad input, BotExists
        (a BotError) when the name or the address is taken, naming the bot that holds it."""
        row = bots.new_row(name, address, scopes, now)
        with self.transactions.chained() as write:
            session = write.session
            if session.get(BotRow, row.name) is not None:
                raise BotExists("name", f"a bot named {row.name} is already registered")
            holder = session.exec(select(BotRow).where(BotRow.address == row.address)).first()
            if holder is not None:
                raise BotExists("address", f"{row.address} is already registered as bot {holder.name}")
            session.add(row)
            write.append("changes", [changes.bot_added(row, actor)])
        return bots.bot_info(row)

    def list_bots(self) -> list[BotInfo]:
        """Every registered bot, oldest first."""
        with self.transactions.read() as session:
            return [bots.bot_info(row) for row in session.exec(select(BotRow).order_by(BotRow.created_at, BotRow.name))]

    def remove_bot(self, name: str, *, actor: str = MASTER, now: float | None = None) -> bool:
        """Forget the bot (its signatures are refused from then on), chained with `actor`. False if
        there is no such bot."""
        with self.transactions.chained() as write:
            row = write.session.get(BotRow, name)
            if row is not None:
                write.session.delete(row)
                write.append("changes", [changes.bot_removed(row, actor, _now(now))])
            return row is not None

    def find_bot(self, address: str) -> BotInfo | None:
        """The bot registered with `address` (any case of the hex digits), or None."""
        if not isinstance(address, str):
            return None
        with self.transactions.read() as session:
            row = session.exec(select(BotRow).where(BotRow.address == address.lower())).first()
        return bots.bot_info(row) if row is not None else None


def _now(at: float | None) -> float:
    return time.time() if at is None else float(at)


def _snapshot(session: Session) -> None:
    """Make the session's reads one consistent snapshot (a verifier running beside a busy
    engine must not see a policy's row without the change that made it, or the reverse)."""
    if session.get_bind().dialect.name == "sqlite":
        session.connection().exec_driver_sql("BEGIN")  # pysqlite does not begin before a SELECT
    else:
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def _event_content(event: EngineEvent) -> dict:
    return {"at": float(event.at), "kind": event.kind, "message": event.message, "data": codec.canonical(event.data)}
