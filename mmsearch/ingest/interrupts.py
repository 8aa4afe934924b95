"""Ctrl-C during `index`: acknowledged at once, stops the run at once, but never halfway through storing a file.

The first press raises KeyboardInterrupt in the main thread wherever it is (the runner then abandons Whisper's
chunk under way, kills the decode workers and commits the finished files); inside a `shielded()` block (a file's
catalog rows and vectors, a commit) it is held until the block ends, so the catalog never holds half a file.
Later presses are only acknowledged: the winding down they would interrupt is what keeps the index consistent.
After a press the process is on its way out (the CLI exits 130), so SIGINT stays ignored when the run returns:
a second Ctrl-C landing between here and the exit would otherwise raise in the middle of it (measured: a press
0.1 s after the first escaped the CLI and the process waited a minute for Whisper's chunk).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Protocol


class _Acknowledges(Protocol):
    def interrupted(self) -> None: ...


class Interrupts:
    def __init__(self, reporter: _Acknowledges) -> None:
        self._reporter = reporter
        self.pressed = False
        self._shields = 0
        self._held = False  # pressed inside a shielded block: raise when it ends

    @contextlib.contextmanager
    def installed(self) -> Iterator[Interrupts]:
        """Our SIGINT handler for the block; signal handlers belong to the main thread, elsewhere a no-op."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN if self.pressed else previous)

    @contextlib.contextmanager
    def shielded(self) -> Iterator[None]:
        """Work that must not be cut in half; a Ctrl-C pressed meanwhile lands when it ends."""
        self._shields += 1
        try:
            yield
        finally:
            self._shields -= 1
        if self._held and not self._shields:
            self._held = False
            raise KeyboardInterrupt

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self._reporter.interrupted()
        if self.pressed:
            return
        self.pressed = True
        if self._shields:
            self._held = True
        else:
            raise KeyboardInterrupt
