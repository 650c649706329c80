"""The Textual console (SPEC section 13). It reaches the engine only through EngineLink."""
