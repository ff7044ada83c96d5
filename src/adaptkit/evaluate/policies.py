"""A Vintix checkpoint as a policy (adaptkit.sim.policy's protocol) for N envs at once."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adaptkit.ckpt.checkpoint import Checkpoint
from adaptkit.ckpt.load import load_checkpoint
from adaptkit.ckpt.token_order import own_task_data, settle_token_order
from adaptkit.errors import AdaptkitError
from adaptkit.evaluate.plan import KVPlan, kv_dtype, plan_kv_cache
from adaptkit.evaluate.resolve import Resolution, resolve
from adaptkit.evaluate.settings import EvalSettings
from adaptkit.progress import SILENT, Reporter
from adaptkit.robot import RobotSpec

STD_EPS = 1e-6  # the reference's (obs - mean) / (std + 1e-6)


class ModelPolicy:
    """A Vintix model acting for N envs at once: one batched `model.step` per control step.

    Per env it keeps the previous action, previous reward (× reward_scale) and the episode-local
    step number. The KV cache holds the context across episodes (that is what in-context RL reads);
    at an env's episode start step_num is 0, so the model uses its padding embeddings there.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        resolution: Resolution,
        context_len: int,
        norm_obs: bool = True,
        norm_acs: bool = False,
        name: str = "model",
        info: dict[str, Any] | None = None,
        threads: int | None = 1,
        cache_dtype: torch.dtype | None = None,
        reset_context: bool = False,
    ) -> None:
        self.name = name
        self.reset_context = reset_context  # forget an env's context when its episode ends
        # torch threads while stepping (CPU). One is the default: the batched step is small and
        # memory-bound, and extra OpenMP threads fight the simulator's threads. Measured on 2 busy
        # cores, 16 envs x context 256: 4 ms/step at 1 thread, 28-124 ms at 2. None: leave as is.
        self.threads = threads
        self._saved_threads: int | None = None
        self.model = model.eval()
        self.res = resolution
        self.robot = resolution.robot  # the robot in the layout the group takes: the env's spec
        self.group = resolution.group
        self.context_len = int(context_len)
        self.info = dict(info or {})
        p = next(model.parameters())
        self.device, self.dtype = p.device, p.dtype
        self.model_bytes = sum(t.numel() * t.element_size() for t in model.parameters())
        # None: bf16 for large models, the model's dtype otherwise (adaptkit.evaluate.plan)
        self.cache_dtype = cache_dtype or kv_dtype("auto", self.model_bytes)
        if self.cache_dtype == torch.float32:
            self.cache_dtype = self.dtype
        self.plan: KVPlan | None = None

        def t(x: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(x, dtype=self.dtype, device=self.device)

        stats = resolution.stats
        if norm_obs:
            self._obs_shift = t(stats.array("obs_mean"))
            self._obs_div = t(stats.array("obs_std") + STD_EPS)
        else:
            self._obs_shift = self._obs_div = None
        self._acs: tuple[torch.Tensor, torch.Tensor] | None = None
        if norm_acs:  # the model reads and writes normalised actions
            if stats.act_dim != resolution.action_dim:
                raise AdaptkitError(
                    f"config.json: norm_acs is true but the action stats have {stats.act_dim} "
                    f"dims, the group {resolution.action_dim}"
                )
            self._acs = (t(stats.array("acs_mean")), t(stats.array("acs_std") + STD_EPS))
        self.cache: Any = None

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: Checkpoint | str | Path,
        spec: RobotSpec,
        settings: EvalSettings = EvalSettings(),
        name: str = "model",
        robots: Sequence[RobotSpec] = (),
        reporter: Reporter = SILENT,
    ) -> ModelPolicy:
        """From a loaded Checkpoint (or a path to one) for robot `spec`; `settings` gives the
        zero-shot group, token order, context window, the data folder and torch threads.

        An unrecorded token order is settled on the checkpoint's own tasks' histories in
        `settings.data_dir` (of `spec` and `robots`, when at hand: adaptkit.ckpt.token_order).
        Raises adaptkit.ckpt.fit.NoFittingGroup when no group fits the robot."""
        device = settings.torch_device()
        if not isinstance(checkpoint, Checkpoint):
            checkpoint = load_checkpoint(
                checkpoint, base=settings.base, device=device, token_order=settings.token_order
            )
        else:
            if settings.token_order is not None and settings.token_order != (
                checkpoint.config.token_order
            ):
                raise AdaptkitError(
                    f"--token-order {settings.token_order}: checkpoint {checkpoint.path} is "
                    f"already loaded with {checkpoint.config.token_order}"
                )
            checkpoint.model.to(device)
        res = resolve(checkpoint.meta, spec, group=settings.group, data_dir=settings.data_dir)
        unsettled = checkpoint.token_order is not None and not checkpoint.token_order.settled
        data = own_task_data(checkpoint, settings.data_dir, [spec, *robots]) if unsettled else {}
        order = settle_token_order(checkpoint, data, reporter)
        cfg = checkpoint.config
        weights = sum(t.numel() * t.element_size() for t in checkpoint.model.parameters())
        return cls(
            checkpoint.model,
            res,
            settings.context_len or cfg.context_len,
            norm_obs=cfg.norm_obs,
            norm_acs=cfg.norm_acs,
            name=name,
            info={
                "checkpoint": str(checkpoint.path),
                "token_order": order.order,
                "token_order_source": order.reason,
            }
            | ({"base": str(checkpoint.base_path)} if checkpoint.base_path else {}),
            threads=settings.threads,
            cache_dtype=kv_dtype(settings.kv_dtype, weights),
            reset_context=settings.reset_context,
        )

    def kv_plan(self, num_envs: int) -> KVPlan:
        """The KV cache `num_envs` envs would need, against the memory free for it."""
        on_cpu = self.device.type == "cpu"
        return plan_kv_cache(
            self.model.config,
            num_envs,
            self.context_len,
            self.cache_dtype,
            self.device,
            resident_bytes=self.model_bytes if on_cpu else 0,
        )

    # -- rollout interface -----------------------------------------------------------------
    def reset(self, num_envs: int) -> None:
        if self.threads and self.device.type == "cpu" and self._saved_threads is None:
            self._saved_threads = torch.get_num_threads()
            torch.set_num_threads(self.threads)
        n, da = num_envs, self.res.action_dim
        self.plan = self.kv_plan(n).check()  # refused before anything is allocated
        self.cache = self.model.new_cache(n, self.context_len, dtype=self.cache_dtype)
        # preallocated per-env state, updated in place every step
        self.prev_act = torch.zeros(n, da, dtype=self.dtype, device=self.device)
        self.prev_rew = torch.zeros(n, dtype=self.dtype, device=self.device)
        self.step_num = torch.zeros(n, dtype=torch.long, device=self.device)
        self._done = torch.zeros(n, dtype=torch.bool, device=self.device)

    def normalise(self, obs: np.ndarray) -> torch.Tensor:
        """Raw observations [N, do] as the model reads them (its task's normalisation)."""
        o = torch.as_tensor(obs, device=self.device).to(self.dtype)
        if self._obs_shift is not None:
            o = (o - self._obs_shift) / self._obs_div
        return o

    def action_token(self, actions: torch.Tensor) -> torch.Tensor:
        """Raw actions [N, da] in the units the model's previous-action token holds."""
        a = torch.as_tensor(actions, device=self.device).to(self.dtype)
        if self._acs is not None:
            a = (a - self._acs[0]) / self._acs[1]
        return a

    @torch.inference_mode()
    def act(self, obs: np.ndarray, env: Any) -> np.ndarray:
        return self.act_normalised(self.normalise(obs))

    @torch.inference_mode()
    def act_normalised(self, o: torch.Tensor) -> np.ndarray:
        """`act` for observations already normalised (a recorded context fed back in)."""
        a = self.model.step(self.group, self.cache, o, self.prev_act, self.prev_rew, self.step_num)
        self.prev_act.copy_(a)  # the token of the next step carries the action the model chose
        if self._acs is not None:
            a = a * self._acs[1] + self._acs[0]
        return a.float().cpu().numpy()

    @torch.inference_mode()
    def observe(self, actions: np.ndarray, rewards: np.ndarray, done: np.ndarray) -> None:
        self.prev_rew.copy_(torch.as_tensor(rewards, device=self.device)).mul_(
            self.res.reward_scale
        )
        self._done.copy_(torch.as_tensor(done, device=self.device))
        # episode-local step: +1, and 0 where the env just reset (selects the padding embeddings)
        self.step_num.add_(1).masked_fill_(self._done, 0)
        if self.reset_context:
            self.cache.reset(self._done)

    def close(self) -> None:
        """Restore the torch thread count changed by reset()."""
        if self._saved_threads is not None:
            torch.set_num_threads(self._saved_threads)
            self._saved_threads = None

    def describe(self) -> dict[str, Any]:
        return {
            "policy": "model",
            **self.info,
            **self.res.describe(),
            "context_len": self.context_len,
            "reset_context": self.reset_context,
            "torch_threads": self.threads,
            **(self.plan.describe() if self.plan is not None else {}),
        }
