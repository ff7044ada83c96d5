"""Curricula of learning histories (adaptkit.sim.curricula): what each episode plays."""

import itertools

import numpy as np
import pytest

from adaptkit.errors import AdaptkitError
from adaptkit.sim.curricula import HistoryPlan, flip_mask

ONES = np.ones(12, np.float32)
FLIP = flip_mask(12)


def test_flip_mask_negates_thigh_and_calf_only():
    assert FLIP.tolist() == [1, -1, -1] * 4
    with pytest.raises(AdaptkitError, match="hip, thigh, calf"):
        flip_mask(10)


def test_trial_starts_unitree_wired_switches_after_a_poor_episode_then_keeps_the_better():
    rng = np.random.default_rng(0)
    # a Unitree-style body: its own wiring first, kept while the returns clear the bar
    u = HistoryPlan("trial", rng, 12, signs=1.0, threshold=1.0)
    eps, mask = u.episode(0, [])
    assert 0.0 <= eps <= 0.3 and np.array_equal(mask, ONES)
    assert np.array_equal(u.episode(1, [1.3])[1], ONES)
    assert np.array_equal(u.episode(2, [1.3, 1.2])[1], ONES)
    # a Mini-Cheetah-style body: the Unitree wiring is its flipped one; a poor first episode
    # switches to its own, and with both tried the better one stays
    c = HistoryPlan("trial", np.random.default_rng(0), 12, signs=-1.0, threshold=1.0)
    assert np.array_equal(c.episode(0, [])[1], FLIP)
    assert np.array_equal(c.episode(1, [0.1])[1], ONES)
    assert np.array_equal(c.episode(2, [0.1, 1.4])[1], ONES)
    assert np.array_equal(c.episode(3, [0.1, 1.4, 1.3])[1], ONES)
    # the noise level is the history's own, the same in every episode
    assert len({c.episode(k, [0.1, 1.4, 1.3])[0] for k in range(4, 7)}) == 1


def test_trial_tries_the_other_wiring_only_once_and_returns_to_the_better():
    p = HistoryPlan("trial", np.random.default_rng(1), 12, signs=1.0, threshold=1.0)
    p.episode(0, [])
    assert np.array_equal(p.episode(1, [0.5])[1], FLIP)  # poor: try the other
    assert np.array_equal(p.episode(2, [0.5, 0.2])[1], ONES)  # it was worse: back


def test_varied_noise_holds_falls_and_ends_clean_with_per_history_parameters():
    plans = [HistoryPlan("varied", np.random.default_rng([3, i]), 12) for i in range(50)]
    for p in plans:
        eps = [p.episode(e, [])[0] for e in range(9)]
        lead, decay = p.params["lead"], p.params["decay"]
        assert eps[: lead + 1] == [p.params["eps0"]] * (lead + 1)
        assert all(a >= b for a, b in itertools.pairwise(eps))  # never rises
        assert eps[lead + decay] == 0.0 and eps[-1] == 0.0
    starts = {round(p.params["eps0"], 3) for p in plans}
    assert len(starts) > 40  # each history its own schedule
    assert {p.params["decay"] for p in plans} == {1, 2, 3, 4, 5}


def test_unknown_curriculum_is_refused():
    with pytest.raises(AdaptkitError, match="curriculum: expected one of"):
        HistoryPlan("spiral", np.random.default_rng(0), 12)
