"""Build what the main job and the studies need and the user did not name, cached where the
defaults point: the sizes of it all (recipe: `Recipe`, `TINY_MODEL`), a robot's learning
histories (data), a base model with its provenance.json (base, provenance), the base shipped
inside the package (ship, a maintainer's task), and rank 0 building under torchrun while the
other ranks wait (rank_zero).

The public names are handed on here (`from adaptkit.bootstrap import Recipe`)."""

from adaptkit.bootstrap.base import build_base, ensure_base_model
from adaptkit.bootstrap.data import collection_job, ensure_robot_data, has_data
from adaptkit.bootstrap.provenance import base_is_built, read_provenance
from adaptkit.bootstrap.recipe import TINY_MODEL, Recipe
from adaptkit.bootstrap.ship import default_base

__all__ = [
    "TINY_MODEL",
    "Recipe",
    "base_is_built",
    "build_base",
    "collection_job",
    "default_base",
    "ensure_base_model",
    "ensure_robot_data",
    "has_data",
    "read_provenance",
]
