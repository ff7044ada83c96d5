"""Unitree Go1, one of the pretraining robots (shares the `quadruped_locomotion` group)."""

from adaptkit import CANONICAL_JOINTS, LOCOMOTION_OBS_NAMES, GaitParams, RobotSpec, hookimpl
from adaptkit_robots import ASSETS


@hookimpl
def register_robots(register):
    register(
        RobotSpec(
            name="go1",
            task="go1_walking_ad",
            group="quadruped_locomotion",
            obs_names=LOCOMOTION_OBS_NAMES,
            joint_names=CANONICAL_JOINTS,
            default_joint_angles=(0.0, 0.8, -1.6) * 2 + (0.0, 1.0, -1.6) * 2,
            kp=25.0,
            kd=0.6,
            base_init_height=0.42,
            base_height_target=0.32,
            mass_kg=12.7,
            torque_limits=(23.7, 23.7, 35.55) * 4,
            mjcf=ASSETS / "go1.xml",
            mjcf_joints=tuple(
                f"{leg}_{j}_joint"
                for leg in ("FR", "FL", "RR", "RL")
                for j in ("hip", "thigh", "calf")
            ),
            # Trot CPG tuned in the sim env: adaptkit tune-gait go1 --rounds 8 --batch 128
            gait=GaitParams(3.408, 0.153, 0.873, -0.013, -0.431, 0.248, 0.909, -0.309, 1.790),
            data_path="go1_trajectories",
            description="Unitree Go1 (12.7 kg), primitive-geometry MJCF",
        )
    )
