"""Replay with a real Reverb server: sequences reproduce the games exactly."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from mallocmuzero.actors.self_play import SelfPlay
from mallocmuzero.agent.networks import NetworkConfig, init_params
from mallocmuzero.agent.search import make_search
from mallocmuzero.env.game import BatchedGame, GameBank
from mallocmuzero.env.random_workload import random_workload
from mallocmuzero.learner.targets import loss_batch, value_targets
from mallocmuzero.replay.adder import SequenceAdder
from mallocmuzero.replay.sampling import sample_batch, update_priorities
from mallocmuzero.replay.schema import STEP_FIELDS, SequenceSpec, Step
from mallocmuzero.replay.server import TABLE, ReplayConfig, start_server

reverb = pytest.importorskip("reverb")

NET = NetworkConfig(latent_size=16, hidden=(32,))


@pytest.fixture
def setup():
    workloads = [
        random_workload(s, num_buffers=7, num_instructions=10, capacity_fraction=0.4)
        for s in range(3)
    ]
    caps = [w.capacity for w in workloads]
    game = BatchedGame(
        GameBank.build(workloads), 4, sampler=lambda r: ((w := int(r.integers(3))), caps[w]), seed=0
    )
    spec = SequenceSpec(game.spec.size, game.spec.num_actions, unroll_steps=2, td_steps=3)
    unlimited = ReplayConfig(1000, 1.0, samples_per_insert=0, min_size_to_sample=1, error_buffer=0)
    server = start_server(spec, unlimited)
    client = reverb.Client(f"127.0.0.1:{server.port}")
    yield game, spec, client
    server.stop()


def record_and_add(game, spec, client, steps=25):
    adder = SequenceAdder(client, spec, game.num_games)
    episodes = {g: [[]] for g in range(game.num_games)}

    def add(batch, done):
        for g in range(game.num_games):
            episodes[g][-1].append({k: np.array(getattr(batch, k)[g]) for k in STEP_FIELDS})
            if done[g]:
                episodes[g].append([])
        adder.add(batch, done)

    params = init_params(NET, game.spec.size)
    core = SelfPlay(game, make_search(NET, num_simulations=4), add, seed=0)
    for _ in range(steps):
        core.step(params)
    adder.flush()
    return adder, episodes, core


def windows(spec, episode, finished):
    padding = spec.padding_step()
    steps = episode + ([padding] * (spec.length - 1) if finished else [])
    starts = range(len(episode)) if finished else range(len(steps) - spec.length + 1)
    return [
        {k: np.stack([s[k] for s in steps[i : i + spec.length]]) for k in STEP_FIELDS}
        for i in starts
    ]


def test_sequences_reproduce_the_games(setup):
    game, spec, client = setup
    adder, episodes, core = record_and_add(game, spec, client)
    expected = []
    for eps in episodes.values():
        for i, ep in enumerate(eps):
            expected += windows(spec, ep, finished=i < len(eps) - 1)
    assert core.stats.episodes > 8
    size = client.server_info()[TABLE].current_size
    assert size == len(expected) == adder.items_created
    sampled = sample_batch(client, 200)
    assert sampled.sequences["observation"].shape == (200, spec.length, spec.observation_size)
    for b in range(200):
        item = {k: sampled.sequences[k][b] for k in STEP_FIELDS}
        assert any(all(np.array_equal(item[k], w[k]) for k in STEP_FIELDS) for w in expected)
    # Padding past an episode's end is masked, absorbing and uniform.
    masks = sampled.sequences["mask"]
    assert (masks[:, 0] == 1).all()
    assert (masks[:, 1:] <= masks[:, :-1]).all()  # once padding starts, it stays
    pad = masks == 0
    assert (sampled.sequences["reward"][pad] == 0).all()
    assert pad.any()


def test_priorities_and_importance_weights(setup):
    game, spec, client = setup
    record_and_add(game, spec, client, steps=10)
    batch = sample_batch(client, 16)
    update_priorities(client, batch.keys, np.full(16, 5.0))
    weights = batch.importance_weights(beta=0.5)
    assert weights.max() == pytest.approx(1.0) and (weights > 0).all()
    # Raising the priority of the sampled items makes them more likely.
    after = sample_batch(client, 64)
    assert np.isin(after.keys, batch.keys).mean() > len(set(batch.keys.tolist())) / batch.table_size


def test_the_learners_dataset_batches_table_items_with_their_weights(setup):
    """Reverb's batched dataset: B sequences of the table's shapes, keys of its items, and
    importance weights normalised to 1 that the priorities given back move."""
    from mallocmuzero.replay.dataset import ReplayDataset

    game, spec, client = setup
    record_and_add(game, spec, client, steps=10)
    dataset = ReplayDataset(client, 16, importance_beta=0.5)
    batch = next(dataset)
    assert batch.keys.shape == (16,) and batch.weights.shape == (16,)
    for name, (shape, dtype) in spec.step_shapes().items():
        assert batch.sequences[name].shape == (16, spec.length, *shape)
        assert batch.sequences[name].dtype == dtype
    assert batch.weights.max() == pytest.approx(1.0) and (batch.weights > 0).all()
    dataset.update_priorities(batch.keys[:1], np.array([1000.0]))
    later = np.concatenate([next(dataset).keys for _ in range(8)])  # two requested before
    assert (later == batch.keys[0]).mean() > 0.5  # most of the mass on the raised item


def test_value_targets_by_hand():
    rewards = np.array([[0.1, 0.2, 0.3, 0.4, 0.0, 0.0]], np.float32)
    mask = np.array([[1, 1, 1, 1, 0, 0]], np.float32)
    bootstrap = np.array([[10.0, 20.0, 30.0]], np.float32)
    z = value_targets(rewards, mask, bootstrap, unroll=2, td_steps=3)
    assert np.allclose(z, [[0.1 + 0.2 + 0.3 + 10.0, 0.2 + 0.3 + 0.4 + 0.0, 0.3 + 0.4 + 0.0]])


def test_loss_batch_from_replay_trains(setup):
    from mallocmuzero.learner.train_state import init_train_state, make_train_step

    from harness import default_optimizer

    game, spec, client = setup
    record_and_add(game, spec, client, steps=15)
    sampled = sample_batch(client, 16)
    bootstrap = sampled.sequences["root_value"][
        :, spec.td_steps : spec.td_steps + spec.unroll_steps + 1
    ]
    batch = loss_batch(
        sampled.sequences,
        bootstrap,
        sampled.importance_weights(0.5),
        spec.unroll_steps,
        spec.td_steps,
    )
    opt = default_optimizer(warmup_steps=1)
    state = init_train_state(NET, opt, spec.observation_size)
    state, metrics, priority = make_train_step(NET, opt)(
        state, jax.tree_util.tree_map(np.asarray, batch)
    )
    assert np.isfinite(float(metrics["loss/total"])) and priority.shape == (16,)


def test_the_learners_update_is_one_computation_from_raw_sequences(setup):
    """Bootstrap values, n-step targets and the train step are one jitted call: its
    inputs are the sampled sequences themselves, its trace one XLA computation, and it
    matches the targets computed on the host step by step."""
    from mallocmuzero.learner.learner import Learner, make_bootstrap
    from mallocmuzero.learner.train_state import make_train_step

    from harness import default_optimizer

    game, spec, client = setup
    record_and_add(game, spec, client, steps=15)
    sampled = sample_batch(client, 16)
    weights = sampled.importance_weights(0.5)
    opt = default_optimizer(warmup_steps=1)
    learner = Learner(NET, opt, spec)
    jaxpr = jax.make_jaxpr(learner._update)(learner.state, sampled.sequences, weights)
    assert [e.primitive.name for e in jaxpr.jaxpr.eqns] == ["pjit"]  # one computation
    shapes = {tuple(v.aval.shape) for v in jaxpr.jaxpr.invars}
    assert sampled.sequences["reward"].shape in shapes  # raw rewards in, targets inside
    window = slice(spec.td_steps, spec.td_steps + spec.unroll_steps + 1)
    observed = sampled.sequences["observation"][:, window]
    values = np.asarray(make_bootstrap(NET)(learner.state.target_params, observed))
    host = loss_batch(sampled.sequences, values, weights, spec.unroll_steps, spec.td_steps)
    _, expected, _ = make_train_step(NET, opt)(learner.state, host)
    _, metrics, priorities = learner._update(learner.state, sampled.sequences, weights)
    assert float(metrics["loss/total"]) == pytest.approx(float(expected["loss/total"]), rel=1e-5)
    assert priorities.shape == (16,)


def test_replay_service_checkpoint_resumes_under_the_current_config(tmp_path):
    """Reverb restores a checkpoint's own table; the service retargets it to the config."""
    from mallocmuzero.replay.checkpoint import item_count
    from mallocmuzero.replay.service import ReplayService

    spec = SequenceSpec(observation_size=6, num_actions=3, unroll_steps=2, td_steps=2)
    old = ReplayConfig(max_size=100, priority_exponent=1.0, samples_per_insert=4.0,
                       min_size_to_sample=2, error_buffer=1000.0)  # fmt: skip
    service = ReplayService(spec, old, str(tmp_path / "scratch"))
    client = reverb.Client(service.address())
    adder = SequenceAdder(client, spec, num_games=2)
    rng = np.random.default_rng(0)
    for t in range(12):
        shapes = spec.step_shapes()
        steps = {k: np.zeros((2, *shape), dtype) for k, (shape, dtype) in shapes.items()}
        steps["observation"][:] = rng.random((2, 6))
        steps["mask"][:] = 1.0
        adder.add(Step(**steps), np.array([t == 7, False]))
    adder.flush()
    items = service.size()
    assert items > 0 and service.checkpoint(str(tmp_path / "ckpt")) == items
    assert item_count(tmp_path / "ckpt") == items
    service.stop()

    new = ReplayConfig(max_size=55, priority_exponent=1.0, samples_per_insert=1.0,
                       min_size_to_sample=3, error_buffer=10.0)  # fmt: skip
    restored = ReplayService(spec, new, str(tmp_path / "scratch"), str(tmp_path / "ckpt"))
    try:
        assert restored.restored_items == items
        info = reverb.Client(restored.address()).server_info()[TABLE]
        assert info.max_size == 55
        limiter = info.rate_limiter_info
        assert limiter.samples_per_insert == 1.0 and limiter.min_size_to_sample == 3
        assert limiter.max_diff - limiter.min_diff == pytest.approx(2 * 10.0)
        sampled = sample_batch(reverb.Client(restored.address()), 4)  # the limiter lets it
        assert sampled.sequences["observation"].shape == (4, spec.length, 6)
    finally:
        restored.stop()
    assert not list((tmp_path / "scratch").iterdir())  # scratch removed on stop


def test_learner_core_consumes_a_batch_without_any_replay_server():
    from mallocmuzero.cluster.components import make_learner, sequence_spec
    from mallocmuzero.configs.loader import load_config
    from mallocmuzero.replay.dataset import ReplayBatch

    config = load_config("configs/smoke.py")
    spec = sequence_spec(config)
    rng = np.random.default_rng(0)
    b = 8
    sequences = {}
    for name, (shape, dtype) in spec.step_shapes().items():
        values = rng.random((b, spec.length, *shape))
        sequences[name] = values > 0.2 if dtype == np.dtype(bool) else values.astype(dtype)
    sequences["action"] = rng.integers(0, spec.num_actions, (b, spec.length)).astype(np.int32)
    sequences["mask"][:] = 1.0
    batch = ReplayBatch(sequences, np.arange(b, dtype=np.uint64), np.ones(b, np.float32))
    learner = make_learner(config)
    before = learner.params
    for _ in range(2):  # the warm-up's first learning rate is 0
        metrics, priorities = learner.update(batch)
    assert int(learner.state.step) == 2 and np.isfinite(metrics["loss/total"])
    assert priorities.shape == (b,) and (priorities >= 0).all()
    changed = [not np.allclose(x, y) for x, y in zip(
        jax.tree_util.tree_leaves(before), jax.tree_util.tree_leaves(learner.params))]  # fmt: skip
    assert any(changed)


def test_stacked_updates_in_one_call_equal_the_same_updates_one_by_one(setup):
    """n batches stacked through the prefetcher train in one jitted call (lax.scan) to
    the same state, metrics and priorities as n single updates in turn."""
    from mallocmuzero.learner.learner import Learner
    from mallocmuzero.learner.prefetch import learner_batches
    from mallocmuzero.replay.dataset import ReplayDataset

    from harness import default_optimizer

    game, spec, client = setup
    record_and_add(game, spec, client, steps=15)
    dataset = ReplayDataset(client, 8, 0.5)
    batches = [next(dataset) for _ in range(3)]
    stacked = learner_batches(iter(batches), updates_per_call=3, prefetch=1)
    group = next(stacked)
    assert group.weights.shape == (3, 8) and group.keys.shape == (3, 8)

    opt = default_optimizer(warmup_steps=1)
    one_by_one, fused = Learner(NET, opt, spec), Learner(NET, opt, spec)
    metrics, priorities = zip(*(one_by_one.update(b) for b in batches))
    fused_metrics, fused_priorities = fused.update(group)
    assert int(fused.state.step) == int(one_by_one.state.step) == 3
    close = jax.tree_util.tree_map(
        lambda a, b: np.allclose(a, b, rtol=1e-4, atol=1e-6), fused.params, one_by_one.params
    )
    assert all(jax.tree_util.tree_leaves(close))
    assert np.allclose(fused_priorities, np.stack(priorities), rtol=1e-4, atol=1e-6)
    mean_loss = np.mean([m["loss/total"] for m in metrics])
    assert fused_metrics["loss/total"] == pytest.approx(mean_loss, rel=1e-4)


def test_the_prefetcher_keeps_order_and_raises_the_sources_error_in_the_consumer():
    from mallocmuzero.learner.prefetch import Prefetcher

    def source():
        yield from range(5)
        raise OSError("the replay server went away")

    staged = Prefetcher(source(), buffer_size=2, stage=lambda x: x * 10)
    assert [next(staged) for _ in range(5)] == [0, 10, 20, 30, 40]
    for _ in range(2):  # and every call after
        with pytest.raises(OSError, match="went away"):
            next(staged)
    with pytest.raises(ValueError, match="buffer_size"):
        Prefetcher(iter([]), buffer_size=0)
