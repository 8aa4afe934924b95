"""From moments to an edit: a timeline (OpenTimelineIO) in editing-software formats, and clips cut with ffmpeg."""
