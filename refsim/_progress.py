"""Progress on stderr for long passes (simulation steps, check's passes): one reporter.

``Progress(label, total, enabled, delay=0.0)``: ``update(done)`` redraws a bar with elapsed time and
an estimate of what is left, at most five times a second, once ``delay`` seconds have passed (so a
short pass prints nothing); ``close()`` ends the line if anything was shown.
"""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, label: str, total: int, enabled: bool, delay: float = 0.0):
        self.label, self.total, self.enabled, self.delay = label, int(total), bool(enabled), float(delay)
        self.t0 = time.perf_counter()
        self.last = 0.0
        self.shown = False

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        el = now - self.t0
        if el < self.delay or (done < self.total and now - self.last < 0.2):
            return
        self.last, self.shown = now, True
        eta = el / done * (self.total - done) if done else 0.0
        width = 30
        fill = int(width * done / self.total) if self.total else width
        sys.stderr.write(f"\r{self.label} [{'#' * fill}{'.' * (width - fill)}] step {done}/{self.total} "
                         f"{el:5.1f}s elapsed, {eta:5.1f}s left")
        if done >= self.total:
            sys.stderr.write("\n")
            self.shown = False
        sys.stderr.flush()

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.shown = False
