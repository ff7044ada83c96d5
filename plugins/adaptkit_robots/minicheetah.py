"""MIT Mini Cheetah: the new robot adaptkit adapts a Go1/Go2/A1-pretrained model to."""

from adaptkit import CANONICAL_JOINTS, LOCOMOTION_OBS_NAMES, GaitParams, RobotSpec, hookimpl


@hookimpl
def register_robots(register):
    register(
        RobotSpec(
            name="minicheetah",
            task="minicheetah_walking_ad",
            group="minicheetah_locomotion",
            obs_names=LOCOMOTION_OBS_NAMES,
            joint_names=CANONICAL_JOINTS,
            # Thigh and knee axes point the other way than Unitree's, so the signs are flipped.
            default_joint_angles=(0.0, -0.8, 1.5) * 4,
            kp=25.0,
            kd=0.6,
            base_init_height=0.40,
            base_height_target=0.30,
            mass_kg=8.9,
            torque_limits=(18.0, 18.0, 26.0) * 4,
            gait=GaitParams(2.43, 0.15, 0.60, 0.09, -0.75, 0.37, 0.24, 0.68, 1.87),
            data_path="minicheetah_trajectories",
            description="MIT Mini Cheetah (8.9 kg), primitive-geometry MJCF",
        )
    )
