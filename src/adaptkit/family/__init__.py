"""Procedural families of robots: what a family is and where its generated members are cached
(core), and the quadruped family (quadruped). A plugin declares a family with
`register(RobotFamily(...))` in its `register_families` hook."""

from adaptkit.family.core import CACHE_ENV, RobotFamily, cache_root

__all__ = ["CACHE_ENV", "RobotFamily", "cache_root"]
