"""The fake venue's brain: several clearinghouse accounts (a master user, its subaccounts and
vaults), a finite L2 book per market, and Hyperliquid's rules, answering `/info` and
`/exchange` bodies and turning what happens into websocket messages. Everything runs on the
server's event loop (single writer).

`FakeVenue` owns the state and routes each `/exchange` action to the part that applies it; the
rules and their sources are written beside their code:
- `admission.py`: the signer (master or unexpired agent), nonces, `vaultAddress`,
  `expiresAfter`, the address request budget;
- `orders.py`: placing, matching and filling orders, TP/SL children;
- `cancels.py`: cancel, cancelByCloid, scheduleCancel (the dead man's switch);
- `margin_actions.py`: updateLeverage, updateIsolatedMargin;
- `clearing.py`: marks, funding, resting fills, triggers, liquidation;
- `info.py`: the `/info` answers (unified accounts' collateral in spot);
- `messages.py`: the websocket messages; `answers.py`: the `/exchange` answer shapes.
"""

from __future__ import annotations

from typing import Any

from engine.domain.clock import Clock
from fake_hyperliquid import wire
from fake_hyperliquid.accounts import Account, Margin
from fake_hyperliquid.admission import Admission, Agent, ReceivedAction, approved_agents, request_cap
from fake_hyperliquid.answers import Refusals, Refused, err, ok
from fake_hyperliquid.book import Book, BookShape
from fake_hyperliquid.cancels import MISSING_ORDER, Cancels
from fake_hyperliquid.clearing import Clearing
from fake_hyperliquid.info import Info
from fake_hyperliquid.margin_actions import MarginActions
from fake_hyperliquid.markets import Markets
from fake_hyperliquid.messages import Messages, Publish
from fake_hyperliquid.orders import Orders

__all__ = ["MISSING_ORDER", "Agent", "FakeVenue", "Publish", "ReceivedAction", "Refused"]


class FakeVenue:
    def __init__(self, account: str, agents: list[Any], clock: Clock, publish: Publish, *,
                 equity: float = 100_000.0, mainnet: bool = False, subaccounts: list[str] = (),
                 vaults: list[str] = (), equities: dict[str, float] | None = None,
                 abstraction: dict[str, str] | None = None, spot_usdc: dict[str, float] | None = None,
                 cum_volume: dict[str, float] | None = None, requests_used: dict[str, int] | None = None,
                 nonces_kept: int = 20, book: BookShape = BookShape(),
                 books: dict[str, BookShape] | None = None) -> None:
        self.clock = clock
        self.account = account.lower()  # the master
        self.agents: dict[str, Agent] = approved_agents(agents, wire.ms(clock.now()))
        low = lambda d: {k.lower(): v for k, v in (d or {}).items()}  # noqa: E731
        equities, modes, spots = low(equities), low(abstraction), low(spot_usdc)
        volumes, used = low(cum_volume), low(requests_used)
        self.accounts: dict[str, Account] = {}
        for address, kind in [(self.account, "user")] + [(a.lower(), "subAccount") for a in subaccounts] \
                + [(a.lower(), "vault") for a in vaults]:
            self.accounts[address] = Account(
                address, kind, None if kind == "user" else self.account, float(equities.get(address, equity)),
                modes.get(address, "default"), float(spots.get(address, 0.0)), float(volumes.get(address, 0.0)),
                int(used.get(address, 0)))
        self.markets = Markets()
        self.by_name = self.markets.by_name
        self.marks: dict[str, float] = dict(self.markets.start_marks)
        self.funding_rates: dict[str, float] = {}
        shapes = books or {}
        self.books = {name: Book(m, shapes.get(name, book)) for name, m in self.by_name.items()}
        for name, b in self.books.items():
            b.regenerate(self.marks.get(name, 0.0))
        self.actions: list[ReceivedAction] = []
        self.refused: list[str] = []  # why each refused /exchange request (or order in it) was refused
        refusals = Refusals(self.refused)
        messages = Messages(publish)
        self._admission = Admission(self.account, self.agents, self.accounts, clock, mainnet=mainnet,
                                    nonces_kept=nonces_kept)
        self._orders = Orders(self.markets, self.marks, self.books, clock, messages, refusals)
        self._cancels = Cancels(self._orders, clock, refusals)
        self._margin_actions = MarginActions(self.markets, self.marks, refusals)
        self._clearing = Clearing(self.accounts, self.markets, self.marks, self.funding_rates, self.books, clock,
                                  self._orders, self._cancels, messages)
        self._info = Info(self.account, self.agents, self.accounts, self.markets, self.marks, self.funding_rates,
                          self.books, clock)
        self._refusals = refusals
        self._handlers = {"order": self._orders.order_action, "cancel": self._cancels.cancel,
                          "cancelByCloid": self._cancels.cancel_by_cloid,
                          "scheduleCancel": self._cancels.schedule_cancel,
                          "updateLeverage": self._margin_actions.update_leverage,
                          "updateIsolatedMargin": self._margin_actions.update_isolated_margin,
                          "noop": lambda a, t: ok("default")}

    # ---- helpers ----------------------------------------------------------------------------

    @property
    def mainnet(self) -> bool:
        return self._admission.mainnet

    @property
    def nonces_kept(self) -> int:
        return self._admission.nonces_kept

    @property
    def master(self) -> Account:
        return self.accounts[self.account]

    @property
    def paper(self) -> Account:
        """The master account (older tests read `venue.paper.ledger.leverage`)."""
        return self.master

    @property
    def orders(self) -> dict[int, wire.Order]:
        return self.master.orders

    @property
    def fills(self) -> list[dict[str, Any]]:
        return self.master.fills

    def account_of(self, address: str | None) -> Account:
        return self.accounts[(address or self.account).lower()]

    def margin(self, account: Account, dex: str | None = None) -> Margin:
        return Margin(account, self.by_name, self.marks, dex)

    def request_cap(self, account: Account) -> int:
        return request_cap(account)

    # ---- /exchange --------------------------------------------------------------------------

    async def exchange(self, payload: dict[str, Any]) -> dict[str, Any]:
        admitted = self._admission.admit(payload)
        if isinstance(admitted, str):
            return self._refusals.refuse(admitted)
        received, target = admitted
        self.actions.append(received)
        action = received.action
        handler = self._handlers.get(action["type"])
        if handler is None:
            return err(f"the fake Hyperliquid does not model {action['type']}")
        result = handler(action, target)
        self._clearing.after_change()
        return result

    # ---- time and marks ---------------------------------------------------------------------

    def set_mark(self, coin: str, px: float) -> None:
        self._clearing.set_mark(coin, px)

    def set_funding_rate(self, coin: str, hourly_rate: float) -> None:
        self._clearing.set_funding_rate(coin, hourly_rate)

    def tick(self) -> None:
        """A block: the book comes back around the mark, timers run, triggers and liquidations."""
        self._clearing.tick()

    def poll(self) -> None:
        """What is due now: the dead-man switches, hourly funding."""
        self._clearing.poll()

    # ---- /info ------------------------------------------------------------------------------

    def info(self, body: dict[str, Any]) -> tuple[int, Any]:
        return self._info.info(body)

    def mids(self, dex: str = "") -> dict[str, str]:
        return self._info.mids(dex)

    def asset_ctx(self, coin: str) -> dict[str, Any]:
        return self._info.asset_ctx(coin)
