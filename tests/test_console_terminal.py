"""Over SSH the terminal can vanish: the console must then leave cleanly and at once (result
"hangup", so the one-process mode stops its engine properly), never spin on a dead terminal."""

from __future__ import annotations

import os
import select
import signal
import struct
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("termios")
import fcntl  # noqa: E402
import pty  # noqa: E402
import termios  # noqa: E402

TESTS = Path(__file__).parent
CHILD = f"""
import asyncio, os, sys
sys.path.insert(0, {str(TESTS)!r})
import console_fixtures
from console.app import run_console

async def main():
    rig = await console_fixtures.build_rig()
    result = await run_console(rig.link, owns_engine=True)
    with open(os.environ["CONSOLE_RESULT"], "w") as out:
        out.write(str(result))

asyncio.run(main())
"""


@pytest.mark.skipif(sys.platform != "linux", reason="pty hangup semantics are Linux's")
def test_console_leaves_cleanly_when_the_terminal_hangs_up(tmp_path):
    result = tmp_path / "result.txt"
    pid, fd = pty.fork()
    if pid == 0:  # the child: a console on its own terminal, as over SSH
        os.environ.update(TERM="xterm-256color", CONSOLE_RESULT=str(result))
        os.execv(sys.executable, [sys.executable, "-c", CHILD])
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        shown, deadline = b"", time.monotonic() + 30
        while b"Positions" not in shown and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.2)[0]:
                shown += os.read(fd, 65536)
        assert b"Positions" in shown, shown[-500:]
        os.close(fd)  # the SSH session drops: SIGHUP, and a terminal that answers no more
        hung_up = time.monotonic()
        while time.monotonic() - hung_up < 10:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the console kept running after its terminal went away")
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    assert os.waitstatus_to_exitcode(status) == 0
    assert time.monotonic() - hung_up < 3
    assert result.read_text() == "hangup"
