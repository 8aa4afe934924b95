"""Export formats: a registry from format name to the OpenTimelineIO adapter that writes it and the extra that
installs the adapter; CSV is written here (a spreadsheet needs no timeline)."""

from __future__ import annotations

import csv
import importlib.util
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ..errors import BadInput, MissingExtra, UsageError
from ..types import Moment
from .cuts import Cut, SourceKind, plan_cuts, timeline_rate
from .timeline import build_timeline, conformed

DEFAULT_SIZE = (1920, 1080)  # an MLT project of sound and stills only: full HD
CSV_COLUMNS = ("path", "start", "end", "timecode", "kind", "text", "score")


@dataclass(frozen=True)
class ExportFormat:
    name: str
    suffix: str
    media_type: str
    about: str  # which programs open it
    adapter: str | None = None  # the OpenTimelineIO adapter; None: written by this module
    module: str | None = None  # the package that registers the adapter
    extra: str | None = None  # pip install 'mmsearch[EXTRA]' provides it
    conform: bool = True  # every in/out point counted in the timeline's rate (all but OTIO's own format)
    paths: bool = False  # plain paths rather than file:// URLs


FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat("otio", ".otio", "application/json", "OpenTimelineIO: DaVinci Resolve, Nuke Studio, Hiero",
                     "otio_json", "opentimelineio", "otio", conform=False),
        ExportFormat("edl", ".edl", "text/plain", "CMX 3600 EDL: any editor (one video track)",
                     "cmx_3600", "otio_cmx3600_adapter", "edl", paths=True),
        ExportFormat("fcpxml", ".fcpxml", "application/xml", "Final Cut Pro X",
                     "fcpx_xml", "otio_fcpx_xml_adapter", "fcpx"),
        ExportFormat("xml", ".xml", "application/xml", "Final Cut Pro 7 XML: Premiere Pro, DaVinci Resolve",
                     "fcp_xml", "otio_fcp_adapter", "fcp"),
        ExportFormat("mlt", ".mlt", "application/xml", "MLT XML: Shotcut, Kdenlive, melt",
                     "mlt_xml", "otio_mlt_adapter", "mlt", paths=True),
        ExportFormat("csv", ".csv", "text/csv", "a spreadsheet: one row per moment"),
    )
}  # fmt: skip


def export_format(name: str) -> ExportFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise UsageError(f"unknown export format {name!r}", hint=f"one of: {', '.join(FORMATS)}") from None


def check_available(fmt: ExportFormat) -> None:
    """A one-line error naming the extra when the format's adapter is not installed."""
    if fmt.adapter is None:
        return
    missing = [m for m in ("opentimelineio", fmt.module) if m and importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtra(
            f"exporting {fmt.name} needs {', '.join(missing)}: pip install 'mmsearch[{fmt.extra}]'",
            hint=f"the {fmt.extra} extra installs the OpenTimelineIO adapter that writes {fmt.suffix} files",
        )


def render(cuts: Sequence[Cut], fmt: ExportFormat, title: str) -> str:
    """The export as text: a timeline written by the format's adapter, or CSV rows."""
    if fmt.adapter is None:
        return csv_text(cuts)
    check_available(fmt)
    import opentimelineio as otio

    timeline = build_timeline(cuts, title)
    if fmt.conform:
        timeline = conformed(timeline, timeline_rate(c.source for c in cuts), fmt.paths)
    options = mlt_profile(cuts) if fmt.name == "mlt" else {}
    text: str = otio.adapters.write_to_string(timeline, fmt.adapter, **options)
    return text


def mlt_profile(cuts: Sequence[Cut]) -> dict[str, Any]:
    """The MLT profile: the first video's picture size, square pixels, progressive (melt's default is PAL DV)."""
    width, height = next((c.source.size for c in cuts if c.source.kind is SourceKind.VIDEO), DEFAULT_SIZE)
    aspect = Fraction(width, height)
    return {
        "description": "mmsearch export", "width": str(width), "height": str(height), "progressive": "1",
        "sample_aspect_num": "1", "sample_aspect_den": "1",
        "display_aspect_num": str(aspect.numerator), "display_aspect_den": str(aspect.denominator),
    }  # fmt: skip


def csv_text(cuts: Sequence[Cut]) -> str:
    """One row per cut: source path, start and end in seconds (handles included), start as source timecode."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for c in cuts:
        writer.writerow(
            [c.source.path, f"{c.start:.3f}", f"{c.end:.3f}", timecode(c.start, float(c.rate)), c.kind, c.text or "",
             f"{c.score:.4f}"]
        )  # fmt: skip
    return out.getvalue()


def timecode(seconds: float, rate: float) -> str:
    """HH:MM:SS:FF, frames counted at `rate` within each second (non-drop)."""
    whole = math.floor(seconds + 1e-9)
    frame = math.floor((seconds - whole) * rate + 1e-6)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}:{frame:02d}"


def export_moments(moments: Sequence[Moment], fmt: ExportFormat, title: str, handles: float = 0.0) -> str:
    """The moments as a `fmt` file's text (the one call the CLI and the HTTP API make)."""
    check_available(fmt)
    if not moments:
        raise BadInput("no moments to export", hint="a search that finds nothing exports nothing")
    return render(plan_cuts(moments, handles), fmt, title)
