#!/usr/bin/env python3
"""Check that `.[dev]` resolves to wheels on the platforms editors use, before a user meets a missing wheel.

For every (platform, Python) target, pip resolves the project's dependencies plus the `dev` extra with
`--only-binary=:all: --platform P --python-version V --dry-run --report`, into a throwaway target dir.

Two things pip does not do by itself, done here:
- pip evaluates environment markers against the *running* interpreter, not the --platform/--python-version
  target (so `decord; sys_platform == 'linux' ...` would be wrongly kept for macOS on a Linux runner). The
  resolution therefore runs in a child pip whose marker environment is the target's (MARKER_ENVS).
- openai-whisper publishes only a pure-Python sdist (no wheel for any platform, Linux x86_64 included); it
  installs anywhere Python does, so it is replaced by its own requirements (which must have wheels).

Exit 0 when every target resolves; otherwise 1, with pip's reason for each failing target.
Usage: python .ci/check_wheels.py [--target macos-arm64-3.11 ...] [--jobs N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

import tomllib
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PYTHONS = ("3.11", "3.12")
# pip platform tag (the oldest OS the wheels must support) and the marker values of that platform.
PLATFORMS: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    # A Mac on macOS 14 (or newer) takes wheels built for 11..14; scikit-learn (under sentence-transformers)
    # publishes arm64 wheels only from macosx_12_0 on.
    "macos-arm64": (
        ("macosx_14_0_arm64", "macosx_13_0_arm64", "macosx_12_0_arm64", "macosx_11_0_arm64"),
        {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64", "os_name": "posix"},
    ),
    "linux-aarch64": (
        ("manylinux_2_28_aarch64", "manylinux2014_aarch64"),
        {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "aarch64", "os_name": "posix"},
    ),
    "windows-amd64": (
        ("win_amd64",),
        {"sys_platform": "win32", "platform_system": "Windows", "platform_machine": "AMD64", "os_name": "nt"},
    ),
}
# Versions printed per target, to see when a platform silently falls back to an old release.
SHOWN = ("torch", "av", "faiss-cpu", "ctranslate2", "decord")
# Pure-Python sdists with no wheel anywhere: checked through their own requirements instead.
# face-recognition-models is dlib's model files (data, no code to build) published as an sdist only.
PURE_SDISTS = ("openai-whisper", "face-recognition-models")
# The child pip: patch the vendored `packaging` marker environment to the target's, then run pip as usual.
PIP_WITH_MARKERS = (
    "import json, sys\n"
    "from pip._vendor.packaging import markers\n"
    "env = json.loads(sys.argv[1])\n"
    "base = markers.default_environment\n"
    "markers.default_environment = lambda: {**base(), **env}\n"
    "from pip._internal.cli.main import main\n"
    "sys.exit(main(sys.argv[2:]))\n"
)


def project_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    raw = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    out: list[Requirement] = []
    for line in raw:
        req = Requirement(line)
        out.extend(_sdist_requirements(req.name) if req.name in PURE_SDISTS else [req])
    return out


def _sdist_requirements(name: str) -> list[Requirement]:
    try:
        listed = metadata.requires(name) or []
    except metadata.PackageNotFoundError:
        sys.exit(
            f"{name} is not installed here: run this after `pip install -e .[dev]` (it reads {name}'s requirements)"
        )
    reqs = [Requirement(r) for r in listed]
    return [r for r in reqs if r.marker is None or "extra" not in str(r.marker)]


def marker_env(platform: str, python: str) -> dict[str, str]:
    return {**PLATFORMS[platform][1], "python_version": python, "python_full_version": f"{python}.0"}


def check_target(platform: str, python: str) -> tuple[str, bool, str]:
    """(target name, resolved?, summary or pip's error) for one platform and Python version."""
    env = marker_env(platform, python)
    reqs = [r for r in project_requirements() if r.marker is None or r.marker.evaluate(env)]
    lines = sorted({_without_marker(r) for r in reqs})
    name = f"{platform}-{python}"
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-c", PIP_WITH_MARKERS, json.dumps(env), "install", "--dry-run", "--quiet"]
        cmd += ["--ignore-installed", "--report", str(report), "--target", str(Path(tmp) / "target")]
        cmd += ["--only-binary=:all:", "--python-version", python]
        for tag in PLATFORMS[platform][0]:
            cmd += ["--platform", tag]
        proc = subprocess.run([*cmd, *lines], capture_output=True, text=True)
        if proc.returncode != 0:
            reason = [ln for ln in proc.stderr.splitlines() if "ERROR" in ln or "No matching" in ln]
            return name, False, " | ".join(reason[-3:]) or proc.stderr.strip()[-500:]
        installed = json.loads(report.read_text())["install"]
    sdists = [i["metadata"]["name"] for i in installed if not i["download_info"]["url"].endswith(".whl")]
    if sdists:
        return name, False, f"resolved to source distributions: {', '.join(sdists)}"
    versions = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in installed}
    shown = ", ".join(f"{k} {versions[k]}" for k in SHOWN if k in versions)
    return name, True, f"{len(installed)} wheels ({len(lines)} direct requirements); {shown}"


def _without_marker(req: Requirement) -> str:
    return f"{req.name}{'[' + ','.join(sorted(req.extras)) + ']' if req.extras else ''}{req.specifier}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", action="append", help="e.g. macos-arm64-3.11 (default: all)")
    parser.add_argument("--jobs", type=int, default=3, help="targets resolved at once")
    args = parser.parse_args()
    targets = [(p, v) for p in PLATFORMS for v in PYTHONS]
    if args.target:
        targets = [(p, v) for p, v in targets if f"{p}-{v}" in args.target]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(lambda t: check_target(*t), targets))
    for name, ok, detail in results:
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
    return 0 if results and all(ok for _, ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
