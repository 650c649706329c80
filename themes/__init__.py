"""Textual themes and .tcss files for the console."""
