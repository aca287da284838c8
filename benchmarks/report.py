"""The text of BENCHMARKS.md: every section's markdown from the raw results.

``run_all`` runs the benchmarks and stores their raw results in BENCHMARKS.json; this
module renders them, so a section's text can change without rerunning it.
"""

from __future__ import annotations

import numpy as np

from mallocmuzero.benchmarks import (
    anytime_profile,
    baseline_quality,
    distributed,
    external_yardsticks,
    pick_encoding,
)
from mallocmuzero.benchmarks.tables import markdown_table


def quality_markdown(cases: list[baseline_quality.Case], budgets: dict[str, float]) -> str:
    """The baseline table: times relative to all-slow, cpsat's status, msa's headroom."""
    header = (
        ["workload", "buffers", "cap."]
        + [f"{c} speed-up" for c in baseline_quality.COLUMNS[1:]]
        + ["cpsat optimal", "bound speed-up", "msa headroom"]
    )
    rows = []
    for c in cases:
        t0 = c.times["all-slow"]
        rows.append(
            [c.workload, str(c.num_buffers), f"{c.fraction:g}"]
            + [f"{t0 / c.times[k]:.4f}" for k in baseline_quality.COLUMNS[1:]]
            + [
                "yes" if c.cpsat_optimal else "no",
                f"{t0 / c.cpsat_bound:.4f}" if c.cpsat_bound == c.cpsat_bound else "none",
                f"{c.msa_headroom:.2%}",
            ]
        )
    recovered = {
        k: [r for c in cases if (r := c.headroom_recovered(k)) is not None]
        for k in ("restarts", "beam16", "beam64", "cpsat")
    }
    with_headroom = sum(1 for c in cases if c.headroom_recovered("msa") is not None)
    summary = [
        f"- Cases: {len(cases)}; cpsat proved optimality in "
        f"{sum(c.cpsat_optimal for c in cases)}; msa leaves headroom in {with_headroom}.",
        "- Mean share of msa's headroom recovered, over the cases with headroom: "
        + ", ".join(f"{k} {np.mean(v):.0%}" for k, v in recovered.items() if v)
        + ".",
        f"- Budgets: restarts {budgets['restarts_s']:g} s, "
        f"beam up to {budgets['beam_limit_s']:g} s (the best completion so far is kept at "
        f"the limit), cpsat {budgets['cpsat_limit_s']:g} s on 2 workers.",
        "- Mean wall time per case: "
        + ", ".join(
            f"{k} {np.mean([c.seconds[k] for c in cases]):.1f} s"
            for k in ("msa", "restarts", "beam16", "beam64", "cpsat")
        )
        + ".",
    ]
    return markdown_table(header, rows) + "\n\n" + "\n".join(summary)


def restarts_note(rows: list) -> str:
    """How restarts fares against planning inside the game with the exact model."""
    over_beam = sum(r.restarts < r.beam for r in rows)
    under_beam = sum(r.restarts > r.beam for r in rows)
    return (
        f"Restarts beats beam16, which plans with the exact model inside the game, in "
        f"{over_beam} of {len(rows)} cases at the same wall time (beam16 wins {under_beam}): "
        "restarts searches over presentation orders, which the game (spec v1) fixes to "
        "msa's; that even exact-model planning inside the game loses to it suggests much of "
        "its lead lies outside the agent's action space."
    )


ABLATION_WEIGHTS = (0.0, 0.5, 1.0)


def ablation_markdown(result: dict) -> str:
    """Gain over msa of the greedy agent at each rollout weight, beside beam1."""
    evaluated = {(r["workload"], r["fraction"]): r for r in result["rows"]}
    header = ["workload", "cap.", *(f"w={w:g}" for w in ABLATION_WEIGHTS), "beam1"]
    lines = []
    for row in result.get("ablation", []):
        e = evaluated[(row["workload"], row["fraction"])]
        gains = [e["msa"] / row["times"][str(w)] - 1 for w in ABLATION_WEIGHTS]
        cells = [f"{g:+.2%}" for g in [*gains, e["msa"] / e["lookahead"] - 1]]
        lines.append([row["workload"], f"{row['fraction']:g}", *cells])
    return markdown_table(header, lines)


def agent_markdown(result: dict) -> str:
    """The held-out evaluation table of the shipped checkpoint."""
    from mallocmuzero.solvers.tournament import EvaluationRow
    from mallocmuzero.solvers.tournament_report import (
        EVALUATION_HEADER,
        evaluation_summary,
        evaluation_table,
    )

    rows = [EvaluationRow(**r) for r in result["rows"]]
    meta = result["meta"]
    return (
        f"Checkpoint `{result['checkpoint']}` ({meta.get('learner_steps', '?')} learner steps, "
        f"{meta.get('self_play_steps', '?'):,} self-play steps). The agent is a greedy search "
        "rollout at the trained rollout weight and one at weight 1, plus 8 sampled ones, the "
        "best kept by the cost model (`solve --solver agent --samples 8`); restarts and "
        "beam16 get the agent's wall time; beam1 (following the "
        "lookahead observation's best completion, no learning) runs to the end; cpsat 30 s."
        "\n\n"
        + markdown_table(EVALUATION_HEADER, evaluation_table(rows))
        + "\n\n"
        + evaluation_summary(rows)
        + ".\n\n"
        + restarts_note(rows)
        + "\n\nThe rollout weight at solve time (`--rollout-weight`), one greedy search rollout "
        "each, gain over msa: w=0 is the learned model alone, w=1 lets the lookahead's "
        "rollouts decide the root's Q-values, the checkpoint was trained at its config's "
        "weight; beam1 follows the lookahead without any network.\n\n" + ablation_markdown(result)
    )


def speed_markdown(search: dict, learner: dict) -> str:
    """Section (c): the self-play core against the raw search, and the learner."""
    variants = {"": "", "_lookahead": ", lookahead observations",
                "_lookahead_v1": ", lookahead observations, game v1",
                "_lookahead_one_group": ", lookahead observations, one group"}  # fmt: skip
    rows = [(f"{who}{what}", kind, suffix) for suffix, what in variants.items()
            for who, kind in (("raw search call", "raw"), ("self-play core", "core"))]  # fmt: skip
    one_cpu = search.get("one_cpu")
    table = "\n".join(
        f"| {label} | {search[f'{kind}{suffix}_sims_per_s']:,.0f} simulations | "
        + ("1.00" if kind == "raw" else f"{search[f'ratio{suffix}']:.2f}")
        + " |"
        for label, kind, suffix in rows
    )
    if one_cpu:
        table += (
            f"\n| one thread: raw search call, lookahead observations | "
            f"{one_cpu['raw_lookahead_sims_per_s']:,.0f} simulations | 1.00 |"
            f"\n| one thread: self-play core with lookahead | "
            f"{one_cpu['core_lookahead_sims_per_s']:,.0f} simulations | "
            f"{one_cpu['ratio_lookahead']:.2f} |"
        )
    return f"""\
Default config (game v2 with 8 rule pick slots, 64 games, 16 simulations, latent 128, MLP
256x256), random parameters.
The self-play core (game step, batched search, bookkeeping) against the raw jitted mctx
call on the same network, batch and states (the core's current ones: a search costs more
on mid-game states than on fresh ones), in the same run, without and with the lookahead
observation (an msa completion per legal action and game step, msa's own reused from the
previous step's chosen action, the others guided by that completion: a best fit is searched
only for buffers whose live range meets one decided otherwise, the same values bit for bit;
the game's share of the work, which grows with the program); and jitted learner steps on
synthetic batches of {learner["batch"]} ({learner["device"]}; XLA uses every core here).

With {search.get("threads", "?")} threads, as here, the core splits its games in
{search.get("groups", 1)} groups and starts each group's search before stepping the group
searched before it, so that the game step runs on one core while the search runs on the
other (an XLA search of this size keeps about one core busy). That is how an actor that
declares two CPUs runs, and the driver of a local run. "One group" is the same core with
its game steps between its searches. "One thread" is a separate process held to one XLA
and one numba thread, as an actor that declares one CPU (the default) runs: one group.

| what | per second | ratio |
|---|---|---|
{table}
| learner train step | {learner["train_steps_per_s"]:.1f} steps | |"""


def render(raw: dict) -> str:
    """BENCHMARKS.md from the raw results of every section."""
    tp, search, learner = raw["throughput"], raw["search"], raw["learner"]
    cases = [baseline_quality.Case(**c) for c in raw["quality"]]
    budgets = raw.get("budgets", {"restarts_s": 5.0, "beam_limit_s": 60.0, "cpsat_limit_s": 30.0})
    w = raw["written"]
    return f"""# Benchmarks

Written by `make bench` ({w["date"]}, {w["machine"]}; the last pass reran
{", ".join(w["sections"])}, the other sections come from earlier passes on the same machine).
Workloads: the built-in suite (`make workloads`), real XLA CPU compilations of JAX programs.
Hardware of cost model v1: 100 TFLOP/s, slow 1 TB/s, fast 10 TB/s.
`python -m mallocmuzero.benchmarks.run_all --sections ...` reruns some sections and keeps
the others' results from `BENCHMARKS.json`.

## (a) Game throughput

Batched game of {tp["batch"]} slots over every built-in workload at capacity fractions drawn
from [0.05, 0.6], observations and masks included, against a single-game loop through the
same API in the same run. The kernels run on one thread, so these are per-core rates.

| loop | steps/s per core | ratio |
|---|---|---|
| single game | {tp["single_steps_per_s"]:,.0f} | 1.0 |
| batch of {tp["batch"]} | {tp["batched_steps_per_s"]:,.0f} | {tp["ratio"]:.1f} |

## (b) Baseline quality

Speed-up over all-slow (higher is better) of every baseline, for every workload at
capacity fractions 0.1, 0.25 and 0.5 of its placeable peak. msa headroom is msa's time
over the best known time (cpsat's optimum where proven), minus one.

{quality_markdown(cases, budgets)}

## (c) Search and learner speed

{speed_markdown(search, learner)}

The learner role itself (Reverb sampling, prefetch, updates) at batch 64, 256 and 1024,
before and after this project's prefetching and Reverb's batched dataset, with its
waiting share: [BENCHMARKS-learner.md](BENCHMARKS-learner.md).

## (d) The distributed system

Real local runs (Ray runtime, Reverb server, learner, evaluator, actors), each figure read
back from the run's own TensorBoard events and averaged over the second half of the run:
total self-play steps per second with 1 and 2 actors, learner steps per second, the
fraction of learner time spent waiting for replay, the achieved sample-to-insert ratio
against the configured one, and the policy lag. Default config (64 games per actor,
16 simulations, batch 64, 1 sample per insert) on a
local Ray runtime on this {w["machine"]} machine: every role shares the same cores, so the
actor ratio shows contention here, not the scaling of a cluster.

{distributed.markdown(raw["distributed"])}

{_later_sections(raw)}

## More tables, written by their own commands

- [The learning curve](BENCHMARKS-curve.md) (`python -m mallocmuzero.benchmarks.learning_curve
  --run runs/curve`): every snapshot of a from-scratch run on the generated programs
  against restarts at the same time limit, on held-out and training families, with its PNG.
- [The shipped agent on unseen model families](BENCHMARKS-generalisation.md) (`python -m
  mallocmuzero.benchmarks.generalisation`): `solve --solver agent` against restarts and
  the same hybrid with beam at 5 and 20 s on 12 held-out-family cases, issue 20's bars,
  and what limits the learned solver where a bar is not met.
- [The hybrids' own-order phase](BENCHMARKS-own-order.md) (`python -m
  mallocmuzero.benchmarks.own_order`): `--own-order-share` 0 and 0.4 for the learned
  hybrid and its beam counterpart at 5 and 20 s on both held-out sets.
- [Full packings](BENCHMARKS-packing.md) (`python -m
  mallocmuzero.benchmarks.external_yardsticks`): the packing search on MiniMalloc's 11
  instances, OmniMalloc's allocators measured in the same run, MiniMalloc's published times.
- [Programs of real size](BENCHMARKS-large.md) (`python -m
  mallocmuzero.benchmarks.large_programs`): every solver at 5 and 20 s on train steps of
  about 1k, 3k and 10k buffers (the limit kept, validity, speed-up over msa, memory), and
  what a try, a step and a rollout cost against size, with fitted exponents and a PNG.
- [Time to first answer](BENCHMARKS-first-answer.md) (`python -m
  mallocmuzero.benchmarks.first_answer`): `solve --solver agent --time-limit 5` as new
  processes, one after another, from an empty user cache (exports and compiled code kept).
- [Learner throughput](BENCHMARKS-learner.md) (`python -m
  mallocmuzero.benchmarks.learner_throughput`): the learner role's steps/s at batch 64,
  256 and 1024 from a real Reverb table, before and after prefetching and fused updates,
  with its waiting share (section (c)'s learner figure is a train step alone).
- [Replay ceiling](BENCHMARKS-replay.md) (`python -m mallocmuzero.benchmarks.replay_ceiling`):
  one Reverb server under W writer processes and one sampler.
- [Parameter broadcast](BENCHMARKS-broadcast.md) (`python -m
  mallocmuzero.benchmarks.broadcast`): the learner's cost per publish and the latency to
  the last of N actors.
- [Scale model](BENCHMARKS-scale.md) (`python -m mallocmuzero.benchmarks.scale_model`):
  throughput for 1 to 1,000 actors from the three above and real runs, the component that
  saturates first, the settings that keep the learner fed, checked against real runs.
"""


def _later_sections(raw: dict) -> str:
    """Sections (e) to (h): the agents, the yardsticks, game v2's encoding, the profile."""
    rows = raw["anytime"]["rows"]

    def edge(limit: float) -> float:  # restarts+agent less restarts+beam, percentage points
        return 100 * anytime_profile.mean_edge(rows, *anytime_profile.HYBRIDS, limit)

    lost = anytime_profile.lost_case_figures(rows)
    return f"""## (e) The pretrained agent on held-out programs

{agent_markdown(raw["agent"])}

## (f) External yardsticks: MiniMalloc's challenging instances and OmniMalloc

The 11 instances of MiniMalloc's public challenging benchmark (google/minimalloc,
`benchmarks/challenging`, 154 to 454 buffers, capacity 1 MiB), imported with time
compressed to their event points. Every buffer of every instance fits (MiniMalloc packs
each in 0.5 to 5 s), so the optimum places 100% of the area, a 10x speed-up on cost model
v1's hardware. The project's solvers run at the same limits (restarts, beam of width 16,
cpsat, the canonical greedy and the packing search at 5 s and 20 s; msa and the shipped
agent at their own pace), beside OmniMalloc's allocators (PyPI `omnimalloc` 1.0.0,
default settings), which place every buffer with no capacity: their peak over the
capacity says whether they pack the instance, and the buffers above the capacity stay in
slow memory to score them in the game's terms.

{external_yardsticks.markdown(raw["yardsticks"])}

## (g) Game v2: choosing the pick encoding

Beam search over game v2 (planning with the exact model: pick and place children alike,
each scored by its msa completion) under each pick encoding and K, at widths 16 and 64,
against `restarts` at the same wall time ({raw["encoding"]["limit_s"]:g} s each, two jobs
at a time on the two cores): on the training split at capacity fractions 0.1, 0.25 and 0.5
(21 cases; speed-up over all-slow), and on MiniMalloc's 11 challenging instances, which
pack fully ("full": every buffer placed). v1's beam16 is kept for scale. The choice rule
is the spec's (section 3b): most cases where planning beats restarts (training split and
MiniMalloc together), then most full packings, then the smaller K; remaining ties go to
fewer losses, then more bytes placed. At 5 s, no encoding lets beam beat restarts on the
large training steps (lm_train_2layer at 0.1 and 0.25, strassen_512, cnn_forward at
0.25): a beam only gets a few dozen decisions deep there while restarts plays hundreds of
whole orders.

{pick_encoding.markdown(raw["encoding"])}

## (h) The anytime profile

Every search solver at time limits of 1, 5, 20 and 60 s on the held-out programs at
capacity fractions 0.1, 0.25 and 0.5: the shipped agent (game v2), the previous v1 agent
for comparison (up to 20 s), `restarts`, `beam` of width 16 over game v2 (K and encoding
{raw["anytime"]["beam_pick"][0]}, {raw["anytime"]["beam_pick"][1]}) and `cpsat`; and two
hybrids up to 20 s: `restarts+agent` (what `solve --solver agent --time-limit S` runs:
{anytime_profile.hybrid_description()}) and `restarts+beam` (the same with beam in the
agent's place: what planning with the exact model adds without learning). Two jobs at a
time, each solver on one core (cpsat with one worker, XLA with one thread); the agents are
compiled before any timed job. Every rollout stops at the limit, the first greedy one too
(wall times are in BENCHMARKS.json). Figures are speed-ups over msa (above 1 is better
than msa).

{anytime_profile.markdown(raw["anytime"]["rows"])}

Issue 11's bar, per solver and limit (the shipped agent alone and the hybrids; headroom
against the best known result: the best any solver reached on the case in this profile,
60 s included; the last column counts the cases where the agent's answer is a completion
its lookahead evaluated on the way, not a rollout's end):

{anytime_profile.bar(raw["anytime"]["rows"])}

What limits the agent alone, on the cases where restarts beats it at 20 s:

{anytime_profile.limits_markdown(raw["anytime"]["rows"])}

- **More time helps the agent alone little, and unevenly.** From 20 to 60 s it plays about
  three times the rollouts and gains {lost["gain_low"]:+.1%} to {lost["gain_high"]:+.1%} on
  these {lost["cases"]} cases; restarts keeps gaining over its hundreds of thousands of
  orders.
- **The game's reach from its base order.** Beam over game v2, planning with the exact
  model, stays below restarts' 1 s result on {lost["beam_below_restarts_1s"]} of these
  {lost["cases"]} cases even at 60 s: from msa's order, the shipped game's moves (8 pick
  slots, 8 offsets per placement) stay near that order, and the better mappings lie
  at orders far from it. From restarts' best order the same moves gain again: both hybrids
  beat restarts alone at 20 s on most of these cases.
- **Learning adds little over exact planning there.** Over the 15 cases the agent's
  hybrid's speed-up over msa differs from beam's by {edge(20.0):+.2f} percentage points at
  20 s and {edge(5.0):+.2f} at 5 s on average (on unseen model families, the same picture:
  [BENCHMARKS-generalisation.md](BENCHMARKS-generalisation.md)).
- **Next levers:** an accelerator learner with more actors, where a network with more
  capacity pays (the learning curve of the agent's hybrid is flat on 2 cores; the
  per-buffer `set` encoder shared over the pick and offset candidates measured worse at
  equal time on 2 CPU cores, where it halves the learner's rate:
  [BENCHMARKS-encoder.md](BENCHMARKS-encoder.md)), or an action that proposes the order
  itself. Tried and not ahead: more training from restarts-like orders (the shipped
  network saw them in its last 62 of 187 minutes), base orders restarts' own search keeps
  (`workloads.base_order_tries`), and the other solve-time candidates (README, after
  `--own-order-share`).

MiniMalloc's 11 challenging instances at {anytime_profile.MINIMALLOC_S:g} s (they all pack
fully: MiniMalloc places every buffer in under 5 s):

{anytime_profile.minimalloc_markdown(raw["anytime"]["rows"])}

![speed-up over msa against the time limit](BENCHMARKS-anytime.png)
"""
