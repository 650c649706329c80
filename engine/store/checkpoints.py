"""Signed checkpoints of the chain heads, in a file beside the audit key.

A keyed chain cannot be extended or rewritten without the key, but its newest rows can still be
deleted and the head moved back to an older, genuine link. A checkpoint records how far each
chain had reached (`{table: [last id, last hash]}`), with the database's id and location and a
keyed MAC; `audit verify` then requires every checkpointed row to still be there, unchanged.
The store writes one when it anchors a database, after every policy, token or setting change,
every CHECKPOINT_ROWS rows or CHECKPOINT_SECONDS, and when it closes. Rows written after the
newest checkpoint can still be deleted unseen.

The file (`audit.checkpoints`, 0600) holds one JSON object per line, appended with O_APPEND, so
several processes and databases share it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from engine.store.anchor import AuditKey, DatabaseKey
from engine.store.codec import canonical

CHECKPOINT_FILE = "audit.checkpoints"
CHECKPOINT_ROWS = 1000  # rows appended since the last checkpoint that call for a new one
CHECKPOINT_SECONDS = 10.0  # ... or seconds since it

log = logging.getLogger("perpguard.store")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One line of the file: `line` its number (from 1); `signed` whether its MAC matches the key."""

    line: int
    db_id: str
    where: str
    at: float
    heads: dict[str, tuple[int, str]]
    signed: bool


def append(path: Path, key: DatabaseKey, where: str, heads: dict[str, tuple[int, str]]) -> None:
    """Add a checkpoint line (the file is created 0600). Heads must be committed already."""
    content = {"db": key.db_id, "where": where, "at": time.time(),
               "heads": {t: [last_id, last_hash] for t, (last_id, last_hash) in sorted(heads.items())}}
    line = canonical({**content, "mac": key.mac("checkpoint", content)}) + "\n"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())  # one write per line: lines from several processes do not interleave
        os.fsync(fd)
    finally:
        os.close(fd)


def read(path: Path, key: AuditKey | None) -> list[Checkpoint]:
    """Every line of the file (none if there is no file). A line that is not a checkpoint is
    returned unsigned, naming no database."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    found = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            data = json.loads(text)
            content = {k: data[k] for k in ("db", "where", "at", "heads")}
            heads = {t: (int(h[0]), str(h[1])) for t, h in content["heads"].items()}
            signed = key is not None and key.for_database(str(content["db"])).matches("checkpoint", content, data["mac"])
            found.append(Checkpoint(number, str(content["db"]), str(content["where"]), float(content["at"]), heads, signed))
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            found.append(Checkpoint(number, "", "", 0.0, {}, False))
    return found


class Checkpointer:
    """When a store writes its next checkpoint: after `CHECKPOINT_ROWS` rows or
    `CHECKPOINT_SECONDS`, at once for a change, and on close if anything moved."""

    def __init__(self, path: Path, where: str) -> None:
        self.path = path
        self.where = where
        self._rows = 0
        self._last = time.monotonic()

    def due(self, rows: int, now_needed: bool) -> bool:
        self._rows += rows
        return now_needed or self._rows >= CHECKPOINT_ROWS or (
            self._rows > 0 and time.monotonic() - self._last >= CHECKPOINT_SECONDS)

    @property
    def pending(self) -> bool:
        return self._rows > 0

    def write(self, key: DatabaseKey, heads: dict[str, tuple[int, str]]) -> None:
        """Append one; a file that cannot be written is logged, not raised (the rows it would
        cover are committed already, and a caller must not retry them)."""
        try:
            append(self.path, key, self.where, heads)
        except OSError as exc:
            log.warning("could not write the audit checkpoint to %s: %s", self.path, exc.strerror or exc)
            return
        self._rows = 0
        self._last = time.monotonic()
