"""Layer 4, live: the single-writer engine loop, its protection controller (de-risk, panic, kill),
execution, the pending queue, periodic work and webhooks."""
