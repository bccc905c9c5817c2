"""Progress of a long transfer: bytes, rate and elapsed time on a terminal, nothing in a log.

`Meter` wraps a binary reader (a local pipe, a remote channel) and counts what passes; on a
terminal (stderr is a tty) it redraws one line at most twice a second and ends it when done.
"""
from __future__ import annotations

import sys
import time


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class Meter:
    def __init__(self, reader, label: str, stream=None):
        self.reader, self.label = reader, label
        self.stream = stream if stream is not None else sys.stderr
        self.on_tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.bytes, self.start, self._shown = 0, time.monotonic(), 0.0

    def read(self, n: int = -1) -> bytes:
        data = self.reader.read(n)
        self.bytes += len(data)
        now = time.monotonic()
        if self.on_tty and (now - self._shown >= 0.5 or not data):
            self._shown = now
            self.stream.write("\r" + self.line() + ("\n" if not data else ""))
            self.stream.flush()
        return data

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-6)
        return f"{self.label}: {human(self.bytes)} in {elapsed:.1f}s ({human(self.bytes / elapsed)}/s)"
