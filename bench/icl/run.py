"""Research driver: family bases (K bodies × seeds, one data variant), then every in-context
control of adaptkit.evaluate.controls on the held-out built-ins and family bodies.

    PYTHONPATH=bench/icl python bench/icl/run.py --out /work/runs/icl-v0 --ks 3,10 --seeds 0,1,2,3,4

Resumable: every stage's files are skipped when there.
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

import jobs as J

from adaptkit.execute import Job
from adaptkit.plugins import get_registry, plugin_files
from adaptkit.progress import Reporter
from adaptkit.study.embodiments import BASE_DONE, EmbodimentStudy, base_name, build_base
from adaptkit.study.embodiments_plan import EmbodimentPlan

# per probed body: (the body whose demonstrator history the `foreign` control reads — same
# joint-axis convention —, the body whose model run `foreign-model` reads — the other one)
FOREIGN = {
    "go1": ("go2", "minicheetah"),
    "go2": ("a1", "minicheetah"),
    "a1": ("go2", "minicheetah"),
    "minicheetah": ("quadfam_0011", "go2"),
}


class Say(Reporter):
    def note(self, message: str) -> None:
        print(message, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--ks", default="3,10")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--histories-per-body", type=int, default=80)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-family-probes", action="store_true")
    ap.add_argument("--curriculum", default=None, help="varied | trial (adaptkit.sim.curricula)")
    ap.add_argument("--history-episodes", type=int, default=None, help="episodes per history")
    ap.add_argument("--window-stride", type=int, default=None)
    ap.add_argument("--pretrain-steps", type=int, default=None)
    ap.add_argument("--reward-scale", type=float, default=None)
    a = ap.parse_args()
    ks = tuple(int(k) for k in a.ks.split(","))
    seeds = tuple(int(s) for s in a.seeds.split(","))
    plan = EmbodimentPlan.preset_named("embodiments-small").replace(
        ks=ks,
        base_seeds=seeds,
        top_seeds=None,
        curves=("budget",),
        histories_per_body=a.histories_per_body,
    )
    extra = {
        "curriculum": a.curriculum,
        "noise_cycle": a.history_episodes,
        "window_stride": a.window_stride,
        "pretrain_steps": a.pretrain_steps,
        "reward_scale": a.reward_scale,
    }
    plan = plan.replace(**{k: v for k, v in extra.items() if v is not None})
    out = Path(a.out).resolve()
    reg = get_registry()
    st = EmbodimentStudy(plan, out, reg, Say(), "local", a.workers)
    from adaptkit.study.common import check_plan_file

    check_plan_file(out, plan.as_dict(), plan.data_key())
    train, held = st.bodies()
    st.wave("collection", st.collections(train))
    files = list(plugin_files(reg))
    common = {"out": str(out), "plan": plan, "plugin_files": files}
    job = functools.partial(Job, threads=1)
    st.wave("pretraining", [
        job(f"base-{base_name(*b)}", st.base_path(*b) / BASE_DONE, build_base,
            {**common, "k": b[0], "curve": b[1], "seed": b[2]})
        for b in plan.bases()
    ])  # fmt: skip
    built = [st.base_path(*b) for b in plan.bases() if (st.base_path(*b) / BASE_DONE).is_file()]
    bodies = dict(FOREIGN)
    if not a.no_family_probes:
        same = {}
        for sp in held:  # family bodies: another held-out body (or a built-in) of their kind
            same.setdefault(sp.joint_signs[1] < 0, []).append(sp.name)
        for sp in held:
            kin = [n for n in same[sp.joint_signs[1] < 0] if n != sp.name]
            other = "go2" if sp.joint_signs[1] < 0 else "minicheetah"
            bodies[sp.name] = (kin[0] if kin else ("minicheetah" if other == "go2" else "go2"),
                               other)  # fmt: skip
    probes = []
    for b in built:
        for body, (foreign, fmodel) in bodies.items():
            done = out / "controls" / b.name / f"{body}.json"
            probes.append(job(f"ctl-{b.name}-{body}", done, J.probe_controls,
                              {**common, "base": str(b), "body": body, "foreign": foreign,
                               "foreign_model": fmodel, "done": str(done)}))  # fmt: skip
    st.wave("controls", probes)
    print("failed:", st.failed)


if __name__ == "__main__":
    main()
