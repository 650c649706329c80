"""How long a full garbage collection stops a running engine's loop.

In a fresh interpreter (a subprocess), as `perpguard --engine-only` on paper would be: the node
is built and started (store, engine, gateway on a loopback port, paper feed), runs for a second,
and then `gc.collect()` is timed, the median of five. The node freezes what its start built
(`gc.freeze` in `Service.start`), so this is the pause of what the engine made since.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

_CHILD = r"""
import asyncio, gc, json, statistics, tempfile, time
from pathlib import Path
from engine.config import load_config
from engine.node import build

async def main():
    tmp = Path(tempfile.mkdtemp())
    (tmp / "perpguard.toml").write_text("")
    config = load_config(str(tmp / "perpguard.toml"),
                         **{"engine.db": f"sqlite:///{tmp / 'pg.db'}", "engine.listen": "127.0.0.1:0"})
    service = build(config)
    await service.start()
    await asyncio.sleep(1.0)
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        gc.collect()
        samples.append((time.perf_counter() - start) * 1000)
    await service.stop()
    print(json.dumps({"pause_ms": statistics.median(samples), "frozen": gc.get_freeze_count()}))

asyncio.run(main())
"""


def measure() -> dict:
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "XDG_CONFIG_HOME": f"{home}/config", "XDG_DATA_HOME": f"{home}/data"}
        done = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=True,
                              timeout=120)
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(measure())
