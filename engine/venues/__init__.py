"""Layer 3, venues: the `Connector` protocol and its two exchanges, `paper` (in-process, Hyperliquid's
rules) and `hyperliquid` (the official SDK, websockets, httpx)."""
