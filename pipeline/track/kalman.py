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
from numba import njit

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
        """One frame ahead at constant velocity; the uncertainty grows (a Numba kernel:
        the tracker's hottest call)."""
        if len(mean) == 0:
            return mean, cov
        return _predict_kernel(np.ascontiguousarray(mean, np.float64), np.ascontiguousarray(cov, np.float64))

    def predict_reference(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`predict` in plain NumPy (the kernel must match it)."""
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
        """Correct each track with its measured box ``xyah`` (row i with row i; a Numba kernel)."""
        if len(mean) == 0:
            return mean, cov
        return _update_kernel(np.ascontiguousarray(mean, np.float64), np.ascontiguousarray(cov, np.float64),
                              np.ascontiguousarray(xyah, np.float64))

    def update_reference(self, mean: np.ndarray, cov: np.ndarray, xyah: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`update` in plain NumPy (the kernel must match it)."""
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


@njit(cache=True, nogil=True)
def _predict_kernel(mean, cov):  # pragma: no cover
    """F = [[I, I], [0, I]]: x += v, P = F P Fᵀ + Q, per track."""
    n = mean.shape[0]
    out_m = np.empty_like(mean)
    out_c = np.empty_like(cov)
    q = np.empty(8)
    a = np.empty((8, 8))
    for i in range(n):
        h = mean[i, 3]
        q[0] = q[1] = q[3] = (STD_POSITION * h) ** 2
        q[4] = q[5] = q[7] = (STD_VELOCITY * h) ** 2
        q[2], q[6] = 1e-2 ** 2, 1e-5 ** 2
        for k in range(4):
            out_m[i, k] = mean[i, k] + mean[i, k + 4]
            out_m[i, k + 4] = mean[i, k + 4]
        for r in range(8):  # a = F P
            for c in range(8):
                a[r, c] = cov[i, r, c] + cov[i, r + 4, c] if r < 4 else cov[i, r, c]
        for r in range(8):  # F P Fᵀ + Q
            for c in range(8):
                v = a[r, c] + a[r, c + 4] if c < 4 else a[r, c]
                out_c[i, r, c] = v + q[r] if r == c else v
    return out_m, out_c


@njit(cache=True, nogil=True)
def _update_kernel(mean, cov, xyah):  # pragma: no cover
    """Per track: S = H P Hᵀ + R, K = P Hᵀ S⁻¹, x += K (z - H x), P -= K S Kᵀ."""
    n = mean.shape[0]
    out_m = mean.copy()
    out_c = cov.copy()
    s = np.empty((4, 4))
    inv = np.empty((4, 4))
    gain = np.empty((8, 4))
    ks = np.empty((8, 4))
    for i in range(n):
        h = mean[i, 3]
        r = (STD_POSITION * h) ** 2
        for a in range(4):
            for b in range(4):
                s[a, b] = cov[i, a, b]
        s[0, 0] += r
        s[1, 1] += r
        s[2, 2] += 1e-1 ** 2
        s[3, 3] += r
        _invert4(s, inv)
        for a in range(8):
            for b in range(4):
                v = 0.0
                for k in range(4):
                    v += cov[i, a, k] * inv[k, b]
                gain[a, b] = v
        for a in range(8):
            v = 0.0
            for k in range(4):
                v += gain[a, k] * (xyah[i, k] - mean[i, k])
            out_m[i, a] = mean[i, a] + v
        for a in range(8):  # ks = K S
            for b in range(4):
                v = 0.0
                for k in range(4):
                    v += gain[a, k] * s[k, b]
                ks[a, b] = v
        for a in range(8):  # P -= (K S) Kᵀ
            for b in range(8):
                v = 0.0
                for k in range(4):
                    v += ks[a, k] * gain[b, k]
                out_c[i, a, b] = cov[i, a, b] - v
    return out_m, out_c


@njit(cache=True, nogil=True)
def _invert4(m, out):  # pragma: no cover
    """Gauss-Jordan inverse of a 4×4 matrix with partial pivoting."""
    a = m.copy()
    for r in range(4):
        for c in range(4):
            out[r, c] = 1.0 if r == c else 0.0
    for col in range(4):
        piv = col
        for r in range(col + 1, 4):
            if abs(a[r, col]) > abs(a[piv, col]):
                piv = r
        if piv != col:
            for c in range(4):
                a[col, c], a[piv, c] = a[piv, c], a[col, c]
                out[col, c], out[piv, c] = out[piv, c], out[col, c]
        d = a[col, col]
        for c in range(4):
            a[col, c] /= d
            out[col, c] /= d
        for r in range(4):
            if r != col:
                f = a[r, col]
                if f != 0.0:
                    for c in range(4):
                        a[r, c] -= f * a[col, c]
                        out[r, c] -= f * out[col, c]


def warm_up() -> None:
    """Compile the filter's kernels now (cached on disk), so no frame pays for it."""
    kf = BatchKalman()
    mean, cov = kf.initiate(np.array([[50.0, 50.0, 1.0, 20.0]]))
    kf.update(*kf.predict(mean, cov), np.array([[51.0, 50.0, 1.0, 20.0]]))
