"""Cuts as an OpenTimelineIO timeline: one clip per moment, in order, with markers saying why it is there.

The timeline has a video track V1 (moments of videos, and stills of STILL_SECONDS) and, when some moment comes
from a sound-only file, an audio track A1; each moment takes its own stretch of the timeline, so a V1 clip has a
gap under it on A1 and an A1 clip a gap above it on V1. A clip's source range is counted in its source's frames
(its probed rate); the media reference carries the file's absolute path as a file:// URL and its probed length.
Each clip has one marker over the moment itself (the handles excluded) named after the query, with the matched
text, kind and score in its metadata under "mmsearch".
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from .cuts import Cut, SourceKind, timeline_rate

if TYPE_CHECKING:
    import opentimelineio as otio

# Marker colours by segment kind, as an editor sees them on the clip: what found the moment at a glance.
MARKER_COLORS = {"frame": "BLUE", "speech": "GREEN", "ocr": "YELLOW", "audio": "PURPLE", "image": "CYAN"}
MARKER_TEXT_CHARS = 200  # EDL locators and FCP markers are short notes: the matched text is cut there


def build_timeline(cuts: Sequence[Cut], name: str) -> otio.schema.Timeline:
    """The timeline of `cuts` (see the module's docstring); `name` is its title (the query)."""
    import opentimelineio as otio

    rate = float(timeline_rate(c.source for c in cuts))
    timeline = otio.schema.Timeline(name=name, global_start_time=otio.opentime.RationalTime(0, rate))
    timeline.metadata["mmsearch"] = {"query": name, "moments": len(cuts)}
    video = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    audio = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    for number, cut in enumerate(cuts, start=1):
        clip = _clip(cut, number, name)
        sound_only = cut.source.kind is SourceKind.AUDIO
        (audio if sound_only else video).append(clip)
        length = round(cut.count * rate / float(cut.rate))  # whole frames of the timeline under/over the clip
        gap = otio.schema.Gap(duration=otio.opentime.RationalTime(length, rate))
        (video if sound_only else audio).append(gap)
    timeline.tracks.append(video)
    if any(c.source.kind is SourceKind.AUDIO for c in cuts):
        timeline.tracks.append(audio)
    return timeline


def clip_name(cut: Cut, number: int) -> str:
    """Unique within a timeline (MLT names its producers after clips): number, file name and moment."""
    return f"{number:03d} {cut.source.path.name} {_clock(cut.moment_start)}"


def _clip(cut: Cut, number: int, query: str) -> otio.schema.Clip:
    import opentimelineio as otio

    rate = float(cut.rate)
    reference = otio.schema.ExternalReference(target_url=cut.source.path.as_uri())
    frames = cut.source.frames
    if frames is not None:
        reference.available_range = otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(frames, rate)
        )
    reference.metadata["mmsearch"] = {"kind": cut.source.kind.value, "rate": str(cut.source.rate)}
    clip = otio.schema.Clip(
        name=clip_name(cut, number),
        media_reference=reference,
        source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(cut.first, rate), otio.opentime.RationalTime(cut.count, rate)
        ),
    )
    clip.metadata["mmsearch"] = _about(cut, query)
    clip.markers.append(_marker(cut, query))
    return clip


def _marker(cut: Cut, query: str) -> otio.schema.Marker:
    import opentimelineio as otio

    rate = float(cut.rate)
    first = max(cut.first, round(cut.moment_start * cut.rate))
    last = min(cut.first + cut.count, max(first + 1, round(cut.moment_end * cut.rate)))
    marked = otio.opentime.TimeRange(
        otio.opentime.RationalTime(first, rate), otio.opentime.RationalTime(last - first, rate)
    )
    color = getattr(otio.schema.MarkerColor, MARKER_COLORS.get(cut.kind, "RED"))
    text = (cut.text or "")[:MARKER_TEXT_CHARS]
    marker = otio.schema.Marker(name=query, marked_range=marked, color=color, comment=text)
    marker.metadata["mmsearch"] = _about(cut, query)
    return marker


def _about(cut: Cut, query: str) -> dict[str, Any]:
    return {
        "query": query,
        "kind": cut.kind,
        "text": cut.text,
        "score": cut.score,
        "start": cut.moment_start,
        "end": cut.moment_end,
    }


def conformed(timeline: otio.schema.Timeline, rate: Fraction, paths: bool = False) -> otio.schema.Timeline:
    """A copy with every clip's ranges counted in the timeline's `rate`; with `paths`, plain paths as targets.

    For the interchange formats: an EDL, an MLT profile and FCP's sequences count every in/out point in one
    rate (the adapters write a clip's frame numbers as they are), and melt opens files by path.
    """
    import opentimelineio as otio

    copy = timeline.deepcopy()
    for clip in copy.find_clips():
        clip.source_range = _rescaled(clip.source_range, float(rate))
        for marker in clip.markers:
            marker.marked_range = _rescaled(marker.marked_range, float(rate))
        ref = clip.media_reference
        if isinstance(ref, otio.schema.ExternalReference):
            if paths:
                ref.target_url = otio.url_utils.filepath_from_url(ref.target_url)
            if ref.available_range is not None:
                ref.available_range = _rescaled(ref.available_range, float(rate), floor_end=True)
    return copy


def _rescaled(span: otio.opentime.TimeRange, rate: float, floor_end: bool = False) -> otio.opentime.TimeRange:
    import math

    import opentimelineio as otio

    first = round(span.start_time.rescaled_to(rate).value)
    end = span.end_time_exclusive().rescaled_to(rate).value
    last = math.floor(end + 1e-6) if floor_end else round(end)
    return otio.opentime.TimeRange(
        otio.opentime.RationalTime(first, rate), otio.opentime.RationalTime(max(1, last - first), rate)
    )


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}.{int((seconds - whole) * 10)}"
