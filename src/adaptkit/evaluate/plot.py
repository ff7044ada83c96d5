"""The in-context curve: mean return per episode index, ±std band, one line per policy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# Figure + the Agg canvas directly: no pyplot, so no global backend switch and no display needed.
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from adaptkit.fileio import atomic_path


def plot_curves(
    curves: Mapping[str, Sequence[Mapping[str, Any]]], path: str | Path, title: str
) -> Path:
    """`curves`: label -> per-episode rows {"episode", "mean", "std"} (as in summary.json)."""
    fig = curves_figure(curves, title)
    path = Path(path)
    with atomic_path(path, "plot") as tmp:  # the format from the final name: tmp has no suffix
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png")
    return path


def curves_figure(curves: Mapping[str, Sequence[Mapping[str, Any]]], title: str) -> Figure:
    """The figure plot_curves saves."""
    fig = Figure(figsize=(6.4, 4.0), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    episodes: set[int] = set()
    for label, rows in curves.items():
        rows = [r for r in rows if r.get("n", 1)]
        if not rows:
            continue
        x = [int(r["episode"]) + 1 for r in rows]
        episodes.update(x)
        mean = [float(r["mean"]) for r in rows]
        std = [float(r["std"]) for r in rows]
        (line,) = ax.plot(x, mean, marker="o", label=label)
        lo = [m - s for m, s in zip(mean, std, strict=True)]
        hi = [m + s for m, s in zip(mean, std, strict=True)]
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel("episode in context")
    ax.set_ylabel("return (mean ± std over envs)")
    ax.set_title(title)
    ax.xaxis.get_major_locator().set_params(integer=True)
    if 0 < len(episodes) <= 12:  # few episodes: a tick at each (one episode read 0.96–1.04)
        ax.set_xticks(sorted(episodes))
        ax.set_xlim(min(episodes) - 0.5, max(episodes) + 0.5)
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig
