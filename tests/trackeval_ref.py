"""TrackEval (the reference implementation of HOTA, CLEAR MOT and IDF1) on vidpipe's
per-frame track lists: both are written as a MOTChallenge sequence (one pedestrian class,
every ground-truth row counted) and TrackEval's own dataset loader, preprocessing and
metrics score it, exactly as it scores a MOTChallenge submission.

Used by the tests to check :mod:`pipeline.app.evaluate_tracks` and by
``benchmarks/heldout.py`` to check the held-out figures.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import numpy as np

# TrackEval 1.3.0 (pinned in the dev extra) uses none of the NumPy aliases NumPy 2 removed
# (np.float, np.int, np.bool), so it runs unpatched; an older TrackEval would need them.
import trackeval


def _write(path: Path, frames: list, gt: bool) -> None:
    rows = []
    for t, items in enumerate(frames, start=1):
        for track, (x0, y0, x1, y1) in items:
            tail = "1,1,1" if gt else "1,-1,-1,-1"  # gt: considered, pedestrian, visible; results: score, unused x/y/z
            rows.append(f"{t},{int(track)},{x0!r},{y0!r},{x1 - x0!r},{y1 - y0!r},{tail}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + ("\n" if rows else ""))


def trackeval_metrics(gt_frames: list, pred_frames: list) -> dict[str, float]:
    """TrackEval's ``hota``, ``deta``, ``assa``, ``mota``, ``idf1`` and ``id_switches`` of
    aligned per-frame lists of (track id, [x0, y0, x1, y1]) (ids must be positive)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _write(root / "gt" / "clip" / "gt" / "gt.txt", gt_frames, gt=True)
        _write(root / "trackers" / "vidpipe" / "data" / "clip.txt", pred_frames, gt=False)
        quiet = {"PRINT_CONFIG": False}
        evaluator = trackeval.Evaluator({"USE_PARALLEL": False, "PRINT_RESULTS": False, "PRINT_ONLY_COMBINED": False,
                                         "PRINT_CONFIG": False, "TIME_PROGRESS": False, "DISPLAY_LESS_PROGRESS": True,
                                         "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False, "PLOT_CURVES": False,
                                         "OUTPUT_EMPTY_CLASSES": False, "LOG_ON_ERROR": None})
        dataset = trackeval.datasets.MotChallenge2DBox({
            **quiet, "GT_FOLDER": str(root / "gt"), "TRACKERS_FOLDER": str(root / "trackers"),
            "TRACKERS_TO_EVAL": ["vidpipe"], "BENCHMARK": "VIDPIPE", "SPLIT_TO_EVAL": "test",
            "SEQ_INFO": {"clip": len(gt_frames)}, "SKIP_SPLIT_FOL": True})
        metrics = [trackeval.metrics.HOTA(quiet), trackeval.metrics.CLEAR({**quiet, "THRESHOLD": 0.5}),
                   trackeval.metrics.Identity({**quiet, "THRESHOLD": 0.5})]
        with contextlib.redirect_stdout(io.StringIO()):  # it prints its progress
            results, messages = evaluator.evaluate([dataset], metrics)
    res = results["MotChallenge2DBox"]["vidpipe"]
    if "clip" not in res:
        raise RuntimeError(f"TrackEval failed: {messages}")
    res = res["clip"]["pedestrian"]
    return {"hota": float(np.mean(res["HOTA"]["HOTA"])), "deta": float(np.mean(res["HOTA"]["DetA"])),
            "assa": float(np.mean(res["HOTA"]["AssA"])), "mota": float(res["CLEAR"]["MOTA"]),
            "idf1": float(res["Identity"]["IDF1"]), "id_switches": int(res["CLEAR"]["IDSW"])}
