#!/usr/bin/env bash
# The sim-to-sim table of README's "Two simulators": Mini Cheetah adapted on learning histories
# from simulator A (MuJoCo or Genesis), each model evaluated in A and in B. Needs the genesis
# extra (pip install 'adaptkit[genesis]' torch==2.13.0).
#
#   bash scripts/sim2sim.sh [WORKDIR]      # default: ./sim2sim
set -euo pipefail
work=${1:-sim2sim}
mkdir -p "$work" && cd "$work"

# 1. The main job on built-in defaults (base from Go1/Go2/A1 in MuJoCo, Mini Cheetah histories
#    in MuJoCo, frozen fine-tune, comparison in MuJoCo at the held-out seed 777).
adaptkit collect minicheetah --data-dir data
adaptkit finetune minicheetah --json > ft_mujoco.json
# 2. The same recipe on Mini Cheetah histories collected in Genesis, on the same base (its
#    comparison at seed 777 runs in MuJoCo: the B of A = Genesis).
adaptkit collect minicheetah --sim genesis --data-dir data_genesis
adaptkit finetune minicheetah --pretrained-path models/base --name mc_ft_genesis \
    --dataset-config-paths data_genesis/dataset_config.yaml --data-dir data_genesis --json \
    > ft_genesis.json
# 3. In Genesis, same seed and envs: zero-shot, demonstrator and standing, then both fine-tunes.
adaptkit compare --robot minicheetah zero-shot=models/base --sim genesis --seed 777 \
    --num-envs 16 --episodes 3 --data-dir data --out compare_genesis_base --json > /dev/null
adaptkit compare --robot minicheetah ft-mujoco=models/minicheetah_finetune \
    ft-genesis=models/mc_ft_genesis --no-demonstrator --no-stand --sim genesis --seed 777 \
    --num-envs 16 --episodes 3 --data-dir data --out compare_genesis_ft --json > /dev/null

# 4. The table: normalised score = (return - standing) / (demonstrator - standing), per simulator.
python - <<'PY'
import json

def rows(path):
    return {r["label"]: r for r in json.load(open(path))["table"]}

mj_a = rows("models/minicheetah_finetune/compare/compare.json")
mj_b = rows("models/mc_ft_genesis/compare/compare.json")
gs = {**rows("compare_genesis_base/compare.json"), **rows("compare_genesis_ft/compare.json")}
sims = {
    "MuJoCo": {"demonstrator": mj_a["demonstrator"], "stand": mj_a["stand"],
               "zero-shot": mj_a["zero-shot"], "ft on MuJoCo": mj_a["fine-tuned"],
               "ft on Genesis": mj_b["fine-tuned"]},
    "Genesis": {"demonstrator": gs["demonstrator"], "stand": gs["stand"],
                "zero-shot": gs["zero-shot"], "ft on MuJoCo": gs["ft-mujoco"],
                "ft on Genesis": gs["ft-genesis"]},
}
print("| policy | evaluated in | return | normalised | falls | speed m/s |")
print("| --- | --- | --- | --- | --- | --- |")
for label in ("ft on MuJoCo", "ft on Genesis", "zero-shot", "demonstrator", "stand"):
    for sim, t in sims.items():
        r, d, s = t[label], t["demonstrator"]["mean_return"], t["stand"]["mean_return"]
        norm = (r["mean_return"] - s) / (d - s)
        print(f"| {label} | {sim} | {r['mean_return']:.2f} | {norm:.2f} | "
              f"{r['falls']}/{r['num_episodes']} | {r['mean_speed']:.2f} |")
PY
