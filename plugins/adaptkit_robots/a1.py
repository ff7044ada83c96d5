"""Unitree A1, one of the pretraining robots (shares the `quadruped_locomotion` group)."""

from adaptkit import CANONICAL_JOINTS, LOCOMOTION_OBS_NAMES, GaitParams, RobotSpec, hookimpl
from adaptkit_robots import ASSETS


@hookimpl
def register_robots(register):
    register(
        RobotSpec(
            name="a1",
            task="a1_walking_ad",
            group="quadruped_locomotion",
            obs_names=LOCOMOTION_OBS_NAMES,
            joint_names=CANONICAL_JOINTS,
            default_joint_angles=(0.0, 0.8, -1.5) * 2 + (0.0, 1.0, -1.5) * 2,
            kp=25.0,
            kd=0.6,
            base_init_height=0.42,
            base_height_target=0.27,
            mass_kg=12.5,
            torque_limits=(33.5,) * 12,
            mjcf=ASSETS / "a1.xml",
            mjcf_joints=tuple(
                f"{leg}_{j}_joint"
                for leg in ("FR", "FL", "RR", "RL")
                for j in ("hip", "upper", "lower")
            ),
            # Trot CPG tuned in the sim env: adaptkit tune-gait a1 --rounds 8 --batch 128
            gait=GaitParams(3.117, 0.151, 0.691, 0.029, -0.244, 0.660, 0.331, -0.167, 2.157),
            data_path="a1_trajectories",
            description="Unitree A1 (12.5 kg), primitive-geometry MJCF",
        )
    )
