"""Unitree Go2, one of the pretraining robots (shares the `quadruped_locomotion` group)."""

from adaptkit import CANONICAL_JOINTS, LOCOMOTION_OBS_NAMES, GaitParams, RobotSpec, hookimpl
from adaptkit_robots import ASSETS


@hookimpl
def register_robots(register):
    register(
        RobotSpec(
            name="go2",
            task="go2_walking_ad",
            group="quadruped_locomotion",
            obs_names=LOCOMOTION_OBS_NAMES,
            joint_names=CANONICAL_JOINTS,
            default_joint_angles=(0.0, 0.8, -1.5) * 2 + (0.0, 1.0, -1.5) * 2,
            # The heaviest robot sags at kp 25 and drifts down; kp 30 keeps it at height.
            kp=30.0,
            kd=0.8,
            base_init_height=0.42,
            base_height_target=0.30,
            mass_kg=15.0,
            torque_limits=(23.7, 23.7, 45.43) * 4,
            mjcf=ASSETS / "go2.xml",
            mjcf_joints=tuple(
                f"{leg}_{j}_joint"
                for leg in ("FR", "FL", "RR", "RL")
                for j in ("hip", "thigh", "calf")
            ),
            # Trot CPG tuned in the sim env: adaptkit tune-gait go2 --rounds 8 --batch 128
            gait=GaitParams(3.500, 0.264, 1.000, 0.030, -0.367, 0.646, 0.189, -0.029, 0.197),
            data_path="go2_trajectories",
            description="Unitree Go2 (15.0 kg), primitive-geometry MJCF",
        )
    )
