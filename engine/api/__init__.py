"""The wire contract for bots and consoles, one concept per module: `client` (the one gateway
client, sync and async), `errors` (the one error, `ApiError`, and the error body it renders)
and `state` (the state schema). It imports no FastAPI and nothing above the domain."""
