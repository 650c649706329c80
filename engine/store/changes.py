"""Changes to what the engine enforces and who may call it, as links of the `changes` chain.

Every policy saved or deleted, token created or revoked, bot added or removed and setting
changed is chained in the same transaction as the table it changes, with who made it (`actor`).
`audit verify` replays the chain (`RecordedState`) and compares the result with the `policies`,
`tokens`, `bots` and `settings` tables, so a table edited behind the store's back is named.
Secrets never enter the chain: a token is recorded by a keyed fingerprint of its hash, a setting
(the master password's argon2 hash) by a keyed fingerprint of its value.
"""

from __future__ import annotations

import enum
import getpass
from dataclasses import dataclass

from sqlmodel import Session, select

from engine.store.anchor import DatabaseKey
from engine.store.codec import canonical, parse
from engine.store.tables import BotRow, PolicyRow, SettingRow, TokenRow

SYSTEM = "system"  # the engine itself: the first start's policies, the trading state, anchoring
MASTER = "master"  # the master password (every admin call of the gateway)


class ChangeKind(enum.StrEnum):
    POLICY_SAVED = "policy_saved"
    POLICY_DELETED = "policy_deleted"
    TOKEN_CREATED = "token_created"
    TOKEN_REVOKED = "token_revoked"
    SETTING_CHANGED = "setting_changed"
    BOT_ADDED = "bot_added"
    BOT_REMOVED = "bot_removed"
    BASELINE_RECORDED = "baseline_recorded"  # what a database held when it was anchored


def local_actor() -> str:
    """A process holding the database itself (`perpguard init`, a script): `local:<user>`."""
    try:
        return f"local:{getpass.getuser()}"
    except (OSError, KeyError, ImportError):  # no user name to be had (a bare container)
        return "local"


def _change(kind: ChangeKind, actor: str, subject: str, at: float, body: dict) -> dict:
    return {"at": float(at), "kind": kind.value, "actor": actor, "subject": subject, "body": canonical(body)}


def policy_saved(body: dict, actor: str, at: float) -> dict:
    return _change(ChangeKind.POLICY_SAVED, actor, body["id"], at, {"policy": body})


def policy_deleted(policy_id: str, body: object, actor: str, at: float) -> dict:
    """`body` the policy as it was (for the reader of the log)."""
    return _change(ChangeKind.POLICY_DELETED, actor, policy_id, at, {"policy": body})


def token_state(row: TokenRow, key: DatabaseKey) -> dict:
    """A token as the chain records it: what it may do, and a keyed fingerprint of its hash."""
    return {"name": row.name, "scopes": sorted(row.scopes.split(",")), "created_at": row.created_at,
            "expires_at": row.expires_at, "revoked_at": row.revoked_at, "fingerprint": key.mac("token", row.token_hash)}


def token_created(row: TokenRow, key: DatabaseKey, actor: str) -> dict:
    return _change(ChangeKind.TOKEN_CREATED, actor, row.id, row.created_at, {"token": token_state(row, key)})


def token_revoked(row: TokenRow, actor: str) -> dict:
    return _change(ChangeKind.TOKEN_REVOKED, actor, row.id, row.revoked_at, {"revoked_at": row.revoked_at})


def bot_state(row: BotRow) -> dict:
    """A bot as the chain records it (an address is no secret: it is what signatures recover to)."""
    return {"address": row.address, "scopes": sorted(row.scopes.split(",")), "created_at": row.created_at}


def bot_added(row: BotRow, actor: str) -> dict:
    return _change(ChangeKind.BOT_ADDED, actor, row.name, row.created_at, {"bot": bot_state(row)})


def bot_removed(row: BotRow, actor: str, at: float) -> dict:
    """`row` the bot as it was (for the reader of the log)."""
    return _change(ChangeKind.BOT_REMOVED, actor, row.name, at, {"bot": bot_state(row)})


def setting_fingerprint(key: DatabaseKey, name: str, value: str) -> str:
    return key.mac("setting", {"key": name, "value": value})


def setting_changed(key: DatabaseKey, name: str, value: str, actor: str, at: float) -> dict:
    return _change(ChangeKind.SETTING_CHANGED, actor, name, at, {"fingerprint": setting_fingerprint(key, name, value)})


def baseline(session: Session, key: DatabaseKey, at: float) -> dict | None:
    """What a database holds when it is anchored, taken as found (None when it holds nothing):
    the changes that made it were never recorded."""
    policies = [parse(row.body) for row in session.exec(select(PolicyRow).order_by(PolicyRow.seq))]
    tokens = {row.id: token_state(row, key) for row in session.exec(select(TokenRow).order_by(TokenRow.created_at))}
    settings = {row.key: setting_fingerprint(key, row.key, row.value) for row in session.exec(select(SettingRow))}
    bots = {row.name: bot_state(row) for row in session.exec(select(BotRow))}
    if not (policies or tokens or settings or bots):
        return None
    return _change(ChangeKind.BASELINE_RECORDED, SYSTEM, "", at,
                   {"policies": policies, "tokens": tokens, "settings": settings, **({"bots": bots} if bots else {})})


def message(kind: str, actor: str, subject: str) -> str:
    """One line for the audit listing."""
    what = {ChangeKind.POLICY_SAVED: f"policy {subject} saved", ChangeKind.POLICY_DELETED: f"policy {subject} deleted",
            ChangeKind.TOKEN_CREATED: f"token {subject} created", ChangeKind.TOKEN_REVOKED: f"token {subject} revoked",
            ChangeKind.SETTING_CHANGED: f"setting {subject} changed",
            ChangeKind.BOT_ADDED: f"bot {subject} added", ChangeKind.BOT_REMOVED: f"bot {subject} removed",
            ChangeKind.BASELINE_RECORDED: "policies, tokens and settings recorded as found when the audit was anchored"}
    return f"{what.get(kind, kind)} by {actor}"


# -- replaying the chain, and comparing with the tables ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recorded:
    """What the chain says a thing is, and the change (`changes#7`) and actor that said so."""

    value: object
    ref: str
    actor: str


class RecordedState:
    """The policies, tokens, bots and settings the changes chain adds up to, fed one verified link at a time."""

    def __init__(self) -> None:
        self.policies: dict[str, Recorded] = {}  # in the policies' order (a saved id keeps its place)
        self.tokens: dict[str, Recorded] = {}
        self.bots: dict[str, Recorded] = {}
        self.settings: dict[str, Recorded] = {}

    def apply(self, content: dict) -> None:
        ref, actor, subject = f"changes#{content['id']}", content["actor"], content["subject"]
        body = parse(content["body"])
        kind = content["kind"]
        if kind == ChangeKind.POLICY_SAVED:
            self.policies[subject] = Recorded(body["policy"], ref, actor)
        elif kind == ChangeKind.POLICY_DELETED:
            self.policies.pop(subject, None)
        elif kind == ChangeKind.TOKEN_CREATED:
            self.tokens[subject] = Recorded(body["token"], ref, actor)
        elif kind == ChangeKind.TOKEN_REVOKED and subject in self.tokens:
            self.tokens[subject] = Recorded({**self.tokens[subject].value, "revoked_at": body["revoked_at"]}, ref, actor)
        elif kind == ChangeKind.SETTING_CHANGED:
            self.settings[subject] = Recorded(body["fingerprint"], ref, actor)
        elif kind == ChangeKind.BOT_ADDED:
            self.bots[subject] = Recorded(body["bot"], ref, actor)
        elif kind == ChangeKind.BOT_REMOVED:
            self.bots.pop(subject, None)
        elif kind == ChangeKind.BASELINE_RECORDED:
            self.policies = {p["id"]: Recorded(p, ref, actor) for p in body["policies"]}
            self.tokens = {t: Recorded(v, ref, actor) for t, v in body["tokens"].items()}
            self.settings = {k: Recorded(v, ref, actor) for k, v in body["settings"].items()}
            self.bots = {b: Recorded(v, ref, actor) for b, v in body.get("bots", {}).items()}

    def mismatch(self, session: Session, key: DatabaseKey) -> tuple[str, str] | None:
        """The first table row that the chain's record does not account for, as (`policies#id`,
        what is wrong), or None when the tables are what the chain says."""
        policies = {row.id: parse(row.body) for row in session.exec(select(PolicyRow).order_by(PolicyRow.seq))}
        tokens = {row.id: token_state(row, key) for row in session.exec(select(TokenRow))}
        settings = {row.key: setting_fingerprint(key, row.key, row.value) for row in session.exec(select(SettingRow))}
        bots = {row.name: bot_state(row) for row in session.exec(select(BotRow))}
        for table, noun, actual, recorded in (("policies", "policy", policies, self.policies),
                                              ("tokens", "token", tokens, self.tokens),
                                              ("bots", "bot", bots, self.bots),
                                              ("settings", "setting", settings, self.settings)):
            found = _first_difference(table, noun, actual, recorded)
            if found is not None:
                return found
        if list(policies) != list(self.policies):
            return "policies", "the policies' order does not match the chain's record"
        return None


def _first_difference(table: str, noun: str, actual: dict, recorded: dict[str, Recorded]) -> tuple[str, str] | None:
    for name, value in actual.items():
        record = recorded.get(name)
        if record is None:
            return f"{table}#{name}", f"{noun} {name} does not match the chain's record: no recorded change made it"
        if canonical(value) != canonical(record.value):
            return f"{table}#{name}", (f"{noun} {name} does not match the chain's record: the table differs from "
                                       f"{record.ref} (made by {record.actor})")
    for name, record in recorded.items():
        if name not in actual:
            return f"{table}#{name}", (f"{noun} {name} does not match the chain's record: it was removed from the "
                                       f"table behind the store's back (last recorded by {record.ref}, made by {record.actor})")
    return None
