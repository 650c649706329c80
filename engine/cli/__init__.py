"""`perpguard` on the command line: the offline tools (check, report, replay) and the engine's
service commands (--engine-only, init, thin clients of the gateway)."""
