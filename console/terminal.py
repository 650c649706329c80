"""Leaving cleanly when the terminal goes away (an SSH session dropped, a tmux server killed).

Two signs: SIGHUP (the kernel's hangup to the session), and a terminal that no longer answers
(its ioctl fails with EIO). Either ends the app with the result "hangup", so whoever runs the
console decides what happens next (the one-process mode stops the engine cleanly; an attached
console just leaves). Without this, Textual's input thread would spin on the dead terminal's
end-of-file.

A write to a hung-up terminal fails (EIO) and kills Textual's output thread; every later write
would then wait for ever on its full queue, so the app could never finish. `HangupSafeDriver`
(Textual's own Linux driver, given to the app through its public `driver_class`) goes mute once
the terminal is gone, and the descriptors that were the terminal point at /dev/null, for
whatever else still writes there (logging)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from contextlib import contextmanager
from typing import Iterator
from weakref import WeakKeyDictionary

from textual.app import App
from textual.driver import Driver

CHECK_SECONDS = 2.0
HANGUP = "hangup"
OUTPUT_FDS = (1, 2)  # Textual's driver writes to stderr; print() and logging to either


def terminal_alive(fd: int) -> bool:
    try:
        os.get_terminal_size(fd)
        return True
    except OSError:
        return False


def terminal_outputs() -> tuple[int, ...]:
    """The output descriptors that are a terminal now (read while it still answers)."""
    outputs = []
    for fd in OUTPUT_FDS:
        try:
            if os.isatty(fd):
                outputs.append(fd)
        except OSError:
            pass
    return tuple(outputs)


_DRIVERS: WeakKeyDictionary[App, Driver] = WeakKeyDictionary()


def terminal_driver() -> type[Driver] | None:
    """The driver class for a console on a real terminal (None: Textual's default)."""
    if sys.platform == "win32":
        return None
    from textual.drivers.linux_driver import LinuxDriver

    class HangupSafeDriver(LinuxDriver):
        """LinuxDriver that writes nothing more once `mute()`d (the terminal hung up)."""

        def __init__(self, app: App, **options) -> None:
            super().__init__(app, **options)
            self.muted = False
            _DRIVERS[app] = self

        def mute(self) -> None:
            self.muted = True

        def write(self, data: str) -> None:
            if not self.muted:
                super().write(data)

        def flush(self) -> None:
            if not self.muted:
                super().flush()

        def close(self) -> None:
            if not self.muted:  # stopping the output thread would queue behind writes nobody takes
                super().close()

    return HangupSafeDriver


def leave_after_hangup(app: App, outputs: tuple[int, ...] = OUTPUT_FDS) -> None:
    """End the app without writing to the dead terminal (Textual restores the terminal on the
    way out): its driver goes mute, and the descriptors that were the terminal (`outputs`)
    point at /dev/null from here on."""
    driver = _DRIVERS.get(app)
    if driver is not None:
        driver.mute()
    try:
        sink = os.open(os.devnull, os.O_WRONLY)
        try:
            for fd in outputs:
                os.dup2(sink, fd)
        finally:
            os.close(sink)
    except OSError:  # best effort: the exit below matters more
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
    outputs = terminal_outputs()

    def check() -> None:
        if not terminal_alive(fd):
            leave_after_hangup(app, outputs)

    app.set_interval(CHECK_SECONDS, check)


@contextmanager
def exit_on_hangup(app: App) -> Iterator[None]:
    """While inside, SIGHUP ends `app` cleanly instead of killing the process."""
    loop = asyncio.get_running_loop()
    outputs = terminal_outputs()
    try:
        loop.add_signal_handler(signal.SIGHUP, leave_after_hangup, app, outputs)
        installed = True
    except (NotImplementedError, RuntimeError, ValueError, AttributeError):  # not the main thread / no SIGHUP
        installed = False
    try:
        yield
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGHUP)
