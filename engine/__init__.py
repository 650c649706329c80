"""perpguard engine: everything that is not the terminal UI.

This package must never import `console` or `textual` (tests/test_architecture.py proves it).
"""
