"""The recorded real Hyperliquid responses in tests/fixtures/hyperliquid (SDK cassettes, VCR
YAML), by request type. Served verbatim; never edited."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import yaml

CASSETTES = Path(__file__).resolve().parent.parent / "fixtures" / "hyperliquid" / "sdk-cassettes"


def interactions() -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(cassette file name, request body, response JSON) for every recorded interaction."""
    for path in sorted(CASSETTES.glob("*.yaml")):
        for item in yaml.safe_load(path.read_text())["interactions"]:
            yield path.name, json.loads(item["request"]["body"]), json.loads(item["response"]["body"]["string"])


@lru_cache(maxsize=None)
def _by_type() -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for _, request, response in interactions():
        answers.setdefault(request["type"], response)
    return answers


def recorded(request_type: str) -> Any:
    """The first recorded answer to an info request of this type (a fresh copy)."""
    return json.loads(json.dumps(_by_type()[request_type]))


def has_recording(request_type: str) -> bool:
    return request_type in _by_type()
