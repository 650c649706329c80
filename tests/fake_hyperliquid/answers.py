"""What the fake venue's `/exchange` answers look like: an `ok` body (with per-order or
per-cancel statuses), an `err` body carrying the venue's text, a refusal recorded as it is
answered, and the dollar amounts as the venue's texts write them."""

from __future__ import annotations

from typing import Any


def err(message: str) -> dict[str, Any]:
    return {"status": "err", "response": message}


def ok(kind: str, statuses: list[Any] | None = None) -> dict[str, Any]:
    if statuses is None:
        return {"status": "ok", "response": {"type": kind}}
    return {"status": "ok", "response": {"type": kind, "data": {"statuses": statuses}}}


def usd(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


class Refused(Exception):
    """An order's error status (the venue's words)."""


class Refusals:
    """Why each refused `/exchange` request (or order in it) was refused, in order: the list
    the venue exposes as `refused`."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def refuse(self, message: str) -> dict[str, Any]:
        """Record the refusal and answer it as the venue does (a top-level err)."""
        self.log.append(message)
        return err(message)

    def note(self, message: str) -> None:
        """Record a refusal answered inside an ok body (one order's error status)."""
        self.log.append(message)
