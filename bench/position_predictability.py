"""Can a base tell how good its data were at a context position from the position alone?

For history folders (each a robot's *_trajectories/ of history_*.h5), over every training
window (adaptkit.data.windows): R² of the window position for the episode quality there, and R²
of the previous episode in the same window (what reading the context can tell).

    python bench/position_predictability.py DATA/quadfam_0000_trajectories ... \
        [--context 256] [--stride 256]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from adaptkit.data.history import list_history_files
from adaptkit.data.improvement import position_predictability


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--context", type=int, default=256)
    ap.add_argument("--stride", type=int, default=256, help="the training window stride")
    a = ap.parse_args()
    files = [f for folder in a.folders for f in list_history_files(folder)]
    got = position_predictability(files, a.context, a.stride)
    print(f"{len(files)} histories, {got.windows} windows of {a.context} steps, stride {a.stride}")
    print(f"R² position {got.r2_position:.2f}, R² previous episode {got.r2_previous_episode:.2f}")


if __name__ == "__main__":
    main()
