"""`mmsearch serve --idle-exit SECONDS`: stop after that long without a request (the background server that
`mmsearch query` starts, cli/daemon.py, uses it so that it never outlives its use by long)."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

log = logging.getLogger(__name__)

# How often the watcher looks at the clock; the server stops at most this much later than asked.
CHECK_EVERY_S = 5.0


class IdleWatch:
    """The time of the last request, and a thread that ends the process (SIGTERM: uvicorn's graceful shutdown,
    which withdraws the server file) once none has come for `limit` seconds."""

    def __init__(self, limit: float, now: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._now = now
        self.last = now()
        self._busy = 0
        self._lock = threading.Lock()

    def idle_for(self) -> float:
        with self._lock:
            return 0.0 if self._busy else self._now() - self.last

    def expired(self) -> bool:
        return self.idle_for() >= self.limit

    async def middleware(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        with self._lock:
            self._busy += 1
        try:
            return await call_next(request)
        finally:
            with self._lock:
                self._busy -= 1
                self.last = self._now()

    def start(self, stop: Callable[[], None] | None = None) -> threading.Thread:
        """Count from now, in a daemon thread that calls `stop` (default: SIGTERM to this process) once idle."""
        with self._lock:
            self.last = self._now()

        def watch() -> None:
            while not self.expired():
                time.sleep(min(CHECK_EVERY_S, self.limit))
            log.warning("no request for %.0f s: stopping", self.limit)
            (stop or _terminate)()

        thread = threading.Thread(target=watch, name="idle-exit", daemon=True)
        thread.start()
        return thread


def _terminate() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def add_idle_exit(app: FastAPI, seconds: float) -> IdleWatch:
    """Count requests on `app`; the caller starts the watch once the server is ready (loading the index and its
    models is not idleness), and the process stops `seconds` after the last request from then on."""
    watch = IdleWatch(seconds)
    app.middleware("http")(watch.middleware)
    return watch
