"""mmsearch: cross-modal media search. Find the moments in video, audio and images that match text or a picture."""

__version__ = "0.1.0"
