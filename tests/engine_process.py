"""The real engine as a process of its own (`perpguard --engine-only`, `perpguard init`, ...), for
the tests and benchmarks that run it as a trader does: a free port on 127.0.0.1, the process
started with its output captured, and a wait for its `/healthz` with a deadline."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx

PASSWORD = "tr4der-secret"  # the master password these throwaway engines are given


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def perpguard(*args: str, env: dict, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "engine.cli.main", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"engine exited {proc.returncode}: {proc.stderr.read()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("engine did not come up")
