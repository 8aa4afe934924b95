"""Test-media generation for tests and benchmarks (ffmpeg lavfi + espeak-ng); product code never imports it."""
