"""What a run shows its user: the evaluator's rotation, TensorBoard's curves, soak memory."""

from __future__ import annotations

import functools

from mallocmuzero.actors.evaluator import EvaluatorService, rotation_order
from mallocmuzero.agent.networks import init_params
from mallocmuzero.agent.solve import agent_network, observation_spec
from mallocmuzero.benchmarks.distributed import memory_table
from mallocmuzero.cluster.components import evaluator_parts
from mallocmuzero.cluster.monitor import TensorBoard
from mallocmuzero.cluster.progress import format_duration, progress_line, time_line
from mallocmuzero.configs.loader import load_config
from mallocmuzero.env.random_workload import random_workload


def test_rotation_puts_a_large_case_first_and_covers_every_case():
    large = [4, 5]
    orders = [rotation_order(6, large, e) for e in range(6)]
    assert [o[0] for o in orders] == [4, 5, 4, 5, 4, 5]
    assert all(sorted(o) == list(range(6)) for o in orders)
    # Under a budget that allows two cases, the second ones cycle through the rest.
    assert {o[1] for o in orders} | {4, 5} == set(range(6))
    assert rotation_order(3, [], 1) == [1, 2, 0]
    assert rotation_order(0, [], 0) == []


def test_evaluator_always_plays_the_large_case_within_its_budget():
    config = load_config("configs/smoke.py", ["evaluator.large_buffers=35",
                                              "evaluator.budget_s=0.0"])  # fmt: skip
    small = random_workload(1, num_buffers=12, num_instructions=12)
    large = random_workload(2, num_buffers=40, num_instructions=30)
    parts = functools.partial(evaluator_parts, config)
    evaluator = EvaluatorService(parts, config.evaluator, [small, large])
    net, spec = agent_network(config), observation_spec(config)
    params = init_params(net, spec.size, 0)
    names = []
    for version in range(3):
        out = evaluator.evaluate(params, version)
        played = [k for k in out["scalars"] if k.startswith(f"gain/{large.name}@")]
        assert played and out["scalars"]["cases"] == 1.0  # budget 0: the first case only
        assert out["scalars"]["gain/large_mean"] == out["scalars"][played[0]]
        assert out["scalars"]["gain/mean"] == out["scalars"]["gain/large_mean"]
        ratio = out["scalars"][played[0].replace("gain/", "ratio/")]  # restarts, same time
        assert ratio > 0 and out["scalars"]["ratio/mean"] == ratio
        assert any(tag.endswith("/agent") for tag in out["images"])
        names.append(played[0])
    assert len(set(names)) == len(config.evaluator.fractions)  # large cases rotate


def test_large_programs_join_the_evaluators_cases_up_to_their_size(small_suite, tmp_path):
    """``evaluator.large_programs``: a folder's programs up to a size join the held-out
    split; a folder without programs is a one-line error naming the setting."""
    import pytest

    from mallocmuzero.cluster.components import evaluation_workloads
    from mallocmuzero.env.workload import save_workload
    from mallocmuzero.errors import UserError

    for seed, buffers in ((1, 40), (2, 80)):
        w = random_workload(seed, num_buffers=buffers, num_instructions=30)
        save_workload(w, tmp_path / "large" / f"{w.name}.json")
    settings = [f"workloads.dir={small_suite}", "evaluator.large_programs_max_buffers=50"]
    plain = evaluation_workloads(load_config("configs/smoke.py", settings))
    assert [w.name for w in plain] == ["rnn_scan_train"]  # the held-out split alone
    config = load_config(
        "configs/smoke.py", [*settings, f"evaluator.large_programs={tmp_path}/large"]
    )
    cases = evaluation_workloads(config)
    assert [w.num_buffers for w in cases[1:]] == [40] and cases[0].name == "rnn_scan_train"
    empty = load_config("configs/smoke.py", [*settings, f"evaluator.large_programs={tmp_path}"])
    with pytest.raises(UserError, match="evaluator.large_programs: .* holds no workload files"):
        evaluation_workloads(empty)


def read_steps(folder) -> dict[str, list[int]]:
    """Steps per tag as the TensorBoard server reads them (it honours session starts)."""
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), tensor_size_guidance={"tensors": 0})
    events.Reload()
    return {tag: [e.step for e in events.Tensors(tag)] for tag in events.Tags()["tensors"]}


def test_scalars_once_per_step_and_a_resume_replaces_what_followed_its_checkpoint(tmp_path):
    first = TensorBoard(tmp_path)
    for step in (0, 5, 5, 10, 15):  # a log interval in which the learner did not move
        first.scalars(step, {"loss/total": float(step)})
    first.close()  # a run killed at step 15 whose last checkpoint was step 10
    assert read_steps(tmp_path / "tensorboard")["loss/total"] == [0, 5, 10, 15]

    resumed = TensorBoard(tmp_path, start_step=10)
    for step in (10, 12, 20):
        resumed.scalars(step, {"loss/total": -float(step)})
    resumed.close()
    assert read_steps(tmp_path / "tensorboard")["loss/total"] == [0, 5, 10, 12, 20]


def test_memory_table_separates_checkpoints_and_judges_flatness():
    def snap(t: int) -> dict:
        writing = t == 7
        return {
            1: ("driver", "", 100.0 + 2 * t),  # grows 2 MiB a minute: not flat by minute 9
            2: ("ReplayService", "checkpoint" if writing else "", 900.0 if writing else 500.0),
            3: ("SelfPlayService", "run", 200.0),
            4: ("SelfPlayService", "run", 210.0),
        }

    rows = {r["process"]: r for r in memory_table([(60.0 * t, snap(t)) for t in range(12)], 300)}
    assert rows["ReplayService"]["flat"] and rows["ReplayService"]["max"] == 500.0
    assert rows["ReplayService"]["checkpoint_peak"] == 900.0
    assert rows["ReplayService"]["checkpoint_samples"] == 1
    assert not rows["driver"]["flat"] and rows["driver"]["at_start"] == 110.0
    assert rows["SelfPlayService #2"]["end"] == 210.0


def test_durations_read_like_a_clock():
    assert format_duration(42) == "42s"
    assert format_duration(725) == "12m05s"
    assert format_duration(3725) == "1h02m"


def test_progress_line_and_time_left():
    assert time_line(65, 30, 0, 100, 0) == "1m05s elapsed, 28m55s left"
    assert time_line(60, 0, 1000, 110, 10) == "1m00s elapsed, 8m54s left"  # 890 at 100 a minute
    assert time_line(5, 0, 1000, 10, 10) == "5s elapsed"  # no step yet: no estimate
    scalars = {"self_play/steps_per_s": 1234.5, "replay/size": 5000, "loss/total": 0.25}
    line = progress_line(7, "5s elapsed", 2, scalars, {"gain/mean": 0.05, "gain/large_mean": 0.1})
    assert line.startswith("[train] step 7 | 5s elapsed | self-play 1,234 steps/s (2 actors)")
    assert line.endswith("loss 0.2500 | eval gain/msa +5.00% (large +10.00%)")
    evaluated = {"gain/mean": 0.05, "ratio/mean": 0.98}
    assert progress_line(7, "5s elapsed", 2, scalars, evaluated).endswith(
        "eval gain/msa +5.00%, x0.9800 of restarts at equal time"
    )
