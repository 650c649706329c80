"""The demo: the engine and gateway on a simulated market, and a scripted bot over the real gateway."""
