"""`perpguard replay`: a stress pass over real crash candles through the paper exchange and the engine."""
