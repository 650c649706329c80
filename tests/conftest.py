import gc
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))  # tests/builders.py

FIXTURES = TESTS / "fixtures"


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture
def fake(monkeypatch):
    """A fake Hyperliquid server on 127.0.0.1 with the test agent's key in the environment."""
    from fake_hyperliquid.harness import AGENT, AGENT_ENV, start_fake

    monkeypatch.setenv(AGENT_ENV, AGENT.key.hex())
    server = start_fake()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def private_xdg_dirs(tmp_path_factory, monkeypatch):
    """Each test gets its own XDG config and data folders: the audit key, its checkpoints and any
    default database live there, never in the real ones, and no test sees another's."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    """Between test files, collect and then freeze what is left (gc.freeze: the collector never
    scans those objects again). Without it the suite's heap reaches about 1.3 million objects,
    and each full collection then stops every thread of the process for up to 0.7 s (measured
    with gc.callbacks over a whole run): an engine running inside a test sees that as its store
    missing the 1 s deadline for an order's decision (503 STORE_UNAVAILABLE). Collections then
    only scan what the current file made."""
    if nextitem is None or nextitem.path != item.path:
        gc.collect()
        gc.freeze()
