"""The margin buffer and equity over time, for the chart: at most one sample per `step`
seconds of engine time, the last `keep` samples, and a downsample to the chart's width that
keeps each bucket's lowest buffer (the figure that matters) and last equity."""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

QUIET_SECONDS = 30.0  # unchanged figures are sampled only this often (an idle console stays idle)


class Sample(NamedTuple):
    at: float  # engine time, epoch seconds
    buffer: float | None  # fraction
    equity: float | None  # USD


class RiskHistory:
    def __init__(self, step: float = 1.0, keep: int = 3600) -> None:
        self.step = step
        self.samples: deque[Sample] = deque(maxlen=keep)
        self.version = 0  # bumps on every new sample: the chart redraws only then

    def add(self, at: float | None, buffer: float | None, equity: float | None) -> bool:
        if at is None:
            return False
        if self.samples:
            last = self.samples[-1]
            if at - last.at < self.step:
                if buffer is not None and last.buffer is not None and buffer < last.buffer:
                    self.samples[-1] = last._replace(buffer=buffer, equity=equity)  # keep the step's low
                    self.version += 1
                    return True
                return False
            if (buffer, equity) == (last.buffer, last.equity) and at - last.at < QUIET_SECONDS:
                return False
        self.samples.append(Sample(at, buffer, equity))
        self.version += 1
        return True


def downsample(samples: list[Sample], width: int) -> list[Sample]:
    """At most `width` samples: each bucket of neighbours becomes one, with the bucket's
    lowest buffer, its last equity and its last time."""
    if width <= 0:
        return []
    if len(samples) <= width:
        return list(samples)
    out = []
    n = len(samples)
    for i in range(width):
        bucket = samples[i * n // width:(i + 1) * n // width]
        if not bucket:
            continue
        buffers = [s.buffer for s in bucket if s.buffer is not None]
        out.append(Sample(bucket[-1].at, min(buffers) if buffers else None, bucket[-1].equity))
    return out
