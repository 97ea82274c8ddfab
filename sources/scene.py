"""A deterministic synthetic video world with exact instance labels.

Three classes of shape (circle, rectangle, triangle) in varied colours and sizes move over
a textured, noisy, slowly changing background; they occlude each other and enter and leave
the frame. Optional static occluders (posts, walls: patches of another texture, never
labelled) hide whatever passes behind them. Every frame comes with its exact ground
truth: track id, class, box, the visible mask after occlusion and five keypoints
(sources/keypoints.py). The same seed always gives the same frames and labels.

Example:
    >>> scene = SyntheticScene(seed=7, width=320, height=180)
    >>> image, labels = scene.step()
    >>> image.shape, image.dtype.name, labels.frame_index
    ((180, 320, 3), 'uint8', 0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from sources.keypoints import keypoint_visibility, shape_keypoints

CLASS_NAMES: tuple[str, ...] = ("circle", "rectangle", "triangle")

# Sizes are given for a 1280-wide frame and scaled with the frame width.
_REFERENCE_WIDTH = 1280
_MIN_SIZE, _MAX_SIZE = 16.0, 250.0
# A partly hidden object stays in the labels while this much of it is visible.
_MIN_VISIBLE_PIXELS = 40
_MIN_VISIBLE_FRACTION = 0.15


@dataclass(frozen=True)
class ObjectLabel:
    """Ground truth of one object in one frame; ``mask`` is cropped to ``xyxy``."""

    track_id: int
    class_id: int
    xyxy: tuple[int, int, int, int]  # x0, y0 inclusive; x1, y1 exclusive
    mask: np.ndarray  # bool, shape (y1 - y0, x1 - x0)
    color: tuple[float, float, float] = (0.0, 0.0, 0.0)  # BGR it was painted with (before shading and noise)
    keypoints: np.ndarray | None = None  # (5, 3) x, y, v of sources.keypoints.KEYPOINT_NAMES

    def full_mask(self, height: int, width: int) -> np.ndarray:
        out = np.zeros((height, width), dtype=bool)
        x0, y0, x1, y1 = self.xyxy
        out[y0:y1, x0:x1] = self.mask
        return out


@dataclass(frozen=True)
class FrameLabels:
    frame_index: int
    width: int
    height: int
    objects: list[ObjectLabel] = field(default_factory=list)


@dataclass
class _Shape:
    track_id: int
    class_id: int
    color: tuple[float, float, float]
    size: float  # longest extent in pixels
    x: float
    y: float
    vx: float
    vy: float
    angle: float
    spin: float
    aspect: float  # rectangles: short/long side; triangles: apex offset
    z: float

    def outline(self) -> np.ndarray | None:
        """Polygon of the shape (float, frame pixels); None for circles."""
        if self.class_id == 0:
            return None
        c, s = math.cos(self.angle), math.sin(self.angle)
        half = self.size / 2
        if self.class_id == 1:
            pts = np.array([[-1, -self.aspect], [1, -self.aspect], [1, self.aspect], [-1, self.aspect]])
        else:
            pts = np.array([[-1, 0.8], [1, 0.8], [self.aspect, -0.9]])
        pts = pts * half
        rot = np.array([[c, -s], [s, c]])
        return pts @ rot.T + np.array([self.x, self.y])

    def extent(self) -> float:
        return self.size / 2 + 2


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    small = rng.standard_normal((max(2, height * cells // width), cells)).astype(np.float32)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


class SyntheticScene:
    """Simulates the world one frame at a time: ``step()`` returns (BGR image, labels)."""

    def __init__(
        self,
        seed: int,
        width: int = 1280,
        height: int = 720,
        fps: float = 30.0,
        max_objects: int = 14,
        spawn_rate: float = 0.04,
        script: list[dict] | None = None,
        occluders: Sequence[tuple[int, int, int, int]] = (),
    ) -> None:
        self.seed = int(seed)
        self.width = int(width)
        self.height = int(height)
        self.fps = float(fps)
        self.max_objects = max_objects
        self.spawn_rate = spawn_rate
        self._rng = np.random.default_rng(self.seed)
        self._scale = self.width / _REFERENCE_WIDTH
        self._next_track_id = 1
        self._frame_index = 0
        self._shapes: list[_Shape] = []
        self._make_background()
        self._occluders = [tuple(int(v) for v in box) for box in occluders]
        if self._occluders:  # its own generator: a world without occluders renders as before
            self._occluder_tex = self._texture(np.random.default_rng([self.seed, 1]))
        if script is not None:
            # A scripted scene: exactly these objects, no random arrivals (for tests).
            self.spawn_rate = 0.0
            self._jitter = 0.0
            for spec in script:
                self._shapes.append(self._scripted_shape(spec))
            return
        self._jitter = 0.05
        for _ in range(int(self._rng.integers(max(1, max_objects // 2), max_objects + 1))):
            self._shapes.append(self._new_shape(entering=False))

    def _scripted_shape(self, spec: dict) -> _Shape:
        """``spec``: class_id, size, x, y and optionally vx, vy, color (BGR), z, angle, aspect."""
        shape = _Shape(
            track_id=self._next_track_id, class_id=int(spec["class_id"]),
            color=tuple(float(c) for c in spec.get("color", (40, 200, 230))),  # type: ignore[arg-type]
            size=float(spec["size"]), x=float(spec["x"]), y=float(spec["y"]),
            vx=float(spec.get("vx", 0.0)), vy=float(spec.get("vy", 0.0)), angle=float(spec.get("angle", 0.0)),
            spin=0.0, aspect=float(spec.get("aspect", 0.6 if spec["class_id"] == 1 else 0.0)), z=float(spec.get("z", 0.0)),
        )
        self._next_track_id += 1
        return shape

    # -- world ------------------------------------------------------------------------------
    def _make_background(self) -> None:
        rng, h, w = self._rng, self.height, self.width
        base = rng.uniform(60, 170, size=3).astype(np.float32)
        self._bg_layers = [self._texture(rng) + base for _ in range(2)]
        # A small bank of per-frame sensor noise, picked and shifted at random each frame.
        self._noise_bank = [
            rng.normal(0, 4.0, size=(h, w, 3)).astype(np.float32) for _ in range(4)
        ]
        self._bg_phase = rng.uniform(0, 2 * math.pi)

    def _texture(self, rng: np.random.Generator) -> np.ndarray:
        """Smooth noise at three scales, tinted per scale: the background's texture."""
        h, w = self.height, self.width
        tex = np.zeros((h, w, 3), dtype=np.float32)
        for cells, amp in ((6, 28.0), (24, 14.0), (96, 7.0)):
            tint = rng.uniform(0.6, 1.0, size=3).astype(np.float32)
            tex += _smooth_noise(rng, h, w, cells)[..., None] * amp * tint
        return tex

    def _new_shape(self, entering: bool) -> _Shape:
        rng = self._rng
        class_id = int(rng.integers(0, len(CLASS_NAMES)))
        size = float(math.exp(rng.uniform(math.log(_MIN_SIZE), math.log(_MAX_SIZE)))) * self._scale
        hue = int(rng.integers(0, 180))
        sat = int(rng.integers(120, 256))
        val = int(rng.integers(110, 256))
        bgr = cv2.cvtColor(np.array([[[hue, sat, val]]], np.uint8), cv2.COLOR_HSV2BGR)[0, 0]
        speed = float(rng.uniform(0.5, 7.0)) * self._scale
        heading = float(rng.uniform(0, 2 * math.pi))
        if entering:
            # Start just outside one edge, heading inwards.
            edge = int(rng.integers(0, 4))
            margin = size / 2
            if edge == 0:
                x, y, heading = -margin, rng.uniform(0, self.height), rng.uniform(-1, 1)
            elif edge == 1:
                x, y, heading = self.width + margin, rng.uniform(0, self.height), math.pi + rng.uniform(-1, 1)
            elif edge == 2:
                x, y, heading = rng.uniform(0, self.width), -margin, math.pi / 2 + rng.uniform(-1, 1)
            else:
                x, y, heading = rng.uniform(0, self.width), self.height + margin, -math.pi / 2 + rng.uniform(-1, 1)
        else:
            x, y = rng.uniform(0, self.width), rng.uniform(0, self.height)
        shape = _Shape(
            track_id=self._next_track_id,
            class_id=class_id,
            color=(float(bgr[0]), float(bgr[1]), float(bgr[2])),
            size=size,
            x=float(x),
            y=float(y),
            vx=speed * math.cos(heading),
            vy=speed * math.sin(heading),
            angle=float(rng.uniform(0, 2 * math.pi)),
            spin=float(rng.uniform(-0.03, 0.03)),
            aspect=float(rng.uniform(0.3, 0.9)) if class_id == 1 else float(rng.uniform(-0.7, 0.7)),
            z=float(rng.uniform(0, 1)),
        )
        self._next_track_id += 1
        return shape

    def _advance(self) -> None:
        rng = self._rng
        kept = []
        for s in self._shapes:
            s.vx += float(rng.normal(0, self._jitter)) * self._scale
            s.vy += float(rng.normal(0, self._jitter)) * self._scale
            s.x += s.vx
            s.y += s.vy
            s.angle += s.spin
            e = s.extent()
            if -e < s.x < self.width + e and -e < s.y < self.height + e:
                kept.append(s)
        self._shapes = kept
        if len(self._shapes) < self.max_objects and rng.random() < self.spawn_rate * max(1, self.max_objects - len(self._shapes)) / 3:
            self._shapes.append(self._new_shape(entering=True))

    # -- rendering --------------------------------------------------------------------------
    def _background(self, t: int) -> np.ndarray:
        a = 0.5 + 0.5 * math.sin(self._bg_phase + t * 2 * math.pi / (self.fps * 20))
        bg = self._bg_layers[0] * a + self._bg_layers[1] * (1 - a)
        bg *= 0.9 + 0.1 * math.sin(self._bg_phase + t * 2 * math.pi / (self.fps * 13))
        return bg

    def _draw_mask(self, s: _Shape, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        canvas = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
        shift = 4  # sub-pixel precision for cv2 drawing
        scale = 1 << shift
        if s.class_id == 0:
            centre = (int(round((s.x - x0) * scale)), int(round((s.y - y0) * scale)))
            cv2.circle(canvas, centre, int(round(s.size / 2 * scale)), 1, thickness=-1, lineType=cv2.LINE_8, shift=shift)
        else:
            pts = s.outline() - np.array([x0, y0])
            cv2.fillPoly(canvas, [np.round(pts * scale).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=shift)
        return canvas.astype(bool)

    def step(self) -> tuple[np.ndarray, FrameLabels]:
        """Render the current frame and its labels, then advance the world one frame."""
        t = self._frame_index
        rng = self._rng
        h, w = self.height, self.width
        image = self._background(t)
        owner = np.zeros((h, w), dtype=np.int16)  # index+1 of the visible shape per pixel
        shapes = sorted(self._shapes, key=lambda s: s.z)
        boxes, full_areas = [], []
        for i, s in enumerate(shapes):
            e = s.extent()
            x0, y0 = max(0, int(s.x - e)), max(0, int(s.y - e))
            x1, y1 = min(w, int(s.x + e) + 1), min(h, int(s.y + e) + 1)
            full_area = self._shape_area(s)
            boxes.append((x0, y0, x1, y1))
            full_areas.append(full_area)
            if x1 <= x0 or y1 <= y0:
                continue
            m = self._draw_mask(s, x0, y0, x1, y1)
            # Gentle shading across the object so it is not a flat colour.
            gy = np.linspace(-1, 1, y1 - y0, dtype=np.float32)[:, None, None]
            shade = np.asarray(s.color, dtype=np.float32) * (1 + 0.12 * gy * math.cos(s.angle))
            region = image[y0:y1, x0:x1]
            np.copyto(region, np.broadcast_to(shade, region.shape), where=m[..., None])
            owner[y0:y1, x0:x1][m] = i + 1
        for x0, y0, x1, y1 in self._occluders:  # in front of everything, and never labelled
            image[y0:y1, x0:x1] = self._occluder_tex[y0:y1, x0:x1] + 110.0
            owner[y0:y1, x0:x1] = 0
        noise = self._noise_bank[int(rng.integers(0, len(self._noise_bank)))]
        shift = int(rng.integers(0, w))
        image += np.roll(noise, shift, axis=1)
        frame = np.clip(image, 0, 255).astype(np.uint8)

        objects = []
        for i, s in enumerate(shapes):
            x0, y0, x1, y1 = boxes[i]
            if x1 <= x0 or y1 <= y0:
                continue
            visible = owner[y0:y1, x0:x1] == i + 1
            n = int(visible.sum())
            if n < _MIN_VISIBLE_PIXELS or n < _MIN_VISIBLE_FRACTION * full_areas[i]:
                continue
            ys = np.flatnonzero(visible.any(axis=1))
            xs = np.flatnonzero(visible.any(axis=0))
            bx0, by0 = x0 + int(xs[0]), y0 + int(ys[0])
            bx1, by1 = x0 + int(xs[-1]) + 1, y0 + int(ys[-1]) + 1
            crop = visible[by0 - y0 : by1 - y0, bx0 - x0 : bx1 - x0].copy()
            # cv2 draws with pixel i's centre at i; boxes, COCO and the letterbox put it at i + 0.5.
            kpts = keypoint_visibility(shape_keypoints(s.outline(), s.x, s.y, s.size / 2) + 0.5, owner, i + 1)
            objects.append(ObjectLabel(s.track_id, s.class_id, (bx0, by0, bx1, by1), crop, s.color, kpts))
        objects.sort(key=lambda o: o.track_id)
        labels = FrameLabels(frame_index=t, width=w, height=h, objects=objects)
        self._frame_index += 1
        self._advance()
        return frame, labels

    @staticmethod
    def _shape_area(s: _Shape) -> float:
        if s.class_id == 0:
            return math.pi * (s.size / 2) ** 2
        pts = s.outline()
        assert pts is not None  # only circles have no outline
        x, y = pts[:, 0], pts[:, 1]
        return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))
