"""Domain values to stored text and back: canonical JSON, pending actions, the trading state and
the panic exit's flattening record."""

from __future__ import annotations

import json

from engine.domain.model import OrderIntent, Tier, TradingState
from engine.live.pending import PendingAction, PendingStatus
from engine.store.tables import PendingRow
from engine.risk.trading_state import LATCHED, Flattening, TradingStateMachine


def canonical(value: object) -> str:
    """One text per value: sorted keys, no spaces. Non-finite floats are written as Python's
    json does (`Infinity`) because engine figures can be infinite; values json cannot encode
    (Decimal from the venue layer) are written as their str(), which is exact for Decimal."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def parse(text: str) -> object:
    return json.loads(text)


def pending_row(action: PendingAction) -> PendingRow:
    return PendingRow(
        id=action.id,
        tier=action.tier.value,
        status=action.status.value,
        intent=canonical(action.intent.model_dump(mode="json")),
        created_at=action.created_at,
        execute_at=action.execute_at,
        expires_at=action.expires_at,
        reason=action.reason,
        outcome=action.outcome,
        closed_at=action.closed_at,
    )


def pending_action(row: PendingRow) -> PendingAction:
    return PendingAction(
        id=row.id,
        intent=OrderIntent.model_validate(parse(row.intent)),
        tier=Tier(row.tier),
        created_at=row.created_at,
        execute_at=row.execute_at,
        expires_at=row.expires_at,
        reason=row.reason,
        status=PendingStatus(row.status),
        outcome=row.outcome,
        closed_at=row.closed_at,
    )


def trading_text(machine: TradingStateMachine) -> str:
    """The machine as JSON; a latched cause's `until` is written "LATCHED" (readable in psql)."""
    causes = {c: "LATCHED" if u == LATCHED else u for c, u in machine.causes.items()}
    return canonical({"state": machine.state.value, "causes": causes, "halt_cause": machine.halt_cause})


def trading_machine(text: str) -> TradingStateMachine:
    data = parse(text)
    causes = {c: LATCHED if u == "LATCHED" else u for c, u in data["causes"].items()}
    return TradingStateMachine(TradingState(data["state"]), causes, data["halt_cause"])


def flattening_text(record: Flattening | None) -> str:
    """The record as JSON; `null` once the account is flat (the setting stays, chained)."""
    return canonical(None if record is None else {"cause": record.cause, "since": record.since})


def flattening_record(text: str) -> Flattening | None:
    data = parse(text)
    return None if data is None else Flattening(str(data["cause"]), float(data["since"]))
