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
