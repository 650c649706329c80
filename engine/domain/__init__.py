"""Layer 1, the domain: immutable values (orders, decisions, positions, events), coin names,
Hyperliquid's margin math and order increments, and the injected clock. Imports nothing of engine."""
