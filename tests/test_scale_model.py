"""The scale model's arithmetic: the first limit binds, the settings it advises keep up."""

from __future__ import annotations

import pytest

from mallocmuzero.benchmarks.scale_model import predict, recommend


def parts(learner: float = 100.0, inserts: float = 1e9, sampling: float = 1e9) -> dict:
    """Model inputs: 1,000 steps/s per actor core, 1 CPU each, 2 samples per insert."""
    return {
        "actor_cpus": 1.0, "samples_per_insert": 2.0, "period": 1, "steps_per_core": 1000.0,
        "learner_steps_per_s": {64: learner, 256: learner / 2},
        "sampling_batches_per_s": {64: sampling, 256: sampling},
        "inserts_per_s": inserts,
        "broadcast": {"rows": [{"subscribers": 1, "cost_ms": 1.0},
                               {"subscribers": 11, "cost_ms": 11.0}]},
    }  # fmt: skip


def test_the_actors_bind_until_the_learner_cannot_keep_the_ratio():
    few = predict(2, parts(), 64)
    assert few["saturates"] == "actors" and few["self_play_steps_per_s"] == 2000.0
    assert few["learner_steps_per_s"] == pytest.approx(2000.0 * 2 / 64)
    many = predict(1000, parts(), 64)
    assert many["saturates"] == "learner"
    # The learner's rate less its publishing cost (1 ms per subscriber per 20 steps) sets it.
    learner = 100.0 / (1 + 100.0 * 1.0 / 20)
    assert many["learner_steps_per_s"] == pytest.approx(learner)
    assert many["self_play_steps_per_s"] == pytest.approx(learner * 64 / 2)


def test_shared_cores_and_the_replay_ceiling_bind_where_they_are_lowest():
    shared = predict(4, parts(), 64, free_cores=1.0)
    assert shared["self_play_steps_per_s"] == pytest.approx(1000.0)  # 4 actors on 1 core
    capped = predict(8, parts(learner=1e6, inserts=3000.0), 64)
    assert capped["saturates"] == "replay inserts" and capped["self_play_steps_per_s"] == 3000.0
    assert predict(8, parts(learner=1e6, inserts=3000.0), 64, shards=3)["saturates"] == "actors"


def test_the_advice_keeps_the_learner_fed_when_a_setting_can():
    advice = recommend(16, parts(learner=2000.0, inserts=5000.0))
    assert advice["learner_keeps_up"] and advice["saturates"] == "actors"
    assert advice["shards"] == 4  # 16,000 inserts/s at 80% of 5,000 per shard
    assert advice["steps_per_call"] >= 20
    publish = advice["publish_ms"] / 1e3
    learner = parts(learner=2000.0)["learner_steps_per_s"][advice["batch"]]
    assert learner * publish / advice["steps_per_call"] <= 0.05 + 1e-9
    starved = recommend(1000, parts(learner=1.0))
    assert not starved["learner_keeps_up"]
