"""What every benchmark shares: the repository root, the cached test clip, a description of
the machine and library versions, and Markdown tables (printed and written alike)."""

from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.peer_common import versions as installed_versions

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CACHE = ROOT / ".data" / "bench"
PACKAGES = ("onnxruntime", "onnxruntime-gpu", "tensorrt", "numba", "av", "numpy", "opencv-python-headless", "pyzmq")


def bench_clip(frames: int, seed: int = 7, size: tuple[int, int] = (1280, 720), fps: float = 30.0) -> Path:
    """A synthetic H.264 clip, written once and cached under .data/bench."""
    from sources.synthetic import write_clip

    path = CACHE / f"clip-{seed}-{frames}-{size[0]}x{size[1]}-{fps:g}.mp4"
    if not path.exists():
        write_clip(path, None, frames, seed, width=size[0], height=size[1], fps=fps)
    return path


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as fh:
            return round(int(fh.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return None


def gpu_names() -> list[str]:
    if not shutil.which("nvidia-smi"):
        return []
    proc = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True)
    return [line.strip() for line in proc.stdout.splitlines() if line.strip()] if proc.returncode == 0 else []


def ffmpeg_version() -> str | None:
    exe = shutil.which("ffmpeg")
    if not exe:
        return None
    proc = subprocess.run([exe, "-hide_banner", "-version"], capture_output=True, text=True)
    first = proc.stdout.splitlines()[0] if proc.stdout else ""
    return first.split()[2] if first.startswith("ffmpeg version") else first or None


def machine() -> dict:
    """Where and with what a benchmark ran: stored with its figures."""
    versions = installed_versions(PACKAGES)
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
        "gpus": gpu_names(),
        "ffmpeg": ffmpeg_version(),
        "versions": versions,
    }


def describe_machine(m: dict) -> str:
    gpu = ", ".join(m.get("gpus") or []) or "no GPU"
    mem = f", {m['memory_gib']} GiB" if m.get("memory_gib") else ""
    return f"{m['cpu']}, {m['cores']} cores{mem}, {gpu}, {m['os']}"


def describe_versions(m: dict) -> str:
    parts = [f"Python {m['python']}"] + [f"{k} {v}" for k, v in m.get("versions", {}).items()]
    if m.get("ffmpeg"):
        parts.append(f"ffmpeg {m['ffmpeg']}")
    return ", ".join(parts)


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no display on benchmark machines)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; floats keep what the caller formatted."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
