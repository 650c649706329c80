"""Layer 2, risk: the gate every order passes and what it reads (the Book, the projection after a fill,
the counters, the trading state, the policy catalogue, de-risk sizing). Pure and synchronous."""
