"""The durable store (SPEC section 12): policies, pending actions, trading state, the audit hash
chains (anchored outside the database by a key and checkpoints), orders/fills/equity, settings,
idempotency results, bot tokens and bot identities."""

from engine.store.anchor import AuditKeyError
from engine.store.bots import BotError, BotExists, BotInfo
from engine.store.chain import ChainReport
from engine.store.changes import ChangeKind
from engine.store.connect import default_url
from engine.store.store import Store
from engine.store.tokens import SCOPES, TokenInfo

__all__ = ["SCOPES", "AuditKeyError", "BotError", "BotExists", "BotInfo", "ChainReport", "ChangeKind", "Store", "TokenInfo", "default_url"]
