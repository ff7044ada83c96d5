"""Videos of rollouts: a few envs rendered offscreen into an MP4 while they run, several
policies side by side, and a small GIF.

`Recorder` is the rollout's per-step hook: it renders the first `envs` envs every `stride` control
steps and streams them into an MP4 (PyAV, H.264), so memory stays flat however long the rollout.
A rollout without a recorder renders nothing. `side_by_side` decodes per-policy MP4s in step and
writes them next to each other (a policy whose rollout ended early holds its last frame).
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adaptkit.errors import AdaptkitError
from adaptkit.evaluate.settings import EvalSettings, check_video_sim
from adaptkit.robot import RobotSpec

CONTROL_HZ = 50  # the env's control rate (dt 0.02 s): video time = simulated time


@dataclass(frozen=True)
class VideoSettings:
    """What `--video` records. Every frame is rendered at `fps` of simulated time."""

    envs: int = 1  # record envs 0..envs-1, tiled in a grid
    width: int = 480  # pixels per env panel
    height: int = 320
    fps: int = 25  # frames per simulated second; must divide 50 (the control rate)
    seconds: float | None = None  # stop recording after this much simulated time (None: all)
    gif: bool = False  # also a small GIF (the README's), from the first `gif_seconds`
    gif_seconds: float = 6.0
    gif_stride: int = 3  # every 3rd video frame: 8.3 frames per second, still real time
    # every panel shrinks by the same factor, however many sit side by side: the 15 px captions
    # stay 11 px (a fixed GIF width made four 480-px panels 540×120, captions unreadable)
    gif_scale: float = 0.75
    gif_colors: int = 32

    def __post_init__(self) -> None:
        if self.envs < 1:
            raise AdaptkitError(f"--video-envs: must be >= 1, got {self.envs}")
        if self.fps < 1 or CONTROL_HZ % self.fps:
            raise AdaptkitError(
                f"--video-fps: must divide the {CONTROL_HZ} Hz control rate, got {self.fps}"
            )
        if self.seconds is not None and not self.seconds > 0:
            raise AdaptkitError(f"--video-seconds: must be > 0, got {self.seconds}")
        for name in ("gif_seconds", "gif_stride", "gif_scale", "gif_colors"):
            if not getattr(self, name) > 0:
                raise AdaptkitError(f"video option '{name}' must be > 0")

    @property
    def stride(self) -> int:
        """Control steps between frames."""
        return CONTROL_HZ // self.fps

    @property
    def max_frames(self) -> int | None:
        return None if self.seconds is None else max(1, round(self.seconds * self.fps))


def check_available() -> None:
    """`--video` needs PyAV (the encoder); fail in one line before any rollout runs."""
    if importlib.util.find_spec("av") is None:
        raise AdaptkitError(
            "--video: the av package (the video encoder) is not installed; "
            "pip install 'adaptkit[video]'"
        )


def file_label(label: str) -> str:
    """A label as a file name: `run/0005_epoch` -> `run_0005_epoch`."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "policy"


# -- drawing -----------------------------------------------------------------------------------
def _font(size: int) -> Any:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def caption(frame: np.ndarray, lines: Sequence[str], size: int = 15) -> np.ndarray:
    """Text in the top-left corner, white on a dark band (readable on floor and sky alike)."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(frame)
    draw = ImageDraw.Draw(img)
    font = _font(size)
    y = 4
    for line in lines:
        left, top, right, bottom = draw.textbbox((6, y), line, font=font)
        draw.rectangle((left - 3, top - 2, right + 3, bottom + 2), fill=(20, 24, 30))
        draw.text((6, y), line, fill=(255, 255, 255), font=font)
        y = bottom + 5
    return np.asarray(img)


def grid(panels: Sequence[np.ndarray]) -> np.ndarray:
    """Equal-size panels in a near-square grid (row-major); empty cells are black."""
    n = len(panels)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    h, w, c = panels[0].shape
    out = np.zeros((rows * h, cols * w, c), np.uint8)
    for k, p in enumerate(panels):
        r, q = divmod(k, cols)
        out[r * h : (r + 1) * h, q * w : (q + 1) * w] = p
    return out


def _even(frame: np.ndarray) -> np.ndarray:
    """H.264 in yuv420p needs even sides: drop a last odd row/column."""
    h, w = frame.shape[:2]
    return frame[: h - h % 2, : w - w % 2]


# -- encoding ----------------------------------------------------------------------------------
class Mp4Writer:
    """Frames in, an H.264 MP4 out; written to a temporary name and renamed when closed, so a
    killed run never leaves a truncated video under the final name."""

    def __init__(self, path: Path, fps: int, crf: int = 23) -> None:
        import av

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self._container = av.open(str(self._tmp), mode="w", format="mp4")
        self._stream = self._container.add_stream("libx264", rate=fps)
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"crf": str(crf), "preset": "veryfast"}
        self._av = av
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        frame = _even(frame)
        if self.frames == 0:
            self._stream.height, self._stream.width = frame.shape[:2]
        vf = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in self._stream.encode(vf):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> Path:
        for packet in self._stream.encode():  # flush the encoder's delayed frames
            self._container.mux(packet)
        self._container.close()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        with contextlib.suppress(Exception):  # it may be unusable: the temp file goes anyway
            self._container.close()
        self._tmp.unlink(missing_ok=True)


def read_frames(path: Path) -> Iterator[np.ndarray]:
    """Decoded RGB frames of a video file, in order."""
    import av

    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def write_gif(frames: Sequence[np.ndarray], path: Path, fps: float, colors: int = 32) -> Path:
    """A looping GIF with one palette for every frame (small and flicker-free)."""
    from PIL import Image

    if not frames:
        raise AdaptkitError(f"{path}: no frames to write")
    images = [Image.fromarray(f) for f in frames]
    # the palette of a strip of sample frames fits the whole clip
    step = max(1, len(images) // 8)
    sample = np.concatenate([frames[i] for i in range(0, len(frames), step)], axis=0)
    palette = Image.fromarray(sample).quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
    quant = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    quant[0].save(
        tmp,
        format="GIF",
        save_all=True,
        append_images=quant[1:],
        duration=round(1000 / fps),  # GIF stores centiseconds: 120 ms at 8.3 fps
        loop=0,
        optimize=False,
    )
    os.replace(tmp, path)
    return path


def gif_frames(frames: Iterator[np.ndarray], settings: VideoSettings) -> list[np.ndarray]:
    """The GIF's frames from a video's: every gif_stride-th of its first gif_seconds, scaled by
    gif_scale. They play at `settings.fps / settings.gif_stride` frames per second."""
    from PIL import Image

    keep_every = settings.gif_stride
    limit = round(settings.gif_seconds * settings.fps)
    out = []
    for k, frame in enumerate(frames):
        if k >= limit:
            break
        if k % keep_every:
            continue
        h, w = frame.shape[:2]
        if settings.gif_scale != 1:
            size = (max(2, round(w * settings.gif_scale)), max(2, round(h * settings.gif_scale)))
            frame = np.asarray(Image.fromarray(frame).resize(size, Image.Resampling.LANCZOS))
        out.append(frame)
    return out


# -- recording a rollout -----------------------------------------------------------------------
class Recorder:
    """The rollout's per-step hook: renders envs 0..k-1 of the env every `stride` steps, with
    the label, episode number and return so far, and streams them into `path`."""

    def __init__(
        self, renderer: Any, settings: VideoSettings, path: Path, label: str, num_envs: int
    ) -> None:
        self.renderer = renderer
        self.settings = settings
        self.label = label
        self.envs = min(settings.envs, num_envs)
        self.writer = Mp4Writer(path, settings.fps)
        self.episode = np.zeros(self.envs, np.int64)
        self.seconds_rendering = 0.0
        self._done = False

    def __call__(self, env: Any, step: int) -> None:
        """Called after the reset (step 0) and after every env step."""
        if step > 0:  # an env whose step counter went back to 0 started a new episode
            self.episode += np.asarray(env.step_num[: self.envs]) == 0
        if self._done or step % self.settings.stride:
            return
        t = time.perf_counter()
        panels = []
        returns = getattr(env, "episode_return", None)
        for i in range(self.envs):
            picture = self.renderer.render_env(env, i)
            text = f"env {i} · " if self.envs > 1 else ""
            text += f"episode {self.episode[i] + 1}"
            if returns is not None:
                text += f" · return {float(returns[i]):.2f}"
            lines = [self.label, text] if i == 0 else [text]
            panels.append(caption(picture, lines))
        self.writer.write(grid(panels))
        self.seconds_rendering += time.perf_counter() - t
        limit = self.settings.max_frames
        self._done = limit is not None and self.writer.frames >= limit

    def close(self) -> Path:
        return self.writer.close()

    def abort(self) -> None:
        self.writer.abort()


def side_by_side(videos: Sequence[Path], path: Path, fps: int) -> Path:
    """Videos next to each other, frame by frame; a shorter one holds its last frame. All must
    have the same height (they do: same settings)."""
    streams = [read_frames(v) for v in videos]
    last: list[np.ndarray | None] = [None] * len(streams)
    alive = [True] * len(streams)
    writer = Mp4Writer(path, fps)
    try:
        while True:
            for k, s in enumerate(streams):
                if alive[k]:
                    frame = next(s, None)
                    if frame is None:
                        alive[k] = False
                    else:
                        last[k] = frame
            if not any(alive):
                break
            frames = [f for f in last if f is not None]
            writer.write(np.concatenate(frames, axis=1))
    except BaseException:
        writer.abort()
        raise
    return writer.close()


def gif_from_video(mp4: Path, path: Path, settings: VideoSettings) -> Path:
    """The small looping GIF of an MP4 (real-time playback)."""
    frames = gif_frames(read_frames(mp4), settings)
    return write_gif(frames, path, settings.fps / settings.gif_stride, settings.gif_colors)


def open_renderer(robot: RobotSpec, settings: VideoSettings) -> Any:
    """The robot's offscreen renderer; fails in one line (what to install) before any rollout."""
    check_available()
    from adaptkit.sim.render import SceneRenderer  # MuJoCo's GL context: only when recording

    return SceneRenderer(robot, settings.width, settings.height)


def open_rollout_renderer(
    robot: RobotSpec, video: VideoSettings, settings: EvalSettings, out_dir: Path | str | None
) -> Any:
    """`--video`'s renderer for an eval/compare rollout, every refusal before any work: a
    simulator other than MuJoCo, no output folder, a missing GL library or encoder."""
    check_video_sim(settings)
    if out_dir is None:
        raise AdaptkitError("--video: needs an output folder (--out)")
    return open_renderer(robot, video)
