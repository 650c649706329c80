"""The wire contract for bots and consoles: the one gateway client, the error body and the state
schema. It imports no FastAPI and nothing above the domain."""
