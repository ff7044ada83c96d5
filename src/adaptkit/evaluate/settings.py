"""How policies are rolled out: one settings object, its defaults written once."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from adaptkit import defaults
from adaptkit.defaults import KVDtype, Sim
from adaptkit.errors import AdaptkitError
from adaptkit.machine import check_device
from adaptkit.model.config import SIZE_CAPS, TOKEN_ORDERS
from adaptkit.tasks import DEFAULT_TASK, get_task


@dataclass(frozen=True)
class EvalSettings:
    """Envs, episodes and model options shared by `eval`, `compare` and the fine-tune's check."""

    num_envs: int = defaults.NUM_ENVS
    episodes: int | None = defaults.EPISODES  # per env, chained in one context
    max_steps: int | None = None  # control steps; None: episodes × episode length
    seed: int = 0  # env seed
    episode_length: int | None = None  # None: the env's (1000 steps)
    context_len: int | None = None  # KV-cache window; None: the checkpoint's
    group: str | None = None  # zero-shot: the group to run through (None: the one that fits)
    token_order: str | None = None  # None: recorded in config.json, else inferred (adaptkit.meta)
    data_dir: Path | None = defaults.DATA_DIR  # the robot's data, for zero-shot stats
    threads: int | None = 1  # torch threads on CPU while stepping (1: no fight with MuJoCo's)
    expert: str | Path | None = None  # demonstrator: a policy file instead of the trot
    device: str | None = None  # the model's device; None: cuda when available, else cpu
    kv_dtype: KVDtype = KVDtype.AUTO  # the KV cache's dtype (adaptkit.evaluate.plan)
    base: str | Path | None = None  # the base of adapter models (None: the one each records)
    sim: Sim = defaults.SIM  # the physics behind the env (adaptkit.sim.backend)
    task: str = DEFAULT_TASK  # the task variant (adaptkit.tasks)
    # forget the context at every episode start: the control for in-context learning (the
    # default chains an env's episodes in one context)
    reset_context: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "kv_dtype", KVDtype(self.kv_dtype))
        object.__setattr__(self, "sim", Sim.parse(self.sim))
        object.__setattr__(self, "task", get_task(self.task).name)
        if self.num_envs < 1:
            raise AdaptkitError(f"--num-envs: must be >= 1, got {self.num_envs}")
        if self.episodes is None and self.max_steps is None:
            raise AdaptkitError("give --episodes or --max-steps")
        if self.episodes is not None and self.episodes < 1:
            raise AdaptkitError(f"--episodes: must be >= 1, got {self.episodes}")
        if self.max_steps is not None and self.max_steps < 1:
            raise AdaptkitError(f"--max-steps: must be >= 1, got {self.max_steps}")
        if self.token_order is not None and self.token_order not in TOKEN_ORDERS:
            raise AdaptkitError(
                f"--token-order: expected one of {', '.join(TOKEN_ORDERS)}, "
                f"got {self.token_order!r}"
            )
        cap = SIZE_CAPS["context_len"]
        if self.context_len is not None and not 1 <= self.context_len <= cap:
            raise AdaptkitError(
                f"--context-len: must be in 1..{cap:,} (the cap on any model's context), got "
                f"{self.context_len:,}"
            )
        if self.threads is not None and self.threads < 1:
            raise AdaptkitError(f"--threads: must be >= 1, got {self.threads}")

    @classmethod
    def from_options(cls, **options: Any) -> EvalSettings:
        """From command-line options (None: not given). `--max-steps` alone means every complete
        episode within that many steps (the seed's spelling), not the default episode count."""
        given = {k: v for k, v in options.items() if v is not None}
        if "max_steps" in given and "episodes" not in given:
            given["episodes"] = None
        return cls(**given)

    def as_dict(self) -> dict[str, Any]:
        plain = (Path, KVDtype, Sim)
        return {k: str(v) if isinstance(v, plain) else v for k, v in asdict(self).items()}

    def torch_device(self) -> str:
        """The device models run on: the one given, else cuda when available, else cpu."""
        if self.device is not None:
            return check_device(self.device)
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"


def check_video_sim(settings: EvalSettings) -> None:
    """--video draws MuJoCo states: refuse it, before any work, for another simulator."""
    if settings.sim is not Sim.MUJOCO:
        raise AdaptkitError(
            f"--video: films MuJoCo rollouts only, and this one runs in {settings.sim}; "
            "use --sim mujoco to film"
        )
