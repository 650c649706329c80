"""`/hl/exchange`: a registered bot's signed actions, checked as the venue checks them, gated,
and sent by perpguard's own agent.

In order, as the venue does: the body must be readable (else 422 and the venue's text); actions
that move funds or keys (user-signed: withdrawals, transfers, agent approvals, ...) are refused
whoever signed them; the signer is recovered from the EIP-712 signature (either phantom-agent
source) and must be a registered bot with the `trade` scope (else the venue's "User or API
Wallet ... does not exist."); `vaultAddress`, when given, must be the guarded account; an
expired action is refused; the nonce must be fresh for that bot. Nothing refused reaches the
venue. Then each action goes to `HlActions`.

TWAP orders are refused too (the venue would send their slices without the gate seeing them).
`approveBuilderFee` and `setReferrer` are answered as done without reaching the venue: ccxt sends
both on its own before its first order, and neither changes risk (builder fields are stripped
from orders unless the builder is allowlisted).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from engine.facade import EngineService
from engine.gateway.hl.actions import HlActions
from engine.gateway.hl.nonces import NonceBook
from engine.gateway.hl.signatures import BadSignature, candidates
from engine.gateway.hl.wire import WireError, err, ok, refusal
from engine.venues.hl_api import VenueApi

log = logging.getLogger("perpguard.hl")

# Actions signed by the user's own key (EIP-712 with a chain id), never by an agent: they move
# funds or keys, which a trading bot behind perpguard has no business doing; and the few agent
# actions that change the account itself rather than trade on it.
USER_SIGNED = frozenset({"withdraw3", "usdSend", "spotSend", "usdClassTransfer", "sendAsset", "approveAgent",
                         "convertToMultiSigUser", "createSubAccount", "subAccountTransfer", "subAccountSpotTransfer",
                         "vaultTransfer", "tokenDelegate", "cDeposit", "cWithdraw", "multiSig", "userDexAbstraction",
                         "userSetAbstraction", "spotDeploy", "perpDeploy", "createVault",
                         # agent-signed, but they change how the account is margined or run, not a trade
                         "agentEnableDexAbstraction", "agentSetAbstraction", "useBigBlocks", "evmUserModify",
                         "CSignerAction", "CValidatorAction",
                         # spend the account's funds: USDC for request weight, gas for gossip priority
                         "reserveRequestWeight", "gossipPriorityBid"})
# Orders the venue would work on its own, slice by slice, where the gate never sees them
NOT_GATED = frozenset({"twapOrder", "twapCancel"})
ANSWERED_AS_DONE = frozenset({"approveBuilderFee", "setReferrer"})
DESERIALIZE = "Failed to deserialize the JSON body into the target type: "



class HlExchange:
    """`builders`: builder addresses (lower case) whose fee fields an order may keep."""

    def __init__(self, service: EngineService, venue: VenueApi, *, builders: frozenset[str] = frozenset(),
                 now_ms: Callable[[], int] | None = None) -> None:
        self.service = service
        self.now_ms = now_ms or (lambda: int(time.time() * 1000))
        self.nonces = NonceBook(self.now_ms())
        self.actions = HlActions(service, venue, builders)
        self.signed_as: dict[str, str] = {}  # bot name -> the phantom-agent source its client signs with
        self._usual_source = "testnet"  # the SDK signs as testnet at any URL but mainnet's

    async def handle(self, payload: Any) -> tuple[int, Any]:
        """(HTTP status, body) for one `/exchange` payload, as Hyperliquid answers it:
        `{"status": "ok", "response": {...}}` or `{"status": "err", "response": "text"}`."""
        problem = _unreadable(payload)
        if problem:
            return 422, DESERIALIZE + problem
        action = payload["action"]
        kind = action["type"]
        if kind in USER_SIGNED:
            return 200, err(refusal("REFUSED", f"{kind} moves funds or keys or changes the account; perpguard "
                                               f"never relays it. Do it from the account's own wallet, not a bot."))
        if kind in NOT_GATED:
            return 200, err(refusal("REFUSED", f"{kind}: a TWAP's slices would reach the venue without passing the "
                                               f"gate; perpguard does not relay TWAPs. Send the orders themselves."))
        if kind in ANSWERED_AS_DONE:
            return 200, ok()
        bot, refused = self._signer(payload)
        if refused:
            return 200, err(refused)
        try:
            return 200, await self.actions.run(action, bot)
        except WireError as bad:
            return 422, DESERIALIZE + str(bad)

    def _signer(self, payload: dict[str, Any]) -> tuple[Any, str | None]:
        """The registered bot that signed `payload`, or the venue's refusal."""
        vault = payload.get("vaultAddress")
        expires = payload.get("expiresAfter")
        try:
            recovered = candidates(payload["action"], payload["nonce"], payload["signature"], vault, expires,
                                   first=self._usual_source)
            tried = []
            for signer in recovered:
                tried.append(signer)
                if (bot := self.service.bot_for(signer.address)) is not None:
                    break
            else:
                return None, f"User or API Wallet {tried[0].address} does not exist."
        except BadSignature as bad:
            return None, f"Invalid signature: {bad}"
        self._usual_source = signer.source  # bots behind one gateway mostly sign alike: try it first next time
        if self.signed_as.get(bot.name) != signer.source:
            self.signed_as[bot.name] = signer.source
            log.info("bot %s signs as %s (phantom agent source %s)", bot.name, signer.source,
                     "a" if signer.source == "mainnet" else "b")
        if "trade" not in bot.scopes:
            return None, refusal("FORBIDDEN", f"bot {bot.name} has no trade scope (it has {', '.join(sorted(bot.scopes))})")
        account = self.service.engine.connector.account_address
        if vault is not None and str(vault).lower() != account:
            return None, refusal("VALIDATION", f"vaultAddress {vault} is not the account perpguard guards ({account})")
        now = self.now_ms()
        if expires is not None and now > expires:
            return None, f"Action already expired: {expires} < {now}"
        stale = self.nonces.check(signer.address, payload["nonce"], now)
        if stale:
            return None, stale
        return bot, None


def _unreadable(payload: Any) -> str | None:
    """Why the venue could not deserialize this `/exchange` body (naming the field), or None."""
    if not isinstance(payload, dict):
        return "the body must be an object {action, nonce, signature}"
    action = payload.get("action")
    if not isinstance(action, dict) or not isinstance(action.get("type"), str):
        return "missing field `action` (an object with a `type`)"
    nonce = payload.get("nonce")
    if isinstance(nonce, bool) or not isinstance(nonce, int) or not 0 <= nonce < 2**64:
        return "missing field `nonce` (an unsigned integer, epoch milliseconds)"
    if action["type"] not in ANSWERED_AS_DONE and action["type"] not in USER_SIGNED:
        signature = payload.get("signature")
        if not isinstance(signature, dict) or not {"r", "s", "v"} <= signature.keys():
            return "missing or invalid field `signature` (an object {r, s, v})"
    vault = payload.get("vaultAddress")
    if vault is not None and not (isinstance(vault, str) and len(vault) == 42 and vault.startswith("0x")):
        return "invalid `vaultAddress` (0x and 40 hex digits, or null)"
    expires = payload.get("expiresAfter")
    if expires is not None and (isinstance(expires, bool) or not isinstance(expires, int) or not 0 <= expires < 2**64):
        return "invalid `expiresAfter` (epoch milliseconds, or null)"
    return None
