"""The Hyperliquid-compatible API (SPEC section 9): `/hl/info`, `/hl/exchange`, `/hl/ws`, so a
bot written for Hyperliquid (the official SDK, ccxt and what is built on them) runs behind
perpguard with only its base URL changed. It signs with a bot key registered in perpguard; the
gateway recovers the signer, checks the nonce, gates every order through the engine and
re-signs what passes with perpguard's own agent (the connector does that), answering in
Hyperliquid's shapes."""
