"""Data for the Ultralytics fixtures: the fixed frames, and tiny training sets in Ultralytics'
own dataset formats, all rendered from vidpipe's synthetic world (:mod:`sources.scene`).

Dev tool beside ``training/ultralytics_fixtures.py``; needs only NumPy and OpenCV.

Label conventions (exact, from the scene's instance masks):

- detect / segment: one polygon per visible object (its largest outer contour), class = shape;
- pose: K = 5 keypoints per object: mask centroid, then the top-, right-, bottom- and left-most
  mask pixels (``flip_idx`` swaps right and left); all visible;
- classify: object crops in 6 classes, ``<shape>-small`` / ``<shape>-large`` (side below or
  above 24 px), so top-5 is a real ranking (with 3 classes it would have 3 entries);
- semantic: a class map per image, 0 = background, 1 + shape class on object pixels.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from sources.scene import CLASS_NAMES, FrameLabels, SyntheticScene

KPT_SHAPE = (5, 3)
KPT_NAMES = ("centre", "top", "right", "bottom", "left")
FLIP_IDX = (0, 1, 4, 3, 2)
CLS_NAMES = tuple(f"{n}-{s}" for n in CLASS_NAMES for s in ("small", "large"))
SEM_NAMES = ("background", *CLASS_NAMES)
TRAIN_SEED_BASE = 5000  # clear of the held-out seeds (< 1000) and the bundled model's (1000+)

# The fixed frames: (name, seed, width, height, steps skipped). A landscape frame with the
# usual 16:9 letterbox, a later one of the same clip, and a portrait frame of odd size.
FRAMES = (
    ("f0-320x180", 11, 320, 180, 0),
    ("f1-320x180", 11, 320, 180, 12),
    ("f2-200x248", 23, 200, 248, 0),
)


def render(seed: int, width: int, height: int, skip: int) -> tuple[np.ndarray, FrameLabels]:
    """One frame of the synthetic world (BGR) and its labels, after ``skip`` frames."""
    scene = SyntheticScene(seed=seed, width=width, height=height, max_objects=8)
    for _ in range(skip):
        scene.step()
    return scene.step()


def write_frames(out: Path) -> list[dict]:
    """The fixed frames as PNG files under ``out``; returns their manifest entries."""
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, seed, width, height, skip in FRAMES:
        image, labels = render(seed, width, height, skip)
        cv2.imwrite(str(out / f"{name}.png"), image)
        entries.append({"name": name, "file": f"frames/{name}.png", "height": height, "width": width,
                        "seed": seed, "frame_index": skip, "objects": len(labels.objects)})
    return entries


def _polygon(mask: np.ndarray) -> np.ndarray | None:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    c = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float64)
    return c if len(c) >= 3 else None


def _keypoints(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    pts = [(xs.mean(), ys.mean())]
    for order in (ys, -xs, -ys, xs):  # top, right, bottom, left: first pixel of each extreme
        i = int(np.argmin(order))
        pts.append((xs[i] + 0.5, ys[i] + 0.5))
    return np.asarray(pts, np.float64)


def _label_lines(labels: FrameLabels, kind: str) -> list[str]:
    h, w = labels.height, labels.width
    lines = []
    for obj in labels.objects:
        full = obj.full_mask(h, w)
        if kind == "pose":
            x0, y0, x1, y1 = obj.xyxy
            box = [(x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h]
            kp = _keypoints(full) / (w, h)
            vals = box + [v for x, y in kp for v in (x, y, 2)]
        else:
            poly = _polygon(full)
            if poly is None:
                continue
            vals = list((poly / (w, h)).ravel())
        lines.append(f"{obj.class_id} " + " ".join(f"{v:.6f}" for v in vals))
    return lines


def write_dataset(root: Path, kind: str, images: int) -> Path:
    """A detect/segment/pose/semantic dataset (train = val) under ``root``; returns its YAML."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(exist_ok=True)
    (root / "labels" if kind != "semantic" else root / "masks").mkdir(exist_ok=True)
    for i in range(images):
        image, labels = render(TRAIN_SEED_BASE + i, 320, 180, i % 7)
        cv2.imwrite(str(root / "images" / f"{i:03d}.png"), image)
        if kind == "semantic":
            cmap = np.zeros((labels.height, labels.width), np.uint8)
            for obj in labels.objects:
                cmap[obj.full_mask(labels.height, labels.width)] = obj.class_id + 1
            cv2.imwrite(str(root / "masks" / f"{i:03d}.png"), cmap)
        else:
            (root / "labels" / f"{i:03d}.txt").write_text("\n".join(_label_lines(labels, kind)) + "\n")
    names = SEM_NAMES if kind == "semantic" else CLASS_NAMES
    lines = [f"path: {root}", "train: images", "val: images", "names:"]
    if kind == "semantic":
        lines.insert(3, "masks_dir: masks")
    lines += [f"  {i}: {n}" for i, n in enumerate(names)]
    if kind == "pose":
        lines += [f"kpt_shape: {list(KPT_SHAPE)}", f"flip_idx: {list(FLIP_IDX)}",
                  "kpt_names:", "  0: [" + ", ".join(KPT_NAMES) + "]"]
    path = root / "data.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_classify_dataset(root: Path, images: int) -> Path:
    """An ImageFolder dataset (``train/`` and ``val/``, one folder per class) of object crops."""
    for split in ("train", "val"):
        for n in CLS_NAMES:
            (root / split / n).mkdir(parents=True, exist_ok=True)
    k = 0
    for i in range(images):
        image, labels = render(TRAIN_SEED_BASE + 500 + i, 320, 180, 0)
        for obj in labels.objects:
            x0, y0, x1, y1 = obj.xyxy
            side = max(x1 - x0, y1 - y0)
            m = side // 4 + 2
            crop = image[max(0, y0 - m): y1 + m, max(0, x0 - m): x1 + m]
            name = CLS_NAMES[2 * obj.class_id + (side >= 24)]
            for split in ("train", "val") if k % 4 == 0 else ("train",):
                cv2.imwrite(str(root / split / name / f"{k:04d}.png"), crop)
            k += 1
    return root
