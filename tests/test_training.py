"""The synchronous runner end to end (real Reverb, real JAX), and a learning check."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from mallocmuzero.agent.checkpoint import load_checkpoint, network_config
from mallocmuzero.agent.networks import init_params
from mallocmuzero.agent.rollouts import CompletionTrace, agent_solve, play_out, start_from
from mallocmuzero.agent.search import make_search
from mallocmuzero.agent.solve import load_agent, observation_spec
from mallocmuzero.cli import main
from mallocmuzero.cluster.launch import train_sync
from mallocmuzero.configs.loader import load_config
from mallocmuzero.env.game import BatchedGame, GameBank
from mallocmuzero.env.random_workload import random_workload
from mallocmuzero.env.solution import load_solution, make_solution, validation_errors
from mallocmuzero.env.workload import load_workload, resolve_capacity, save_workload
from mallocmuzero.solvers.greedy import solve_msa
from mallocmuzero.solvers.registry import pretrained_checkpoint
from mallocmuzero.solvers.restarts import OWN_ORDER_SHARE, search_orders

from harness import AFTER_REAL_RUNS

pytest.importorskip("reverb")
pytestmark = AFTER_REAL_RUNS


def test_sync_train_cli_then_solve_and_evaluate(small_suite, tmp_path, capsys):
    """On game v2 (the distributed tests train v1): training, solve and evaluate."""
    suite_dir = small_suite
    run = tmp_path / "run"
    overrides = ["--set", f"workloads.dir={suite_dir}", "--set", "replay.min_size_to_sample=32"]
    overrides += ["--set", "game.pick_candidates=5", "--set", "game.pick_encoding=hybrid"]
    code = main(
        [
            "train",
            "--config",
            "configs/smoke.py",
            "--run-dir",
            str(run),
            "--max-steps",
            "6",
            "--runner",
            "sync",
            *overrides,
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "[train] stopping: reached 6 learner steps" in out  # the supervisor's own loop
    assert re.search(r"\[train\] checkpoint step_000000006: [1-9]\d* replay items", out)
    _, config, meta, _ = load_checkpoint(run / "checkpoint")
    assert meta["learner_steps"] == 6 and meta["self_play_episodes"] >= 0
    assert sorted(meta["training_programs"]) == ["mlp_train", "rnn_scan"]  # the train split
    assert config.workloads.dir == str(suite_dir)
    assert (config.game.pick_candidates, config.game.pick_encoding) == (5, "hybrid")
    sol = tmp_path / "agent.json"
    workload = suite_dir / "rnn_scan_train.json"  # held out: never seen in training
    checkpoint = str(run / "checkpoint")
    assert main(["solve", str(workload), "--solver", "agent", "--checkpoint", checkpoint,
                 "--samples", "2", "--out", str(sol)]) == 0  # fmt: skip
    data = json.loads(sol.read_text())
    # Greedy at the trained rollout weight and at weight 1, plus the two samples.
    assert data["solver"] == "agent" and data["rollouts"] == 4
    w = load_workload(workload)
    offsets = np.array([p["offset"] if p["offset"] is not None else -1 for p in data["placements"]])
    assert validation_errors(w, offsets, w.capacity) == []
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(run / "checkpoint"), "--workloads", str(suite_dir),
                 "--fractions", "0.25", "--cpsat-time-limit", "5"]) == 0  # fmt: skip
    table = capsys.readouterr().out
    assert "rnn_scan_train" in table and "mlp_train" not in table  # held-out suite only
    assert "mean gain over msa" in table and "headroom recovered" in table
    assert "beam1 s" in table and "faster than beam1 in" in table  # the lookahead ablation
    assert "ran for the agent's wall time" in table
    assert main(["evaluate", "--checkpoint", str(run / "checkpoint"), "--workloads", str(suite_dir),
                 "--fractions", "0.25", "--time-limit", "1"]) == 0  # fmt: skip
    table = capsys.readouterr().out
    assert "every search had 1 s" in table
    walls = [float(line.split()[3]) for line in table.splitlines() if "rnn_scan_train" in line]
    # The agent (restarts then the agent, by default with a limit) used its second, less
    # the little it keeps back for replaying and scoring its best after the rollouts.
    assert walls and 0.9 <= min(walls) and max(walls) <= 1.1


def test_config_errors_are_one_line(tmp_path, capsys):
    args = ["train", "--config", "configs/smoke.py", "--run-dir", str(tmp_path / "r")]
    assert main([*args, "--set", "learner.batchsize=3"]) == 2
    assert "unknown config key 'learner.batchsize'" in capsys.readouterr().err
    assert main([*args, "--set", "learner.batch_size=big"]) == 2
    assert "learner.batch_size expects int" in capsys.readouterr().err
    assert main(["train", "--config", str(tmp_path / "none.py"), "--run-dir", "x"]) == 2
    assert "no such config file" in capsys.readouterr().err
    assert main([*args, "--set", "search.rollout_weight=0.5", "--set", "game.lookahead=false"]) == 2
    assert "search.rollout_weight > 0 needs game.lookahead = True" in capsys.readouterr().err
    assert main(["solve", "workloads/x.json", "--solver", "agent", "--out", "x.json"]) == 2
    capsys.readouterr()
    assert not (tmp_path / "r").exists()


def test_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    w = tmp_path / "w.json"
    save_workload(random_workload(0, num_buffers=5, num_instructions=5), w)
    code = main(["solve", str(w), "--solver", "agent", "--checkpoint", str(tmp_path / "nope"),
                 "--out", str(tmp_path / "s.json")])  # fmt: skip
    assert code == 2
    assert "not a mallocmuzero checkpoint" in capsys.readouterr().err


def test_learning_beats_the_untrained_agent(tmp_path):
    """From an initialisation that leaves everything slow, training learns to place."""
    config = load_config(
        "configs/smoke.py",
        [
            "seed=2",
            "run.max_steps=400",
            "actors.num_games=16",
            "search.num_simulations=8",
            "workloads.capacity_fraction_min=0.2",
            "workloads.capacity_fraction_max=0.4",
        ],  # fmt: skip
    )
    workload = resolve_capacity(
        random_workload(9, num_buffers=40, num_instructions=40), fraction=0.3
    )
    spec = observation_spec(config)
    net = network_config(config, spec.num_actions)
    msa = solve_msa(workload)

    search = make_search(net, num_simulations=8)

    def saved_fraction(params):
        # A search without rollout mixing, and the rollout's own end (no lookahead
        # completion, no msa): the difference is what the network learned.
        solution = agent_solve(workload, params, spec, search, rollouts_only=True)
        return 1 - solution.estimated_time_s / msa.all_slow_time_s

    untrained = saved_fraction(init_params(net, spec.size, seed=2))
    result = train_sync(
        config, str(tmp_path / "run"), workloads=[workload], progress=lambda s: None
    )
    trained = saved_fraction(result["params"])
    msa_saved = 1 - msa.estimated_time_s / msa.all_slow_time_s
    assert trained > untrained + 0.05
    assert trained >= 0.5 * msa_saved


def test_solve_agent_uses_the_shipped_checkpoint(small_suite, tmp_path, capsys):
    workload = small_suite / "rnn_scan_train.json"
    out = tmp_path / "agent.json"
    assert main(["solve", str(workload), "--solver", "agent", "--capacity-fraction", "0.25",
                 "--out", str(out)]) == 0  # fmt: skip
    assert "rnn_scan_train: agent time" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["solver"] == "agent" and data["rollouts"] == 2  # weights 0.5 and 1
    w = resolve_capacity(load_workload(workload), fraction=0.25)
    offsets = np.array([p["offset"] if p["offset"] is not None else -1 for p in data["placements"]])
    assert validation_errors(w, offsets, w.capacity) == []
    assert data["estimated_time_s"] < solve_msa(w).all_slow_time_s  # it places something
    capsys.readouterr()
    for weights in (["0"], ["1"], ["0", "0.5", "1"]):  # the network alone; the rollouts'
        assert main(["solve", str(workload), "--solver", "agent", "--capacity-fraction", "0.25",
                     "--rollout-weight", *weights, "--out", str(out)]) == 0  # fmt: skip
        assert json.loads(out.read_text())["rollouts"] == len(weights)
    assert main(["solve", str(workload), "--solver", "agent", "--rollout-weight", "1.5",
                 "--out", str(tmp_path / "never.json")]) == 2  # fmt: skip
    assert "a rollout weight must be in [0, 1] (got 1.5)" in capsys.readouterr().err
    assert not (tmp_path / "never.json").exists()


class TickingClock:
    """``time.monotonic`` for ``agent/rollouts.py``: one second per reading. The rollouts
    read the clock once per batched step, so how many fit a limit depends on the code,
    not on how busy the machine is (the compiles inside the limit take no ticks)."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        self.now += 1.0
        return self.now


def test_the_agent_with_a_time_limit_is_anytime(small_suite, tmp_path, capsys, monkeypatch):
    """With --time-limit the agent keeps playing batches of sampled rollouts after the
    greedy one until the limit, and keeps the best: never worse than without the limit.

    The limit holds about four rollouts' steps of a ticking clock: the greedy rollout, then
    whole sampled batches (one interrupted by the limit leaves only its completions)."""
    from mallocmuzero.agent import rollouts

    workload = small_suite / "rnn_scan_train.json"
    steps = load_workload(workload).num_buffers  # one decision per buffer
    plain, anytime = tmp_path / "plain.json", tmp_path / "anytime.json"
    assert main(["solve", str(workload), "--solver", "agent", "--capacity-fraction", "0.1",
                 "--rollout-weight", "0.5", "--out", str(plain)]) == 0  # fmt: skip
    monkeypatch.setattr(rollouts, "time", TickingClock())
    limit = ["--time-limit", str(4 * steps + 10), "--restarts-share", "0"]
    assert main(["solve", str(workload), "--solver", "agent", "--capacity-fraction", "0.1",
                 "--rollout-weight", "0.5", "--out", str(anytime), *limit]) == 0  # fmt: skip
    first, best = json.loads(plain.read_text()), json.loads(anytime.read_text())
    assert first["rollouts"] == 1
    assert best["rollouts"] in (1 + 2 * 8, 1 + 3 * 8), best["rollouts"]  # whole batches
    assert best["estimated_time_s"] <= first["estimated_time_s"]
    w = resolve_capacity(load_workload(workload), fraction=0.1)
    offsets = np.array([p["offset"] if p["offset"] is not None else -1 for p in best["placements"]])
    assert validation_errors(w, offsets, w.capacity) == []
    capsys.readouterr()
    assert main(["solve", str(workload), "--solver", "agent", "--time-limit", "0",
                 "--out", str(tmp_path / "never.json")]) == 2  # fmt: skip
    assert "--time-limit must be > 0" in capsys.readouterr().err
    assert not (tmp_path / "never.json").exists()


def test_the_agent_keeps_the_best_completion_its_rollouts_observed(small_suite):
    """Each lookahead observation evaluates every action followed by msa, exactly: the best
    of a rollout's (here met mid-way) replays to a valid placement saving what the lookahead
    said, no less than the rollout's end, and the agent answers with it when it is better."""
    agent = load_agent(str(pretrained_checkpoint()), [0.5])
    w = resolve_capacity(load_workload(small_suite / "mlp_train.json"), fraction=0.25)
    bank = GameBank.build([w])

    def replays(slots: int, greedy: bool) -> tuple[CompletionTrace, float]:
        game = BatchedGame(bank, slots, spec=agent.spec)
        game.reset_all([0] * slots, [w.capacity] * slots)
        trace = CompletionTrace()
        assert play_out(game, agent.searches[0], agent.params, greedy, seed=3, trace=trace)
        end = max(game.saved_seconds(g) for g in range(slots))
        assert trace.saved >= end  # the last step's completion of the played action is the end
        offsets = trace.offsets(bank, agent.spec, w.capacity)
        assert validation_errors(w, offsets, w.capacity) == []
        replayed = make_solution(w, offsets, "replay")
        saved = replayed.all_slow_time_s - replayed.estimated_time_s
        assert saved == pytest.approx(trace.saved, rel=1e-12)
        return trace, end

    replays(3, greedy=False)
    trace, end = replays(1, greedy=True)  # what agent_solve's greedy rollout observes
    assert 0 < trace.step < len(trace.actions) - 1
    solution = agent_solve(w, agent.params, agent.spec, agent.searches[0], seed=3)
    assert solution.extra["from_completion"] == (trace.saved > end)
    best = solution.all_slow_time_s - solution.estimated_time_s
    assert best == pytest.approx(max(trace.saved, end), rel=1e-12)


def test_a_compiled_agent_spends_its_time_limit_on_rollouts(small_suite):
    """``LoadedAgent.compile`` compiles every search shape a timed solve runs: the solve
    then compiles nothing (before, the sampled batch compiled inside the user's limit)."""
    agent = load_agent(str(pretrained_checkpoint())).compile()
    compiled = [search._cache_size() for search in agent.searches]
    assert len(compiled) == 2 and min(compiled) >= 1  # the trained weight and weight 1
    w = resolve_capacity(load_workload(small_suite / "mlp_train.json"), fraction=0.25)
    solution = agent.solve(w, time_limit=1.0, restarts_share=0.0)  # however many rollouts
    assert validation_errors(w, solution.offsets, w.capacity) == []
    assert [search._cache_size() for search in agent.searches] == compiled


# What ``solve --solver agent --time-limit S`` runs by default, as its solution names it.
HYBRID = "agent+restarts+agent" if OWN_ORDER_SHARE else "restarts+agent"


def test_the_agent_first_plays_its_greedy_rollouts_from_msas_order_and_leaves_the_rest():
    """Not anytime, the agent ends with its greedy rollouts (one per rollout weight)
    however long the limit; in the hybrid with an own-order share that phase's placement
    competes with restarts' and the refined one."""
    agent = load_agent(str(pretrained_checkpoint())).compile()
    w = random_workload(2, num_buffers=40, num_instructions=50)
    first, *others = agent.searches
    greedy = agent_solve(w, agent.params, agent.spec, first, more_greedy=others,
                         time_limit=600.0, anytime=False)  # fmt: skip
    assert greedy.extra["rollouts"] == len(agent.searches)
    hybrid = agent.solve(w, time_limit=2.0, restarts_share=0.5, own_order_share=0.4)
    assert hybrid.solver == "agent+restarts+agent"
    assert validation_errors(w, hybrid.offsets, w.capacity) == []
    assert hybrid.estimated_time_s <= solve_msa(w).estimated_time_s
    if hybrid.extra["from_own_order"]:  # that phase's rollouts, cut at 0.8 s or not
        assert hybrid.estimated_time_s >= greedy.estimated_time_s * (1 - 1e-12)


def test_the_agent_plays_from_restarts_best_order(tmp_path):
    """With a base order, pick candidate 0 follows it, so the first observation's
    completion of action 0 is msa over that order (restarts' best, better than msa's);
    the hybrid gives restarts half the limit and keeps the better placement."""
    agent = load_agent(str(pretrained_checkpoint())).compile()
    w = random_workload(0, num_buffers=40, num_instructions=50)
    found = search_orders(w, None, tries=200)
    assert found.order is not None
    game = start_from(GameBank.build([w]), agent.spec, w.capacity, 1, (), found.order)
    game.observe()
    assert game.completions(0)[0] == pytest.approx(found.saved, rel=1e-12)
    solution = agent_solve(w, agent.params, agent.spec, agent.searches[0], order=found.order)
    assert validation_errors(w, solution.offsets, w.capacity) == []
    saved = solution.all_slow_time_s - solution.estimated_time_s
    assert saved >= found.saved * (1 - 1e-12)
    save_workload(w, tmp_path / "w.json")
    out = tmp_path / "hybrid.json"
    # With a limit and no --restarts-share, --solver agent is the hybrid.
    assert main(["solve", str(tmp_path / "w.json"), "--solver", "agent", "--time-limit", "2",
                 "--out", str(out)]) == 0  # fmt: skip
    hybrid = load_solution(out, w)
    assert hybrid.solver == HYBRID
    assert validation_errors(w, hybrid.offsets, w.capacity) == []
    assert hybrid.estimated_time_s <= solve_msa(w).estimated_time_s


def test_a_limit_shorter_than_one_rollout_still_answers_no_worse_than_msa(small_suite):
    """The first greedy rollout stops at the limit too (a 1,846-buffer train step took 50 s
    for ``--time-limit 5``): with no time for one step, the answer is msa's, or better."""
    agent = load_agent(str(pretrained_checkpoint())).compile()
    w = resolve_capacity(load_workload(small_suite / "mlp_train.json"), fraction=0.25)
    solution = agent.solve(w, time_limit=1e-9, restarts_share=0.0)
    assert solution.extra["rollouts"] == 0
    assert validation_errors(w, solution.offsets, w.capacity) == []
    assert solution.estimated_time_s <= solve_msa(w).estimated_time_s
    hybrid = agent.solve(w, time_limit=1e-9)  # the default hybrid
    assert hybrid.solver == HYBRID
    assert validation_errors(w, hybrid.offsets, w.capacity) == []
    assert hybrid.estimated_time_s <= solve_msa(w).estimated_time_s
