"""PyAV helpers shared by the decode stages: decoding one stream until its first fatal error, error reasons."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def decoder_reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:200]


class decode_until_error:  # noqa: N801 - used like a generator function
    """Frames of one stream until the end or the first error that ends the stream (kept in `error`)."""

    def __init__(self, container: Any, stream: Any) -> None:
        self.container, self.stream = container, stream
        self.error: str | None = None

    def __iter__(self) -> Iterator[Any]:
        import av

        try:
            for packet in self.container.demux(self.stream):
                try:
                    yield from packet.decode()
                except av.InvalidDataError:
                    continue  # one corrupt packet costs that packet
        except (av.FFmpegError, OSError) as e:
            self.error = decoder_reason(e)
