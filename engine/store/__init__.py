"""The durable store (SPEC section 12): policies, pending actions, trading state, the audit hash
chains (anchored outside the database by a key and checkpoints), orders/fills/equity, settings,
idempotency results and bot tokens."""

from engine.store.anchor import AuditKeyError
from engine.store.chain import ChainReport
from engine.store.changes import ChangeKind
from engine.store.connect import default_url
from engine.store.store import Store
from engine.store.tokens import SCOPES, TokenInfo

__all__ = ["SCOPES", "AuditKeyError", "ChainReport", "ChangeKind", "Store", "TokenInfo", "default_url"]
