"""Pick MuJoCo's OpenGL backend before `mujoco` is imported (it reads MUJOCO_GL once, at import).

Imported first by `adaptkit.sim`. It changes nothing when MUJOCO_GL is set or a display exists
(then MuJoCo's own default, GLFW, works); on a headless Linux machine it selects EGL, or OSMesa
when only that library is installed, so offscreen rendering needs no X server. Physics never
touches GL: a machine without any GL library still simulates, and only rendering fails, with
the line `missing_gl_hint` returns.
"""

from __future__ import annotations

import ctypes.util
import os
import sys

GL_PACKAGES = {
    "egl": "apt-get install libegl1 libgl1-mesa-dri",
    "osmesa": "apt-get install libosmesa6",
}


def choose_backend() -> str | None:
    """Set MUJOCO_GL for a headless Linux process that did not choose; returns the choice."""
    if "MUJOCO_GL" in os.environ or not sys.platform.startswith("linux"):
        return os.environ.get("MUJOCO_GL")
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    backend = "osmesa" if not ctypes.util.find_library("EGL") and _has_osmesa() else "egl"
    os.environ["MUJOCO_GL"] = backend
    return backend


def _has_osmesa() -> bool:
    return ctypes.util.find_library("OSMesa") is not None


def missing_gl_hint() -> str:
    """What to install (Debian/Ubuntu package names) for the backend in use."""
    backend = os.environ.get("MUJOCO_GL", "").lower()
    if backend in GL_PACKAGES:
        other = "osmesa" if backend == "egl" else "egl"
        return (
            f"install the GL library ({GL_PACKAGES[backend]}), or use MUJOCO_GL={other} "
            f"({GL_PACKAGES[other]})"
        )
    return (
        "on a machine without a display set MUJOCO_GL=egl (Debian/Ubuntu: "
        f"{GL_PACKAGES['egl']}) or MUJOCO_GL=osmesa ({GL_PACKAGES['osmesa']})"
    )


choose_backend()
