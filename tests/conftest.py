import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))  # tests/builders.py

FIXTURES = TESTS / "fixtures"


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES
