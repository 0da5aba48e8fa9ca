"""A progress bar: tqdm when installed (the ``cli`` extra), else a small built-in one.

Both show the running loss and the throughput (examples per second) and write to stderr, so
stdout stays clean for JSON a script may read.
"""
from __future__ import annotations

import sys
import time
from typing import Dict, Optional


class _PlainBar:
    """What tqdm shows, in one line rewritten with a carriage return (or plain lines when piped)."""

    def __init__(self, total: int, description: str, unit: str, stream=None):
        self.total, self.description, self.unit = total, description, unit
        self.count, self.postfix = 0, ""
        self.stream = stream or sys.stderr
        self.start = self.last_draw = time.perf_counter()
        self.interactive = hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(self, n: int = 1) -> None:
        self.count += n
        now = time.perf_counter()
        if now - self.last_draw > (0.1 if self.interactive else 5.0) or self.count >= self.total:
            self.last_draw = now
            self._draw(now)

    def set_postfix(self, values: Dict[str, float]) -> None:
        self.postfix = ", ".join(f"{k}={v:.4g}" for k, v in values.items())

    def _draw(self, now: float) -> None:
        elapsed = max(now - self.start, 1e-9)
        width = 24
        filled = int(width * self.count / max(self.total, 1))
        bar = "#" * filled + "." * (width - filled)
        line = f"{self.description} [{bar}] {self.count}/{self.total} {self.count / elapsed:.0f} {self.unit}/s {self.postfix}"
        end = "\r" if self.interactive and self.count < self.total else "\n"
        print(line, end=end, file=self.stream, flush=True)

    def close(self) -> None:
        if self.interactive and self.count < self.total:
            print(file=self.stream)


class ProgressBar:
    """``with ProgressBar(total, "epoch 1/5") as bar: bar.update(n_examples); bar.set_postfix(loss=...)``."""

    def __init__(self, total: int, description: str = "", unit: str = "ex", enabled: bool = True, stream=None):
        self._bar = None
        if not enabled:
            return
        try:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=description, unit=unit, unit_scale=True, leave=True, file=stream or sys.stderr, dynamic_ncols=True)
        except ImportError:
            self._bar = _PlainBar(total, description, unit, stream)

    def update(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def set_postfix(self, values: Optional[Dict[str, float]] = None, **kwargs) -> None:
        if self._bar is not None:
            values = {**(values or {}), **kwargs}
            if hasattr(self._bar, "set_postfix_str"):
                self._bar.set_postfix_str(", ".join(f"{k}={v:.4g}" for k, v in values.items()), refresh=False)
            else:
                self._bar.set_postfix(values)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
