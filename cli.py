"""The ``mallocmuzero`` command line: workloads, solving and validation.

User errors (a bad file, a bad flag) print one line and exit with code 2; an invalid
solution given to ``validate`` exits with code 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from functools import partial

from mallocmuzero.cache import user_cache_dir
from mallocmuzero.cli_workloads import (
    add_capacity,
    add_workloads_commands,
    fmt_bytes,
    load_with_capacity,
    print_table,
)
from mallocmuzero.errors import ArgumentError, UserError

DEFAULT_ENVIRONMENT = {
    "JAX_PLATFORMS": "cpu",  # the learner of a distributed run picks its own device
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "RAY_AUTH_MODE": "disabled",  # Ray 2.60's token-file warning
}


def _add_agent_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--restarts-share",
        type=float,
        default=None,
        help="agent, with --time-limit: this share of the limit goes to restarts first, and "
        "the agent plays the rest from the best order found (default 0.5 with a time limit, "
        "the best learned solver measured; 0: the agent alone)",
    )
    parser.add_argument(
        "--own-order-share",
        type=float,
        default=None,
        help="agent, with a restarts share: this share of the limit goes first to the agent "
        "from msa's own order, before restarts (default 0: measured about even, see README)",
    )
    parser.add_argument(
        "--rollout-weight",
        type=float,
        nargs="+",
        help="agent: weights of the lookahead rollouts in the root's Q-values, in [0, 1], "
        "one greedy search each, samples at the first (default: the checkpoint's "
        "search.rollout_weight, then 1)",
    )


def cmd_solve(args: argparse.Namespace) -> int:
    """Solve one workload with one solver and write the solution file."""
    from mallocmuzero.env.solution import save_solution, validation_errors
    from mallocmuzero.solvers.registry import AGENT, solve

    for flag in ("restarts_share", "own_order_share"):
        if getattr(args, flag) is not None and args.solver != AGENT:
            raise UserError(f"--{flag.replace('_', '-')} is an option of --solver agent")
    workload = load_with_capacity(args.workload, args)
    if args.solver == AGENT:
        from mallocmuzero.agent.solve import solve_agent

        solution = solve_agent(
            workload, args.checkpoint, args.samples, args.seed, args.rollout_weight,
            time_limit=args.time_limit, restarts_share=args.restarts_share,
            own_order_share=args.own_order_share,
        )  # fmt: skip
    else:
        solution = solve(
            args.solver, workload, args.time_limit, args.seed, args.width,
            args.pick_candidates, args.pick_encoding,
        )  # fmt: skip
    errors = validation_errors(workload, solution.offsets, workload.capacity)
    if errors:  # a solver bug, never the user's fault: refuse to write it
        raise RuntimeError(f"solver {args.solver} produced an invalid solution: {errors[0]}")
    save_solution(workload, solution, args.out)
    speedup = solution.all_slow_time_s / solution.estimated_time_s
    line = (
        f"{workload.name}: {args.solver} time {solution.estimated_time_s:.6g} s "
        f"(all-slow {solution.all_slow_time_s:.6g} s, speed-up {speedup:.4f}x), "
        f"{int((solution.offsets >= 0).sum())} buffers in fast memory "
        f"of {fmt_bytes(workload.capacity)}"
    )
    if solution.optimal is not None:
        bound = solution.bound_time_s
        line += f", optimal={solution.optimal}, " + (
            f"bound {bound:.6g} s" if bound is not None else "no bound yet"
        )
    print(line)
    print(f"wrote {args.out}")
    if args.png:
        from mallocmuzero.env.render import render_memory_map

        render_memory_map(workload, solution, args.png)
        print(f"wrote {args.png}")
    return 0


def _load_checked(args: argparse.Namespace):
    """(workload at the solution's capacity, solution, validation errors) of two files."""
    from mallocmuzero.env.solution import load_solution, validation_errors
    from mallocmuzero.env.workload import load_workload

    workload = load_workload(args.workload)
    solution = load_solution(args.solution, workload)
    workload = workload.with_capacity(solution.capacity)
    return workload, solution, validation_errors(workload, solution.offsets, solution.capacity)


def cmd_validate(args: argparse.Namespace) -> int:
    """Check a solution against its workload and recompute its time."""
    from mallocmuzero.env.solution import score

    workload, solution, errors = _load_checked(args)
    if errors:
        print(f"INVALID: {len(errors)} problem(s); first: {errors[0]}", file=sys.stderr)
        return 1
    scores = score(workload, solution.offsets)
    print(
        f"valid: time {scores.estimated_time_s:.6g} s, all-slow {scores.all_slow_time_s:.6g} s, "
        f"speed-up {scores.speedup:.4f}x (recomputed by cost model v1)"
    )
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    """Draw the memory map of any solution file as a PNG."""
    from mallocmuzero.env.render import render_memory_map

    workload, solution, errors = _load_checked(args)
    if errors:
        raise UserError(f"{args.solution}: invalid solution, not drawn: {errors[0]}")
    render_memory_map(workload, solution, args.png)
    print(f"wrote {args.png}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train on Ray (local runtime or a cluster) or with the synchronous runner."""
    from mallocmuzero.cluster import run_checkpoint
    from mallocmuzero.configs.loader import load_config
    from mallocmuzero.configs.schema import ConfigError, with_values

    config = load_config(args.config, args.set)
    has_checkpoint = next(run_checkpoint.candidates(args.run_dir), None) is not None
    if args.resume and not has_checkpoint:
        raise UserError(f"--resume: {args.run_dir} holds no checkpoint to resume from")
    if args.runner == "sync" and args.address:
        raise UserError("--address needs the ray runner (drop --runner sync)")
    limits = {"run.max_steps": args.max_steps, "run.max_minutes": args.max_minutes}
    try:
        config = with_values(config, {k: v for k, v in limits.items() if v is not None})
    except ConfigError as exc:
        raise UserError(f"--max-steps/--max-minutes: {exc}") from None
    if not config.run.max_steps and not config.run.max_minutes:
        print(
            "mallocmuzero: no --max-steps or --max-minutes: training until Ctrl-C", file=sys.stderr
        )
    from mallocmuzero.cluster.launch import RunFailedError, train_distributed, train_sync

    try:
        if args.runner == "sync":
            train_sync(config, args.run_dir)
        else:
            train_distributed(config, args.run_dir, args.address)
    except RunFailedError as exc:
        print(
            f"mallocmuzero: error: {exc}; checkpoints in {args.run_dir} are intact", file=sys.stderr
        )
        return 1
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Per workload and capacity: the agent against msa, restarts, beam and cpsat."""
    from mallocmuzero.actors.workload_sampler import load_split
    from mallocmuzero.agent.solve import (
        load_agent,
        resolve_own_order_share,
        resolve_restarts_share,
    )
    from mallocmuzero.errors import check_time_limit
    from mallocmuzero.solvers.tournament import evaluate
    from mallocmuzero.solvers.tournament_report import (
        EVALUATION_HEADER,
        evaluation_summary,
        evaluation_table,
    )

    check_time_limit(args.time_limit)
    share = resolve_restarts_share(args.restarts_share, args.time_limit)
    own_share = resolve_own_order_share(args.own_order_share, share)
    agent = load_agent(args.checkpoint, args.rollout_weight).compile(args.samples)
    workloads = load_split(args.workloads, args.suite)
    rows = evaluate(
        workloads,
        args.fractions,
        partial(
            agent.solve, samples=args.samples, restarts_share=share, own_order_share=own_share
        ),  # fmt: skip
        args.cpsat_time_limit,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
        time_limit=args.time_limit,
        pick=agent.pick,
    )

    print_table(EVALUATION_HEADER, evaluation_table(rows))
    print(evaluation_summary(rows, args.time_limit))
    return 0


def add_train_command(sub: argparse._SubParsersAction) -> None:
    """The ``train`` subcommand."""
    train = sub.add_parser("train", help="train the agent (Ray actors, Reverb replay, JAX learner)")
    train.add_argument("--config", default="configs/default.py", help="config file (get_config())")
    train.add_argument(
        "--run-dir",
        required=True,
        help="folder for checkpoints and TensorBoard (resumed if it has any)",
    )
    train.add_argument(
        "--address", help="join this Ray cluster (host:port or 'auto') instead of a local runtime"
    )
    train.add_argument(
        "--runner",
        choices=["ray", "sync"],
        default="ray",
        help="ray (default): one actor per role; sync: everything in this process (debugging)",
    )
    train.add_argument(
        "--resume", action="store_true", help="require a checkpoint in --run-dir to resume from"
    )
    train.add_argument("--max-steps", type=int, help="stop after this many learner steps")
    train.add_argument("--max-minutes", type=float, help="stop after this many minutes")
    train.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field"
    )
    train.set_defaults(func=cmd_train)


def add_solve_command(sub: argparse._SubParsersAction) -> None:
    """The ``solve`` subcommand."""
    from mallocmuzero.solvers.registry import AGENT, SOLVERS, BeamShape

    solve = sub.add_parser("solve", help="solve one workload with one solver")
    solve.add_argument("workload", help="workload JSON file (mallocmuzero.workload/1)")
    solve.add_argument("--solver", required=True, choices=sorted([*SOLVERS, AGENT]))
    add_capacity(solve)
    solve.add_argument(
        "--time-limit",
        type=float,
        help="seconds: every solver but msa, first-fit and all-slow keeps its best so far "
        "(default: restarts 10, cpsat 60, beam and agent until done)",
    )
    solve.add_argument("--width", type=int, default=16, help="beam width (default 16)")
    shape = BeamShape()
    solve.add_argument(
        "--pick-candidates",
        type=int,
        default=shape.pick_candidates,
        help="beam over game v2 with K pick slots (1: game v1, msa's order; default "
        f"{shape.pick_candidates}, the shipped game)",
    )
    solve.add_argument(
        "--pick-encoding",
        default=shape.pick_encoding,
        help="game v2's pick slots for beam: window, rules or hybrid "
        f"(default {shape.pick_encoding})",
    )
    solve.add_argument("--seed", type=int, default=0)
    solve.add_argument(
        "--checkpoint", help="agent checkpoint folder (default: the shipped pretrained one)"
    )
    solve.add_argument(
        "--samples",
        type=int,
        default=0,
        help="extra sampled searches of the agent (keeps the best)",
    )
    _add_agent_options(solve)
    solve.add_argument("--out", required=True, help="solution JSON file to write")
    solve.add_argument("--png", help="also draw the memory map to this PNG")
    solve.set_defaults(func=cmd_solve)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="mallocmuzero",
        description="Map the buffers of compiled ML programs onto fast memory.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    add_solve_command(sub)

    validate = sub.add_parser("validate", help="check a solution and recompute its time")
    validate.add_argument("workload")
    validate.add_argument("solution")
    validate.set_defaults(func=cmd_validate)

    render = sub.add_parser("render", help="draw the memory map of a solution as a PNG")
    render.add_argument("workload")
    render.add_argument("solution")
    render.add_argument("--png", required=True, help="PNG file to write")
    render.set_defaults(func=cmd_render)

    add_train_command(sub)

    evaluate = sub.add_parser("evaluate", help="compare a checkpoint with msa and cpsat")
    evaluate.add_argument("--checkpoint", required=True)
    evaluate.add_argument("--suite", default="heldout", choices=["heldout", "train"])
    evaluate.add_argument("--workloads", default="workloads/builtin")
    evaluate.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.25, 0.5])
    evaluate.add_argument("--samples", type=int, default=0)
    evaluate.add_argument(
        "--cpsat-time-limit", type=float, default=30.0, help="without --time-limit (default 30)"
    )
    evaluate.add_argument(
        "--time-limit",
        type=float,
        help="seconds for every solver: the agent (anytime), restarts, beam16 and cpsat "
        "(default: restarts and beam16 at the agent's wall time)",
    )
    _add_agent_options(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    add_workloads_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mallocmuzero`` console script."""
    for name, value in DEFAULT_ENVIRONMENT.items():  # before any command imports JAX
        os.environ.setdefault(name, value)
    # Compiled searches persist across processes: a second `solve --solver agent` loads
    # them instead of compiling again (JAX's own cache; the user's setting wins).
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(user_cache_dir() / "jax"))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")  # searches: < 1 s
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        message = exc.as_flag() if isinstance(exc, ArgumentError) else str(exc)
        print(f"mallocmuzero: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mallocmuzero: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
