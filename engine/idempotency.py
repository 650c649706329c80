"""Idempotent orders (SPEC section 12, "the same client_id twice gives the same decision and at
most one exchange order"), as payment APIs do it:

- A `client_id` belongs to whoever sent it (a bot token, or the master): two bots may use the
  same id without reading each other's answers or claiming each other's orders. The engine and
  the venue see it scoped (`<scope>/<client_id>`); the bot sees its own id back.
- Concurrent requests with one id wait for the first one's answer, and all get it.
- A final answer is kept (in the store, so it survives a restart) with the order it answered;
  the same id with a different order is refused, `409 CONFLICT`, naming the first field that
  differs. An answer worth retrying (missing data, a rate limit, the store unavailable) is not
  kept: the retry is judged afresh.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any, Awaitable, Callable, NamedTuple

from engine.api.errors import ApiError
from engine.domain.model import OrderIntent

# The fields that make an order what it is (the id itself and dry_run are not part of it).
_NOT_THE_ORDER = {"client_id", "dry_run"}
REMEMBERED = 10_000  # final answers also kept in memory (the newest), whatever the store does


class Answer(NamedTuple):
    """What the gateway answers an order with: HTTP status and JSON body."""

    status: int
    body: dict


Submit = Callable[[OrderIntent], Awaitable[tuple[Answer, bool]]]  # (answer, final)


def fingerprint(intent: OrderIntent) -> dict[str, Any]:
    return intent.model_dump(mode="json", exclude=_NOT_THE_ORDER, exclude_none=True)


def first_difference(first: dict[str, Any], now: dict[str, Any]) -> str | None:
    """The first field (in OrderIntent's order) whose value differs between two orders."""
    for name in OrderIntent.model_fields:
        if first.get(name) != now.get(name):
            return name
    return None


class IdempotencyKeys:
    """`store` keeps final answers across restarts (`load_result`/`save_result`), written with
    `write` (the store's writer); None keeps them in memory only."""

    def __init__(self, store: Any | None, write: Callable[..., Any]) -> None:
        self.store, self.write = store, write
        self._memory: OrderedDict[str, dict] = OrderedDict()
        self._inflight: dict[str, tuple[dict, asyncio.Future]] = {}

    async def run(self, scope: str, intent: OrderIntent, submit: Submit, *, venue_id: bool = False) -> Answer:
        """`venue_id`: the client id goes to the venue as it is (a Hyperliquid bot's own cloid,
        which the venue scopes per account, so bots sharing the account share its cloids as
        they would on the venue); the answer is still kept per scope."""
        key = intent.client_id
        if not key or intent.dry_run:
            return (await submit(intent))[0]
        scoped, order = f"{scope}/{key}", fingerprint(intent)
        if scoped in self._inflight:
            first, future = self._inflight[scoped]
            self._refuse_if_different(key, first, order)
            return self._as_sent(await asyncio.shield(future), key)
        kept = self._memory.get(scoped) or (self.store.load_result(scoped) if self.store is not None else None)
        if kept is not None:
            if "intent" in kept:  # answers kept before orders were fingerprinted are trusted as they are
                self._refuse_if_different(key, kept["intent"], order)
            return self._as_sent(Answer(kept["status"], kept["body"]), key)
        future = asyncio.get_running_loop().create_future()
        self._inflight[scoped] = (order, future)
        try:
            answer, final = await submit(intent if venue_id else intent.model_copy(update={"client_id": scoped}))
            if final:
                record = {"status": answer.status, "body": answer.body, "intent": order}
                self._memory[scoped] = record
                if len(self._memory) > REMEMBERED:
                    self._memory.popitem(last=False)
                if self.store is not None:
                    self.write(self.store.save_result, scoped, record)
            future.set_result(answer)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: the waiters (if any) raise it themselves
            raise
        finally:
            del self._inflight[scoped]
        return self._as_sent(answer, key)

    @staticmethod
    def _refuse_if_different(key: str, first: dict, order: dict) -> None:
        field = first_difference(first, order)
        if field is not None:
            raise ApiError(409, "CONFLICT", f"client_id {key!r} was already used for a different order: {field} was "
                           f"{first.get(field)!r}, now {order.get(field)!r}. Use a new client_id for a new order.",
                           field)

    @staticmethod
    def _as_sent(answer: Answer, key: str) -> Answer:
        """The answer with the bot's own client id where the engine's scoped one stands."""
        order = answer.body.get("order")
        if isinstance(order, dict) and order.get("client_id") is not None:
            return Answer(answer.status, {**answer.body, "order": {**order, "client_id": key}})
        return answer
