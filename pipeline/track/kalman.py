"""A constant-velocity Kalman filter over many boxes at once (ByteTrack's motion model).

State per track: ``(cx, cy, a, h, vcx, vcy, va, vh)``: box centre, aspect ratio w/h,
height, and their velocities per frame. Noise scales with the box height, as in SORT /
ByteTrack. Every operation takes arrays of N tracks: no Python loop over tracks.

Example:
    >>> kf = BatchKalman()
    >>> mean, cov = kf.initiate(np.array([[50.0, 50.0, 1.0, 20.0]]))
    >>> mean, cov = kf.predict(mean, cov)
    >>> mean, cov = kf.update(mean, cov, np.array([[52.0, 50.0, 1.0, 20.0]]))
    >>> bool(mean[0, 0] > 50.0 and mean[0, 4] > 0)
    True
"""

from __future__ import annotations

import numpy as np

STD_POSITION = 1.0 / 20
STD_VELOCITY = 1.0 / 160

_F = np.eye(8)
_F[:4, 4:] = np.eye(4)  # x' = x + v (one frame)
_H = np.eye(4, 8)


def xyxy_to_xyah(xyxy: np.ndarray) -> np.ndarray:
    """(N, 4) corner boxes → (N, 4) centre, aspect ratio, height (the filter's measurement)."""
    w = xyxy[:, 2] - xyxy[:, 0]
    h = np.maximum(xyxy[:, 3] - xyxy[:, 1], 1e-6)
    return np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2, w / h, h], axis=1)


def xyah_to_xyxy(xyah: np.ndarray) -> np.ndarray:
    """The inverse of :func:`xyxy_to_xyah`."""
    h = xyah[:, 3]
    w = xyah[:, 2] * h
    return np.stack([xyah[:, 0] - w / 2, xyah[:, 1] - h / 2, xyah[:, 0] + w / 2, xyah[:, 1] + h / 2], axis=1)


def _diag(std: np.ndarray) -> np.ndarray:
    """(N, k) standard deviations → (N, k, k) diagonal covariances."""
    n, k = std.shape
    out = np.zeros((n, k, k))
    idx = np.arange(k)
    out[:, idx, idx] = std**2
    return out


class BatchKalman:
    """Stateless: the caller keeps the (N, 8) means and (N, 8, 8) covariances, as arrays
    it can index and concatenate with the rest of its track state."""

    def initiate(self, xyah: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """New tracks at boxes ``xyah``: zero velocity, uncertainty scaled by the height."""
        n = len(xyah)
        mean = np.zeros((n, 8))
        mean[:, :4] = xyah
        h = xyah[:, 3]
        std = np.stack([
            2 * STD_POSITION * h, 2 * STD_POSITION * h, np.full(n, 1e-2), 2 * STD_POSITION * h,
            10 * STD_VELOCITY * h, 10 * STD_VELOCITY * h, np.full(n, 1e-5), 10 * STD_VELOCITY * h,
        ], axis=1)
        return mean, _diag(std)

    def predict(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One frame ahead at constant velocity; the uncertainty grows."""
        if len(mean) == 0:
            return mean, cov
        h = mean[:, 3]
        n = len(mean)
        std = np.stack([
            STD_POSITION * h, STD_POSITION * h, np.full(n, 1e-2), STD_POSITION * h,
            STD_VELOCITY * h, STD_VELOCITY * h, np.full(n, 1e-5), STD_VELOCITY * h,
        ], axis=1)
        mean = mean @ _F.T
        cov = _F @ cov @ _F.T + _diag(std)
        return mean, cov

    def update(self, mean: np.ndarray, cov: np.ndarray, xyah: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Correct each track with its measured box ``xyah`` (row i with row i)."""
        if len(mean) == 0:
            return mean, cov
        h = mean[:, 3]
        n = len(mean)
        std = np.stack([STD_POSITION * h, STD_POSITION * h, np.full(n, 1e-1), STD_POSITION * h], axis=1)
        proj_mean = mean[:, :4]
        proj_cov = cov[:, :4, :4] + _diag(std)  # H P Hᵀ + R
        pht = cov[:, :, :4]  # P Hᵀ, (N, 8, 4)
        # K = P Hᵀ S⁻¹, solved as Sᵀ Kᵀ = (P Hᵀ)ᵀ (S is symmetric).
        gain = np.linalg.solve(proj_cov, pht.transpose(0, 2, 1)).transpose(0, 2, 1)
        innovation = xyah - proj_mean
        mean = mean + np.einsum("nij,nj->ni", gain, innovation)
        cov = cov - gain @ proj_cov @ gain.transpose(0, 2, 1)
        return mean, cov
