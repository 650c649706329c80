"""The durable store (SPEC section 12): policies, pending actions, trading state, the audit hash
chains, orders/fills/equity, settings, idempotency results and bot tokens."""

from engine.store.chain import ChainReport
from engine.store.connect import default_url
from engine.store.store import Store
from engine.store.tokens import SCOPES, TokenInfo

__all__ = ["SCOPES", "ChainReport", "Store", "TokenInfo", "default_url"]
