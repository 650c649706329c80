"""The Hyperliquid connector (SPEC section 8): `connector.HyperliquidConnector(config.HyperliquidConfig(...))`.

Import from the modules (`engine.venues.hyperliquid.connector`, `.config`, `.snapshot`): the
offline tools read snapshots with `snapshot` and must not pay for loading the SDK."""
