"""Unitree Go2, one of the pretraining robots (shares the `quadruped_locomotion` group)."""

from adaptkit import CANONICAL_JOINTS, LOCOMOTION_OBS_NAMES, GaitParams, RobotSpec, hookimpl


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
            gait=GaitParams(1.93, 0.39, 0.67, -0.01, -0.43, 0.59, 0.18, 0.20, 1.43),
            data_path="go2_trajectories",
            description="Unitree Go2 (15.0 kg), primitive-geometry MJCF",
        )
    )
