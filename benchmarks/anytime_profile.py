"""The anytime profile: every search solver at the same time limits on the held-out programs.

For every held-out program at capacity fractions 0.1, 0.25 and 0.5, the agents (the
shipped v2 one and the v1 one, for comparison), ``restarts``, ``beam`` over game v2 and
``cpsat`` run at time limits of 1, 5 and 20 s; the figure is the speed-up over msa. Jobs
run two at a time, each solver on one core (cpsat with one worker, XLA with one thread),
so equal limits mean equal compute. The agents are loaded and compiled once per worker
before any timed job.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from mallocmuzero.benchmarks import job_pool
from mallocmuzero.benchmarks.external_yardsticks import area_share, minimalloc_instances
from mallocmuzero.env import suite
from mallocmuzero.env.solution import Solution
from mallocmuzero.env.workload import Workload, resolve_capacity
from mallocmuzero.solvers.restarts import HYBRID_SHARE, OWN_ORDER_SHARE

FRACTIONS = (0.1, 0.25, 0.5)
LIMITS = (1.0, 5.0, 20.0, 60.0)
BEST_KNOWN_S = LIMITS[-1]  # the shipped agent, restarts, beam and cpsat only: the best known
MINIMALLOC_S = 20.0
RESTARTS_SHARE = HYBRID_SHARE  # the hybrids: restarts first, then a search from its order
HYBRIDS = ("restarts+agent", "restarts+beam")  # the shipped agent; beam, the no-learning check
ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
_AGENTS: dict = {}  # per worker process: label -> loaded agent
_DIGESTS: dict = {}  # per worker process: label -> its checkpoint's digest


def hybrid_description() -> str:
    """How the hybrids split a limit, in words (the text of every report that shows them)."""
    rest = f"restarts for {RESTARTS_SHARE:g} of the limit"
    if OWN_ORDER_SHARE:
        rest = (f"the agent's greedy rollouts from msa's own order (at most "
                f"{OWN_ORDER_SHARE:g} of the limit; what they leave goes on), restarts for "
                f"{RESTARTS_SHARE:g} of what is left")  # fmt: skip
    return (f"{rest}, then the agent plays game v2 from the best order restarts found, the "
            "best placement kept")  # fmt: skip


def _init_worker(agents: dict[str, str]) -> None:
    """Load and compile every agent once in this worker (one XLA thread)."""
    os.environ["XLA_FLAGS"] = ONE_THREAD
    from mallocmuzero.agent.checkpoint import checkpoint_digest
    from mallocmuzero.agent.solve import load_agent

    for label, checkpoint in agents.items():
        _AGENTS[label] = load_agent(checkpoint).compile()
        _DIGESTS[label] = checkpoint_digest(checkpoint)


def first_agent() -> str:
    """The label of this worker's first agent (the shipped one), which the hybrids run."""
    return next(iter(_AGENTS))


def run_job(job: tuple) -> dict:
    """One solver on one case at one limit: its speed-up over msa."""
    from mallocmuzero.solvers.beam import solve_beam
    from mallocmuzero.solvers.cpsat import solve_cpsat
    from mallocmuzero.solvers.greedy import solve_msa
    from mallocmuzero.solvers.packing import solve_packing
    from mallocmuzero.solvers.restarts import solve_restarts

    name, fraction, workload, solver, limit, pick = job
    if solver in _AGENTS:
        solution = _AGENTS[solver].solve(workload, time_limit=limit, restarts_share=0.0)
    elif solver == "restarts":
        solution = solve_restarts(workload, time_limit=limit)
    elif solver == "beam":
        solution = solve_beam(workload, 16, limit, 8, *pick)
    elif solver in HYBRIDS:
        solution = hybrid(workload, solver.split("+")[1], limit, pick)
    elif solver == "packing":
        solution = solve_packing(workload, time_limit=limit)
    else:
        solution = solve_cpsat(workload, time_limit=limit, workers=1)
    msa = solve_msa(workload).estimated_time_s
    placed = solution.offsets >= 0
    return {
        "workload": name,
        "fraction": fraction,
        "solver": solver,
        "limit_s": limit,
        "speedup_over_msa": msa / solution.estimated_time_s,
        "wall_s": float(solution.extra.get("wall_time_s", limit)),
        "placeable": int((~workload.pinned).sum()),  # unpinned, as the issue counts them
        "area_share": area_share(workload, solution.offsets),
        "full": bool(placed[~workload.pinned].all()),
        "from_completion": bool(solution.extra.get("from_completion", False)),
        **provenance(solver),
        **{
            k: solution.extra[k]
            for k in ("rollouts", "tries", "restarts_tries", "from_refine", "from_own_order")
            if k in solution.extra
        },
    }


def hybrid(workload: Workload, search: str, limit: float, pick: tuple[int, str],
           own_order_share: float = OWN_ORDER_SHARE) -> Solution:  # fmt: skip
    """``search`` ("agent": this worker's first agent, or "beam") after restarts, at ``limit``.

    Restarts gets ``RESTARTS_SHARE``; the agent's hybrid is what ``solve --solver agent``
    runs, beam's the same algorithm with beam in the agent's place (``pick``: its game).
    """
    from mallocmuzero.solvers.beam import solve_beam
    from mallocmuzero.solvers.restarts import restarts_then

    if search == "agent":
        return _AGENTS[first_agent()].solve(
            workload, time_limit=limit, restarts_share=RESTARTS_SHARE,
            own_order_share=own_order_share,
        )  # fmt: skip

    def beam(order, seconds):
        return solve_beam(workload, 16, seconds, 8, *pick, order=order)

    return restarts_then(workload, beam, limit, RESTARTS_SHARE, own_order_share=own_order_share)


def held_out_cases(workloads: Sequence[Workload]) -> list[tuple[str, float, Workload]]:
    """(program, fraction, workload at that capacity) of the held-out split at ``FRACTIONS``."""
    return [(w.name, f, resolve_capacity(w, fraction=f)) for w in workloads
            if suite.split_of(w.name) == "heldout" for f in FRACTIONS]  # fmt: skip


def _key(row: dict) -> tuple:
    return (row["workload"], row["fraction"], row["solver"], row["limit_s"])


def own_order_share_of(solver: str) -> float:
    """The own-order share ``solver`` (a label, ``@snapshot`` allowed) runs with.

    The hybrids run with :data:`OWN_ORDER_SHARE`, every other solver with 0. Rows carry it,
    so that a cache never hands a hybrid measured with another share to today's report.
    """
    return OWN_ORDER_SHARE if solver.partition("@")[0] in HYBRIDS else 0.0


def agent_of(solver: str) -> str | None:
    """The label of this worker's agent that ``solver`` runs; None for a solver without one.

    An agent's own label, ``kind@label`` (the learning curve's snapshots), or this
    worker's first agent for any other solver of the agent's kind (``agent``,
    ``restarts+agent``, the own-order benchmark's ``agent@share``).
    """
    kind, _, label = solver.partition("@")
    for name in (label, solver):
        if name in _AGENTS:
            return name
    return first_agent() if "agent" in kind.split("+") else None


def agent_used(agent: str | None) -> dict:
    """The agent a row was measured with: its label here and its checkpoint's digest.

    Both None for a solver without one; :func:`current_rows` checks them against today's.
    """
    return {"agent": agent, "agent_digest": _DIGESTS.get(agent)}


def provenance(solver: str) -> dict:
    """What a row of ``solver`` was measured with beyond its key.

    The own-order share it runs with (:func:`own_order_share_of`) and the agent it ran
    (:func:`agent_of`, :func:`agent_used`).
    """
    return {"own_order_share": own_order_share_of(solver), **agent_used(agent_of(solver))}


def current_rows(done: dict, agents: dict[str, str]) -> dict:
    """The cached rows measured as today's solvers run, with today's ``agents``.

    ``agents`` maps the run's labels to checkpoints: a row whose agent's checkpoint has
    other parameters now (or that predates the digests) is measured again, as is a hybrid
    row of another own-order share (:func:`own_order_share_of`).
    """
    from mallocmuzero.agent.checkpoint import checkpoint_digest

    digests = {label: checkpoint_digest(path) for label, path in agents.items()}

    def current(row: dict) -> bool:
        same_agent = "agent_digest" in row and (
            row["agent"] is None or digests.get(row["agent"]) == row["agent_digest"]
        )
        return same_agent and row.get("own_order_share", 0.0) == own_order_share_of(row["solver"])

    return {key: row for key, row in done.items() if current(row)}


def _held_out(rows: list[dict]) -> tuple[dict[tuple, dict], list[tuple]]:
    """The held-out programs' rows by (workload, fraction, solver, limit), and their cases."""
    mine = [r for r in rows if r["fraction"] > 0]  # fraction 0: MiniMalloc's instances
    return {_key(r): r for r in mine}, sorted({(r["workload"], r["fraction"]) for r in mine})


def run(
    workloads: list[Workload],
    agents: dict[str, str],
    pick: tuple[int, str],
    minimalloc: Path,
    progress: Callable[[str], None],
    cache: Path,
    processes: int = 2,
) -> list[dict]:
    """Every solver on every held-out case at every limit, then MiniMalloc's instances.

    The first of ``agents`` is the shipped one: only it runs at ``BEST_KNOWN_S`` beside
    restarts, beam and cpsat (the best known result per case); the other agents and the
    ``HYBRIDS`` (restarts for ``RESTARTS_SHARE`` of the limit, then the shipped agent or
    beam from the best order found) stop at the limit before. On MiniMalloc's instances
    (fraction 0: their own capacity) the agents, restarts, beam, the hybrids and the packing
    search run at ``MINIMALLOC_S``. Finished jobs are kept in ``cache``.
    """
    done = current_rows(job_pool.cached_rows(cache, _key), agents)
    cases = held_out_cases(workloads)
    jobs = [
        (name, f, w, solver, limit, pick)
        for limit in LIMITS
        for name, f, w in cases
        for solver in (*agents, "restarts", "beam", "cpsat", *HYBRIDS)
        if limit < BEST_KNOWN_S or solver not in (*list(agents)[1:], *HYBRIDS)
    ]
    for letter, w in minimalloc_instances(minimalloc):
        solvers = (*agents, "restarts", "beam", *HYBRIDS, "packing")
        jobs += [(f"MiniMalloc {letter}", 0.0, w, s, MINIMALLOC_S, pick) for s in solvers]
    jobs = [job for job in jobs if (job[0], job[1], job[3], job[4]) not in done]
    return job_pool.run_jobs(jobs, run_job, done, _key, cache, progress, "speedup_over_msa",
                             processes, _init_worker, (agents,))  # fmt: skip


def plot(rows: list[dict], path: Path) -> None:
    """Speed-up over msa against the time limit: one panel per program and fraction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r["fraction"] > 0]  # the held-out programs
    programs = sorted({r["workload"] for r in rows})
    solvers = list(dict.fromkeys(r["solver"] for r in rows))
    curves: dict[tuple, list] = {}
    for r in rows:
        curves.setdefault((r["workload"], r["fraction"], r["solver"]), []).append(
            (r["limit_s"], r["speedup_over_msa"])
        )
    figure, axes = plt.subplots(len(FRACTIONS), len(programs), squeeze=False,
                                figsize=(3.2 * len(programs), 2.6 * len(FRACTIONS)))  # fmt: skip
    for i, fraction in enumerate(FRACTIONS):
        for j, program in enumerate(programs):
            ax = axes[i][j]
            for solver in solvers:
                mine = sorted(curves.get((program, fraction, solver), []))
                if mine:
                    ax.plot(*zip(*mine), marker="o", label=solver)
            ax.axhline(1.0, color="grey", linewidth=0.8)
            ax.set_xscale("log")
            ax.set_xticks(LIMITS, [f"{x:g}" for x in LIMITS])
            ax.set_title(f"{program} @ {fraction:g}", fontsize=9)
            if j == 0:
                ax.set_ylabel("speed-up over msa")
            if i == len(FRACTIONS) - 1:
                ax.set_xlabel("time limit (s)")
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def markdown(rows: list[dict], reference: str = "restarts") -> str:
    """Per limit and solver: mean speed-up over msa, cases at least as good as restarts."""
    rows_by, cases = _held_out(rows)
    by = {key: row["speedup_over_msa"] for key, row in rows_by.items()}
    solvers = list(dict.fromkeys(key[2] for key in by))
    lines = ["| limit | solver | mean speed-up over msa | worst | at least as good as "
             f"{reference} | cases |", "|---|---|---|---|---|---|"]  # fmt: skip
    for limit in LIMITS:
        for solver in solvers:
            mine = [(c, by[(*c, solver, limit)]) for c in cases if (*c, solver, limit) in by]
            if not mine:
                continue
            values = [v for _, v in mine]
            good = sum(v >= by.get((*c, reference, limit), float("inf")) * (1 - 1e-9)
                       for c, v in mine)  # fmt: skip
            lines.append(f"| {limit:g} s | {solver} | {sum(values) / len(values):.4f} "
                         f"| {min(values):.4f} | {good} | {len(values)} |")  # fmt: skip
    return "\n".join(lines)


def mean_edge(rows: list[dict], solver: str, other: str, limit: float) -> float:
    """Mean speed-up of ``solver`` less ``other``'s over the held-out cases both ran."""
    rows_by, cases = _held_out(rows)
    pairs = [(rows_by[(*c, solver, limit)], rows_by[(*c, other, limit)]) for c in cases
             if (*c, solver, limit) in rows_by and (*c, other, limit) in rows_by]  # fmt: skip
    if not pairs:
        return float("nan")
    return sum(a["speedup_over_msa"] - b["speedup_over_msa"] for a, b in pairs) / len(pairs)


def bar(rows: list[dict], solvers: Sequence[str] = ("agent", *HYBRIDS)) -> str:
    """Issue 11's bar per solver and limit: against msa, restarts and cpsat at equal time.

    Headroom recovered is measured against the best speed-up any solver reached on the
    case at any limit of the profile (the best known: ``BEST_KNOWN_S`` is the longest).
    """
    by, cases = _held_out(rows)
    best = {c: max(r["speedup_over_msa"] for key, r in by.items() if key[:2] == c)
            for c in cases}  # fmt: skip
    lines = [
        "| solver | limit | worse than msa by > 0.1% | >= restarts where restarts beats msa "
        "| mean ratio to restarts | >= cpsat on 300+ placeable buffers "
        "| headroom recovered | answer from a lookahead completion |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for solver, limit in itertools.product(solvers, LIMITS):
        mine = [c for c in cases if (*c, solver, limit) in by and (*c, "restarts", limit) in by]
        if not mine:
            continue
        a = {c: by[(*c, solver, limit)]["speedup_over_msa"] for c in mine}
        r = {c: by[(*c, "restarts", limit)]["speedup_over_msa"] for c in mine}
        worse = sum(a[c] < 1 / 1.001 for c in mine)
        contested = [c for c in mine if r[c] > 1 + 1e-9]
        held = sum(a[c] >= r[c] * (1 - 1e-9) for c in contested)
        ratio = sum(a[c] / r[c] for c in mine) / len(mine)
        large = [c for c in mine if by[(*c, solver, limit)]["placeable"] >= 300
                 and (*c, "cpsat", limit) in by]  # fmt: skip
        beats_cpsat = sum(a[c] >= by[(*c, "cpsat", limit)]["speedup_over_msa"] * (1 - 1e-9)
                          for c in large)  # fmt: skip
        headroom = [(1 - 1 / a[c]) / (1 - 1 / best[c]) for c in mine if best[c] > 1 + 1e-9]
        recovered = f"{sum(headroom) / len(headroom):.1%}" if headroom else "-"
        completions = sum(by[(*c, solver, limit)].get("from_completion", False) for c in mine)
        plays = any("rollouts" in by[(*c, solver, limit)] for c in mine)  # beam has no lookahead
        from_lookahead = f"{completions} of {len(mine)}" if plays else "-"
        lines.append(
            f"| {solver} | {limit:g} s | {worse} of {len(mine)} | {held} of {len(contested)} "
            f"| {ratio:.4f} | {beats_cpsat} of {len(large)} | {recovered} "
            f"| {from_lookahead} |"
        )
    return "\n".join(lines)


def lost_cases(rows: list[dict], agent: str = "agent") -> list[tuple[str, float]]:
    """The held-out cases where restarts beats the agent alone at 20 s."""
    by, cases = _held_out(rows)
    return [c for c in cases if (*c, agent, 20.0) in by and (*c, "restarts", 20.0) in by
            and by[(*c, agent, 20.0)]["speedup_over_msa"]
            < by[(*c, "restarts", 20.0)]["speedup_over_msa"] * (1 - 1e-9)]  # fmt: skip


def lost_case_figures(rows: list[dict], agent: str = "agent") -> dict:
    """What more time gives on :func:`lost_cases`.

    The agent's lowest and highest gain from 20 s to ``BEST_KNOWN_S``, and on how many of
    the cases beam at ``BEST_KNOWN_S`` stays below restarts at 1 s.
    """
    by, _ = _held_out(rows)
    speed = lambda c, solver, limit: by[(*c, solver, limit)]["speedup_over_msa"]  # noqa: E731
    lost = [c for c in lost_cases(rows, agent) if (*c, agent, BEST_KNOWN_S) in by]
    gains = [speed(c, agent, BEST_KNOWN_S) / speed(c, agent, 20.0) - 1 for c in lost]
    below = sum(speed(c, "beam", BEST_KNOWN_S) < speed(c, "restarts", 1.0) for c in lost
                if (*c, "beam", BEST_KNOWN_S) in by and (*c, "restarts", 1.0) in by)  # fmt: skip
    return {"cases": len(lost), "gain_low": min(gains, default=0.0),
            "gain_high": max(gains, default=0.0), "beam_below_restarts_1s": below}  # fmt: skip


def limits_markdown(rows: list[dict], agent: str = "agent") -> str:
    """Where restarts beats the agent alone at 20 s: what more time gives each side.

    The agent's and beam's speed-ups from 5 to 60 s (and the agent's rollouts at 60 s)
    against restarts' from 1 to 60 s (and its tries at 60 s), and the hybrids at 20 s.
    """
    by, _ = _held_out(rows)
    lost = lost_cases(rows, agent)

    def at(case: tuple, solver: str, limit: float, count: str = "") -> str:
        row = by.get((*case, solver, limit))
        if row is None:
            return "-"
        return f"{row['speedup_over_msa']:.4f}" + (f" ({row[count]:,})" if count in row else "")

    lines = ["| case | agent 5 s | agent 20 s | agent 60 s (rollouts) | beam 60 s | restarts 1 s "
             "| restarts 60 s (tries) | restarts+agent 20 s | restarts+beam 20 s |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for case in lost:
        lines.append(
            f"| {case[0]}@{case[1]:g} | {at(case, agent, 5.0)} | {at(case, agent, 20.0)} "
            f"| {at(case, agent, BEST_KNOWN_S, 'rollouts')} | {at(case, 'beam', BEST_KNOWN_S)} "
            f"| {at(case, 'restarts', 1.0)} | {at(case, 'restarts', BEST_KNOWN_S, 'tries')} "
            f"| {at(case, HYBRIDS[0], 20.0)} | {at(case, HYBRIDS[1], 20.0)} |"
        )
    return "\n".join(lines)


def minimalloc_markdown(rows: list[dict]) -> str:
    """Per solver on MiniMalloc's instances at the longest limit: full packings, area."""
    rows = [r for r in rows if r["fraction"] == 0]
    lines = ["| solver | full packings | mean share of the area | mean speed-up over msa |",
             "|---|---|---|---|"]  # fmt: skip
    for solver in dict.fromkeys(r["solver"] for r in rows):
        mine = [r for r in rows if r["solver"] == solver]
        lines.append(
            f"| {solver} | {sum(r['full'] for r in mine)} of {len(mine)} "
            f"| {sum(r['area_share'] for r in mine) / len(mine):.1%} "
            f"| {sum(r['speedup_over_msa'] for r in mine) / len(mine):.4f} |"
        )
    return "\n".join(lines)
