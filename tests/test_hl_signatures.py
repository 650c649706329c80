"""Who signed a bot's action, and whether its nonce is fresh: the checks `/hl/exchange` makes
before anything reaches the venue, proven against the official SDK's own signatures."""

from __future__ import annotations

import eth_account
import pytest
from hyperliquid.utils.signing import order_request_to_order_wire, order_wires_to_order_action, sign_l1_action

from engine.gateway.hl.nonces import DAY_MS, NonceBook
from engine.gateway.hl.signatures import BadSignature, candidates

NOW = 1_764_000_000_000
WALLET = eth_account.Account.from_key("0x" + "11" * 32)


def _action() -> dict:
    wire = order_request_to_order_wire({"coin": "BTC", "is_buy": True, "sz": 0.01, "limit_px": 60000.0,
                                        "order_type": {"limit": {"tif": "Gtc"}}, "reduce_only": False}, 0)
    return order_wires_to_order_action([wire], None)


@pytest.mark.parametrize("mainnet, source", [(False, "testnet"), (True, "mainnet")])
@pytest.mark.parametrize("vault, expires", [(None, None), ("0x" + "ab" * 20, NOW + 60_000)])
def test_the_sdk_signer_is_recovered_from_either_phantom_agent_source(mainnet, source, vault, expires):
    action = _action()
    signature = sign_l1_action(WALLET, action, vault, NOW, expires, mainnet)
    found = {c.source: c.address for c in candidates(action, NOW, signature, vault, expires)}
    assert next(candidates(action, NOW, signature, vault, expires, first=source)).address == WALLET.address.lower()
    assert found[source] == WALLET.address.lower()
    other = "mainnet" if source == "testnet" else "testnet"
    assert found[other] != WALLET.address.lower()  # the other source recovers some stranger


def test_a_changed_action_or_nonce_recovers_someone_else():
    action = _action()
    signature = sign_l1_action(WALLET, action, None, NOW, None, False)
    bigger = {**action, "orders": [{**action["orders"][0], "s": "1"}]}
    assert all(c.address != WALLET.address.lower() for c in candidates(bigger, NOW, signature, None, None))
    assert all(c.address != WALLET.address.lower() for c in candidates(action, NOW + 1, signature, None, None))


@pytest.mark.parametrize("signature", [None, "0xdead", {"r": "0x1", "s": "0x2"}, {"r": "zz", "s": "0x2", "v": 27},
                                       {"r": "0x1", "s": "0x2", "v": 29}, {"r": "0x0", "s": "0x2", "v": 27}])
def test_an_unreadable_signature_is_refused_not_crashed_on(signature):
    with pytest.raises(BadSignature):
        candidates(_action(), NOW, signature, None, None)


def test_nonces_follow_the_venue_rule_with_its_texts():
    book = NonceBook(NOW - 1000, kept=3)
    assert book.check("0xa", NOW, NOW) is None
    assert book.check("0xa", NOW, NOW) == f"Invalid nonce: duplicate nonce {NOW}"
    assert book.check("0xb", NOW, NOW) is None  # per signer
    assert book.check("0xa", NOW + DAY_MS, NOW).startswith("Invalid nonce: nonce too high")
    for n in (NOW + 1, NOW + 2, NOW + 3):
        assert book.check("0xa", n, NOW) is None
    # three kept: NOW+1..NOW+3; a fresh nonce below the smallest kept is too low
    assert book.check("0xa", NOW - 10, NOW) == f"Invalid nonce: nonce too low {NOW - 10} < {NOW + 1}"


def test_nothing_signed_before_a_restart_passes_after_it():
    book = NonceBook(NOW)  # the book a restarted gateway makes
    assert book.check("0xa", NOW - 5, NOW + 10) == f"Invalid nonce: nonce too low {NOW - 5} < {NOW}"
    assert book.check("0xa", NOW + 5, NOW + 10) is None
