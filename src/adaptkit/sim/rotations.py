"""Quaternion helpers (numpy only), shared by the task and the physics backends."""

from __future__ import annotations

import numpy as np


def _quat_outer_to_matrix() -> np.ndarray:
    """M [16,9] with R.flat = (q ⊗ q).flat @ M for unit quaternions q = (w, x, y, z).

    R (body -> world) is quadratic in q, so one small matmul per step gives every env's R.
    """
    w, x, y, z = range(4)
    terms = {  # R entry -> [(coef, a, b)] meaning coef * q_a * q_b
        0: [(1, w, w), (1, x, x), (-1, y, y), (-1, z, z)],
        1: [(2, x, y), (-2, w, z)],
        2: [(2, x, z), (2, w, y)],
        3: [(2, x, y), (2, w, z)],
        4: [(1, w, w), (-1, x, x), (1, y, y), (-1, z, z)],
        5: [(2, y, z), (-2, w, x)],
        6: [(2, x, z), (-2, w, y)],
        7: [(2, y, z), (2, w, x)],
        8: [(1, w, w), (-1, x, x), (-1, y, y), (1, z, z)],
    }
    m = np.zeros((16, 9))
    for entry, items in terms.items():
        for coef, a, b in items:
            m[a * 4 + b, entry] += coef
    return m


QUAT_TO_MATRIX = _quat_outer_to_matrix()


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices [N,3,3] (body -> world) of unit quaternions [N,4] (w, x, y, z)."""
    outer = (q[:, :, None] * q[:, None, :]).reshape(len(q), 16)
    return (outer @ QUAT_TO_MATRIX).reshape(len(q), 3, 3)


def quat_from_rpy(roll: np.ndarray, pitch: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """Unit quaternions [N,4] (w, x, y, z) of roll/pitch/yaw angles (ZYX order)."""
    cr, sr = np.cos(roll / 2), np.sin(roll / 2)
    cp, sp = np.cos(pitch / 2), np.sin(pitch / 2)
    cy, sy = np.cos(yaw / 2), np.sin(yaw / 2)
    return np.stack(
        [
            cr * cp * cy + sr * sp * sy,
            sr * cp * cy - cr * sp * sy,
            cr * sp * cy + sr * cp * sy,
            cr * cp * sy - sr * sp * cy,
        ],
        axis=1,
    )
