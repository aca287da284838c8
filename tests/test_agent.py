"""Agent cores: value transform, masked search, and a loss that learns a fixed batch."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mallocmuzero.agent import value_transform as vt
from mallocmuzero.agent.networks import NetworkConfig, init_params
from mallocmuzero.agent.search import lookahead_returns, make_search
from mallocmuzero.env.game import BatchedGame, GameBank
from mallocmuzero.env.observation import (
    GAME_V1,
    PER_CANDIDATE,
    PER_UPCOMING,
    SHIPPED_GAME,
    ObservationSpec,
)
from mallocmuzero.env.random_workload import random_workload
from mallocmuzero.learner.targets import Batch
from mallocmuzero.learner.train_state import init_train_state, make_train_step

from harness import default_optimizer

SMALL = NetworkConfig(latent_size=32, hidden=(64,))


def test_h_round_trip_and_two_hot_round_trip():
    x = jnp.array([-50.0, -1.0, -1e-3, 0.0, 1e-4, 0.37, 1.0, 7.5, 100.0, 1e4])
    assert np.allclose(vt.h_inverse(vt.h(x)), x, rtol=1e-3, atol=1e-4)  # float32
    y = jnp.linspace(-1.9, 9.9, 101)
    probs = vt.scalar_to_two_hot(y, 49, -2.0, 10.0)
    assert np.allclose(probs.sum(-1), 1.0)
    assert np.allclose(vt.two_hot_to_scalar(probs, -2.0, 10.0), y, atol=1e-5)
    raw = jnp.array([0.0, 0.001, 0.05, 0.4, 0.9])
    logits = jnp.log(vt.encode(raw, 100.0, 49, -2.0, 10.0) + 1e-12)
    assert np.allclose(vt.decode(logits, 100.0, -2.0, 10.0), raw, atol=1e-4)


def test_search_never_picks_an_illegal_action():
    workloads = [
        random_workload(s, num_buffers=30, num_instructions=20, capacity_fraction=0.1)
        for s in range(4)
    ]
    caps = [w.capacity for w in workloads]
    game = BatchedGame(
        GameBank.build(workloads),
        32,
        sampler=lambda r: ((w := int(r.integers(4))), caps[w]),
        seed=3,
    )
    params = init_params(SMALL, game.spec.size)
    search = make_search(SMALL, num_simulations=8)
    features, legal = game.observe()
    seen_partial_masks = 0
    for i in range(40):
        greedy = i % 2 == 1
        out = search(params, jax.random.PRNGKey(i), features, legal, greedy=greedy)
        actions = np.asarray(out.action)
        assert legal[np.arange(32), actions].all()
        weights = np.asarray(out.action_weights)
        assert np.allclose(weights.sum(-1), 1.0, atol=1e-5)
        assert (weights[~legal] <= 1e-6).all()
        seen_partial_masks += int((~legal).any(axis=1).sum())
        step = game.step(actions)
        features, legal = step.features, step.legal
    assert seen_partial_masks > 100  # the masks really constrained the search


def v1_start(seed: int, slots: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The first observation of ``slots`` v1 games of a random program; its size."""
    workload = random_workload(seed, num_buffers=20, num_instructions=20)
    game = BatchedGame(GameBank.build([workload]), slots, spec=GAME_V1)
    game.reset_all([0] * slots, [workload.capacity] * slots)
    return *game.observe(), game.spec.size


def test_greedy_search_is_deterministic():
    features, legal, size = v1_start(5, slots=4)
    params = init_params(SMALL, size, seed=1)
    search = make_search(SMALL, num_simulations=8)
    a = search(params, jax.random.PRNGKey(0), features, legal, greedy=True).action
    b = search(params, jax.random.PRNGKey(99), features, legal, greedy=True).action
    assert np.array_equal(np.asarray(a), np.asarray(b))


def test_the_search_threads_its_key():
    """Each search returns the key for the next: a new one every call, never repeating,
    and the same sequence (so the same sampled actions) from the same first key."""
    features, legal, size = v1_start(6, slots=8)
    params = init_params(SMALL, size, seed=2)
    search = make_search(SMALL, num_simulations=4)

    def chain(key, calls=6):
        keys, actions = [tuple(np.asarray(key))], []
        for _ in range(calls):
            out = search(params, key, features, legal)
            key = out.rng
            keys.append(tuple(np.asarray(key)))
            actions.append(np.asarray(out.action))
        return keys, np.stack(actions)

    keys, actions = chain(jax.random.PRNGKey(7))
    again_keys, again_actions = chain(jax.random.PRNGKey(7))
    assert len(set(keys)) == len(keys)
    assert keys == again_keys and np.array_equal(actions, again_actions)
    assert len({a.tobytes() for a in actions}) > 1  # the sampled searches differ


def test_completed_qvalues_without_rollouts_match_mctx():
    """Our completed-Q transform at weight 0 is mctx's default one, at every node."""
    import mctx

    from mallocmuzero.agent.search import Embedding, completed_qvalues

    batch, actions = 4, 6
    keys = jax.random.split(jax.random.PRNGKey(7), 4)

    def recurrent_fn(params, rng, action, embedding):
        del params, rng
        noise = jnp.sin(embedding.latent * 7.0 + action[:, None])  # deterministic, varied
        out = mctx.RecurrentFnOutput(
            reward=noise[:, 0],
            discount=jnp.full(action.shape, 0.9),
            prior_logits=noise[:, :actions] * 3.0,
            value=noise[:, 1] * 2.0,
        )
        return out, Embedding(noise + embedding.latent, embedding.rollout)

    root = mctx.RootFnOutput(
        prior_logits=jax.random.normal(keys[0], (batch, actions)),
        value=jax.random.normal(keys[1], (batch,)),
        embedding=Embedding(jax.random.normal(keys[2], (batch, 8)), jnp.zeros((batch, actions))),
    )
    tree = mctx.gumbel_muzero_policy(
        None, keys[3], root, recurrent_fn, num_simulations=12, max_num_considered_actions=4
    ).search_tree
    for node in range(6):
        ours = jax.vmap(completed_qvalues, (0, None, None))(tree, node, 0.0)
        theirs = jax.vmap(mctx.qtransform_completed_by_mix_value, (0, None))(tree, node)
        assert np.allclose(ours, theirs, atol=1e-5), node


def test_full_rollout_weight_follows_the_lookahead_and_plays_beam1():
    """With rollout weight 1, greedy search takes the best completion at every step.

    Such play never ends below the best completion it saw first (each step's best
    completion includes continuing as msa would).
    """

    workloads = [
        random_workload(s, num_buffers=40, num_instructions=30, capacity_fraction=0.15)
        for s in range(3)
    ]
    spec = dataclasses.replace(GAME_V1, lookahead=True)
    # A blank network (uniform prior, equal values) leaves the choice to the rollouts.
    params = jax.tree.map(jnp.zeros_like, init_params(SMALL, spec.size, seed=2))
    read = lookahead_returns(spec)
    search = make_search(SMALL, num_simulations=16, rollout_weight=1.0, rollout_returns=read)
    game = BatchedGame(GameBank.build(workloads), 3, spec=spec)
    game.reset_all(range(3), [w.capacity for w in workloads])
    features, legal = game.observe()
    first_best = np.asarray(read(features))[:, :-1].max(axis=1)
    while not all(game.is_done(g) for g in range(3)):
        out = search(params, jax.random.PRNGKey(0), features, legal, greedy=True)
        returns = np.where(legal, np.asarray(read(features))[:, :-1], -np.inf)
        actions = np.asarray(out.action)
        live = [g for g in range(3) if not game.is_done(g)]
        assert np.allclose(returns[live, actions[live]], returns[live].max(axis=1), atol=1e-6)
        step = game.step(actions)
        features, legal = step.features, step.legal
    for g in range(3):
        final = game.saved_seconds(g) / game.bank.all_slow_time(g)
        assert final >= first_best[g] - 1e-5
    with pytest.raises(ValueError, match="lookahead"):
        lookahead_returns(GAME_V1)


def fixed_batch(rng: np.random.Generator, batch: int, k: int, features: int, actions: int):
    policy = rng.random((batch, k + 1, actions)).astype(np.float32) ** 4
    mask = np.ones((batch, k + 1), np.float32)
    mask[: batch // 4, -2:] = 0.0  # some sequences end early
    return Batch(
        observation=rng.random((batch, features)).astype(np.float32),
        action=rng.integers(0, actions, (batch, k)).astype(np.int32),
        policy=policy / policy.sum(-1, keepdims=True),
        value=(rng.random((batch, k + 1)) * 0.3 * mask).astype(np.float32),
        reward=(rng.random((batch, k)) * 0.02 * mask[:, 1:]).astype(np.float32),
        mask=mask,
        weight=np.ones(batch, np.float32),
    )


def test_loss_decreases_on_a_fixed_batch():
    opt = default_optimizer(learning_rate=3e-3, warmup_steps=5, decay_steps=1000)
    state = init_train_state(SMALL, opt, observation_size=20)
    train_step = make_train_step(SMALL, opt)
    batch = fixed_batch(np.random.default_rng(0), 32, 5, 20, SMALL.num_actions)
    losses = []
    for _ in range(150):
        state, metrics, priority = train_step(state, batch)
        losses.append(float(metrics["loss/total"]))
    assert priority.shape == (32,) and np.isfinite(np.asarray(priority)).all()
    assert int(state.step) == 150
    assert losses[-1] < 0.5 * losses[0]
    assert all(np.isfinite(losses))


@pytest.mark.parametrize("interval", [1, 7])
def test_target_network_refresh_interval(interval):
    opt = default_optimizer(target_update_interval=interval, warmup_steps=1)
    state = init_train_state(SMALL, opt, observation_size=20)
    train_step = make_train_step(SMALL, opt)
    batch = fixed_batch(np.random.default_rng(1), 8, 2, 20, SMALL.num_actions)
    for _ in range(3):
        state, _, _ = train_step(state, batch)
    same = jax.tree_util.tree_all(
        jax.tree_util.tree_map(
            lambda a, b: bool(jnp.array_equal(a, b)), state.params, state.target_params
        )
    )
    assert same == (interval == 1)


def test_a_learner_state_saved_with_the_old_rng_key_restores(tmp_path):
    """Checkpoints written while the learner state held an RNG key still resume."""
    from mallocmuzero.learner.service import LEGACY_KEY, restore_train_state, save_train_state

    opt = default_optimizer()
    state = init_train_state(SMALL, opt, observation_size=20, seed=3)
    state = state._replace(step=jnp.asarray(41, jnp.int32))
    old_layout = {**state._asdict(), LEGACY_KEY: np.asarray(jax.random.PRNGKey(5))}
    save_train_state(tmp_path / "old", old_layout)
    save_train_state(tmp_path / "new", state)
    template = init_train_state(SMALL, opt, observation_size=20, seed=0)
    for name in ("old", "new"):
        restored = restore_train_state(tmp_path / name, template)
        assert type(restored).__name__ == "TrainState" and int(restored.step) == 41
        same = jax.tree_util.tree_map(np.array_equal, restored.params, state.params)
        assert all(jax.tree_util.tree_leaves(same))


def test_an_exported_search_answers_as_its_search_and_a_later_one_loads_it(tmp_path):
    """The shipped agent's search through ``ExportedSearch``: the same answers, one trace
    per shape, and a later instance (a second process) loads the files instead of tracing;
    another identity does not."""
    from mallocmuzero.agent.exported import ExportedSearch
    from mallocmuzero.agent.solve import agent_search, load_agent
    from mallocmuzero.solvers.registry import pretrained_checkpoint

    agent = load_agent(str(pretrained_checkpoint()))
    plain = agent_search(agent.config, agent.net)
    traced = []

    def counting(*args, **kwargs):
        traced.append(kwargs["greedy"])
        return plain(*args, **kwargs)

    rng = np.random.default_rng(0)

    def inputs(batch: int) -> tuple:
        features = rng.normal(size=(batch, agent.spec.size)).astype(np.float32)
        legal = rng.random((batch, agent.spec.num_actions)) < 0.7
        legal[:, 0] = True
        return agent.params, jax.random.PRNGKey(batch), features, legal

    first = ExportedSearch(counting, {"weight": 0.5}, tmp_path)
    for batch, greedy in ((1, True), (4, False)):
        args = inputs(batch)
        mine, theirs = first(*args, greedy=greedy), plain(*args, greedy=greedy)
        np.testing.assert_array_equal(mine.action, theirs.action)
        np.testing.assert_array_equal(mine.rng, theirs.rng)
        np.testing.assert_allclose(mine.action_weights, theirs.action_weights, rtol=1e-5)
        np.testing.assert_allclose(mine.root_value, theirs.root_value, rtol=1e-5, atol=1e-6)
    assert traced == [True, False] and len(list(tmp_path.glob("*.bin"))) == 2
    first(*inputs(1), greedy=True)
    assert traced == [True, False] and first._cache_size() == 2  # compiled once per shape

    later = ExportedSearch(counting, {"weight": 0.5}, tmp_path)
    args = inputs(4)
    assert later(*args, greedy=False).action.tolist() == plain(*args, greedy=False).action.tolist()
    assert traced == [True, False]  # loaded, not traced
    ExportedSearch(counting, {"weight": 1.0}, tmp_path)(*inputs(1), greedy=True)
    assert traced == [True, False, True]


@pytest.mark.parametrize(
    "spec",
    [SHIPPED_GAME, GAME_V1, ObservationSpec(window=0, lookahead=False, pick_candidates=12)],
    ids=["shipped", "v1", "no-window-K12"],
)
def test_the_set_encoders_tokens_hold_every_feature_once(spec):
    """Every observation feature lands in exactly one token (or the global features)."""
    from mallocmuzero.agent.networks import observation_tokens

    x = jnp.arange(1, spec.size + 1, dtype=jnp.float32)[None]  # feature i has value i + 1
    glob, actions, upcoming = (np.asarray(t[0]) for t in observation_tokens(x, spec))
    a, w = spec.num_actions, spec.window
    own_a, own_w = actions.shape[1] - a, upcoming.shape[1] - w  # features before the one-hots
    assert actions.shape[0] == a and upcoming.shape[0] == w
    assert np.array_equal(actions[:, own_a:], np.eye(a))
    assert np.array_equal(upcoming[:, own_w:], np.eye(w))
    seen = np.concatenate([glob, actions[:, :own_a].ravel(), upcoming[:, :own_w].ravel()])
    seen = seen[seen > 0]
    assert sorted(seen.tolist()) == list(range(1, spec.size + 1))
    # Action a's token starts with offset candidate a's five features.
    first = spec.pick_start - PER_UPCOMING * w - PER_CANDIDATE * spec.num_offset_actions
    for action in range(spec.num_offset_actions):
        assert actions[action, 0] == first + PER_CANDIDATE * action + 1


def test_the_set_encoder_learns_and_its_checkpoint_loads_as_saved(tmp_path):
    from mallocmuzero.agent.checkpoint import load_checkpoint, save_checkpoint
    from mallocmuzero.configs.schema import ExperimentConfig, with_values

    config = with_values(
        ExperimentConfig(),
        {
            "network.encoder": "set",
            "network.token_size": 16,
            "network.latent_size": 32,
            "network.hidden": (64,),
        },
    )
    spec = SHIPPED_GAME
    net = dataclasses.replace(
        SMALL, encoder="set", token_size=16, observation=spec, num_actions=spec.num_actions
    )
    opt = default_optimizer(learning_rate=3e-3, warmup_steps=5, decay_steps=1000)
    state = init_train_state(net, opt, observation_size=spec.size)
    train_step = make_train_step(net, opt)
    batch = fixed_batch(np.random.default_rng(0), 32, 5, spec.size, spec.num_actions)
    losses = []
    for _ in range(100):
        state, metrics, _ = train_step(state, batch)
        losses.append(float(metrics["loss/total"]))
    assert losses[-1] < 0.5 * losses[0]
    meta = {"num_actions": spec.num_actions, "observation_size": spec.size}
    save_checkpoint(tmp_path / "set", state.params, config, meta)
    params, loaded, _, loaded_net = load_checkpoint(tmp_path / "set")
    assert loaded.network.encoder == "set" and loaded_net.encoder == "set"
    same = jax.tree_util.tree_map(np.array_equal, params, state.params)
    assert all(jax.tree_util.tree_leaves(same))
