"""Augmentations produce valid, different workloads; the full window is the original."""

from __future__ import annotations

import numpy as np

from mallocmuzero.env import cost_model
from mallocmuzero.env.augment import augment, jitter_sizes, schedule_window
from mallocmuzero.env.workload import workload_to_dict
from mallocmuzero.solvers.greedy import solve_msa


def test_full_window_is_the_original(real_workloads):
    w = real_workloads["transformer_block"]
    same = schedule_window(w, 0, w.num_instructions)
    assert workload_to_dict(same)["buffers"] == workload_to_dict(w)["buffers"]
    assert cost_model.total_time(same) == cost_model.total_time(w)


def test_windows_and_jitter_are_valid_and_playable(real_workloads):
    rng = np.random.default_rng(0)
    base = list(real_workloads.values())
    extra = augment(base, rng, windows=4, jitters=4, min_window=16)
    assert len(extra) >= 6
    for w in extra:
        assert (w.end <= w.num_instructions).all() and (w.size > 0).all()
        solve_msa(w)  # plays through the game without error
    w = real_workloads["mlp_train"]
    j = jitter_sizes(w, np.random.default_rng(1))
    assert not np.array_equal(j.size, w.size)
    ratio = j.access_bytes / w.access_bytes
    assert np.allclose(ratio, (j.size / w.size)[w.access_buffer])
