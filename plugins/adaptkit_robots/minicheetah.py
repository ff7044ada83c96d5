"""MIT Mini Cheetah: the new robot adaptkit adapts a Go1/Go2/A1-pretrained model to."""

from adaptkit import CANONICAL_JOINTS, LOCOMOTION_OBS_NAMES, GaitParams, RobotSpec, hookimpl
from adaptkit_robots import ASSETS


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
            mjcf=ASSETS / "minicheetah.xml",
            mjcf_joints=tuple(
                name
                for leg in ("fr", "fl", "hr", "hl")
                for name in (
                    f"torso_to_abduct_{leg}_j",
                    f"abduct_{leg}_to_thigh_{leg}_j",
                    f"thigh_{leg}_to_knee_{leg}_j",
                )
            ),
            # Trot CPG tuned in the sim env: adaptkit tune-gait minicheetah --rounds 8 --batch 128
            gait=GaitParams(3.133, 0.104, 0.419, 0.013, -0.197, 0.362, -0.439, 0.588, 0.866),
            data_path="minicheetah_trajectories",
            description="MIT Mini Cheetah (8.9 kg), primitive-geometry MJCF",
            extra={"gym_name": "MiniCheetah"},  # gymnasium id adaptkit/MiniCheetah-v0
        )
    )
