"""The procedural quadruped family (adaptkit.family.quadruped), family seed 0: bodies spanning
Go1/Go2/A1/Mini Cheetah, one shared group `quadruped_family_locomotion`. Registered through the
`register_families` hook exactly as a third-party family would be."""

from adaptkit import hookimpl
from adaptkit.family.quadruped import quadruped_family


@hookimpl
def register_families(register):
    register(quadruped_family(seed=0))
