"""Leaving cleanly when the terminal goes away (an SSH session dropped, a tmux server killed).

Two signs: SIGHUP (the kernel's hangup to the session), and a terminal that no longer answers
(its ioctl fails with EIO). Either ends the app with the result "hangup", so whoever runs the
console decides what happens next (the one-process mode stops the engine cleanly; an attached
console just leaves). Without this, Textual's input thread would spin on the dead terminal's
end-of-file."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from contextlib import contextmanager
from typing import Iterator

from textual.app import App

CHECK_SECONDS = 2.0
HANGUP = "hangup"


def terminal_alive(fd: int) -> bool:
    try:
        os.get_terminal_size(fd)
        return True
    except OSError:
        return False


def leave_after_hangup(app: App) -> None:
    """End the app without writing to the dead terminal. Textual would restore the terminal on
    the way out, and a write to a hung-up tty fails (EIO) and can stall its output queue; so the
    driver's output goes to /dev/null from here on."""
    driver = getattr(app, "_driver", None)
    if driver is not None:
        try:
            sink = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the driver
            writer = getattr(driver, "_writer_thread", None)
            if writer is not None and hasattr(writer, "_file"):
                writer._file = sink
            driver.write = sink.write
            driver.flush = sink.flush
        except Exception:  # best effort: the exit below matters more
            pass
    app.exit(HANGUP)


def watch_terminal(app: App) -> None:
    """Check every CHECK_SECONDS that the controlling terminal still answers (not headless)."""
    if app.is_headless or sys.__stdin__ is None:
        return
    try:
        fd = sys.__stdin__.fileno()
    except (OSError, ValueError):
        return
    if not terminal_alive(fd):
        return  # not a terminal to begin with (e.g. piped): nothing to watch

    def check() -> None:
        if not terminal_alive(fd):
            leave_after_hangup(app)

    app.set_interval(CHECK_SECONDS, check)


@contextmanager
def exit_on_hangup(app: App) -> Iterator[None]:
    """While inside, SIGHUP ends `app` cleanly instead of killing the process."""
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGHUP, leave_after_hangup, app)
        installed = True
    except (NotImplementedError, RuntimeError, ValueError, AttributeError):  # not the main thread / no SIGHUP
        installed = False
    try:
        yield
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGHUP)
