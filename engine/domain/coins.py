"""Market names: one canonical coin (`BTC`) for every alias a trader or a seed document uses."""

from __future__ import annotations

from functools import lru_cache

_SUFFIXES = ("-USD", "-PERP", "/USD", "-USDC", "/USDC", "USDT", "-USDT", "/USDT")

# The seed documents' `ALT-USD` key means "every market not named" (SPEC section 11).
DEFAULT_MARKET_KEY = "ALT"


@lru_cache(maxsize=4096)
def canonical_coin(name: str) -> str:
    """`BTC`, `BTC-USD`, `BTC-PERP`, `BTC/USD` (any case) -> `BTC`.

    Hyperliquid's own lower-case prefixes (`kPEPE`) are kept as the exchange spells them, and so
    are builder-deployed (HIP-3) names `dex:COIN` (`xyz:TSLA`): the dex lower-case, the coin as
    listed. Raises ValueError for an empty name.
    """
    text = name.strip()
    if not text:
        raise ValueError("market name is empty")
    upper = text.upper()
    for suffix in _SUFFIXES:
        if upper.endswith(suffix) and len(upper) > len(suffix):
            text = text[: -len(suffix)]
            upper = upper[: -len(suffix)]
            break
    if ":" in text:  # a HIP-3 market: the venue writes `xyz:TSLA`
        dex, _, coin = text.partition(":")
        return f"{dex.lower()}:{coin}"
    if text[:1] == "k" and text[1:].isupper():
        return text
    return upper
