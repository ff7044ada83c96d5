"""Build what the main job and the studies need and the user did not name, cached where the
defaults point: the sizes of it all (recipe: `Recipe`, `TINY_MODEL`), a robot's learning
histories (data), a base model with its provenance.json (base, provenance), the base shipped
inside the package (ship, a maintainer's task), and rank 0 building under torchrun while the
other ranks wait (rank_zero).

Nothing is imported here, so `adaptkit.bootstrap.recipe` stays light (the studies' presets
are read by the CLI's --help)."""
