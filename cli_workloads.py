"""The ``mallocmuzero workloads`` subcommands: build, import, list and show.

Also the workload arguments and the table printing that every command shares.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from mallocmuzero.errors import UserError


def add_capacity(parser: argparse.ArgumentParser) -> None:
    """``--capacity`` or ``--capacity-fraction``."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--capacity", type=int, help="fast-memory capacity in bytes")
    group.add_argument(
        "--capacity-fraction",
        type=float,
        help="capacity as a fraction of the placeable peak (largest unpinned live bytes)",
    )


def load_with_capacity(path: str, args: argparse.Namespace):
    """The workload at ``path`` at the capacity the arguments ask for."""
    from mallocmuzero.env.workload import load_workload, resolve_capacity

    return resolve_capacity(load_workload(path), args.capacity, args.capacity_fraction)


def fmt_bytes(n: float) -> str:
    """A byte count in B, KiB, MiB or GiB."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def cmd_workloads_build(args: argparse.Namespace) -> int:
    """Compile the built-in suite into workload files."""
    from mallocmuzero.env import suite

    names = args.only or None
    if names:
        unknown = [n for n in names if n not in {p.name for p in suite.PROGRAMS}]
        if unknown:
            known = ", ".join(p.name for p in suite.PROGRAMS)
            raise UserError(f"unknown program(s) {', '.join(unknown)}; built-in: {known}")
    paths = suite.build_suite(args.out, names, progress=not args.quiet)
    print(f"wrote {len(paths)} workloads to {args.out}")
    return 0


def cmd_workloads_generate(args: argparse.Namespace) -> int:
    """Draw and compile random programs of several model families (cached)."""
    from mallocmuzero.env import generator

    say = None if args.quiet else lambda line: print(line, flush=True)
    built = generator.generate(args.out, args.count, seed=args.seed, jobs=args.jobs, progress=say)
    heldout = sum(1 for p in built.values() if p["split"] == "heldout")
    families = len({generator.family_of(name) for name in built})
    print(
        f"{len(built)} programs of {families} families in {args.out} "
        f"({len(built) - heldout} train, {heldout} held out: "
        f"{', '.join(generator.HELDOUT_FAMILIES)})"
    )
    return 0


def cmd_workloads_large(args: argparse.Namespace) -> int:
    """Compile the large-program suite: train steps of about 1k, 3k and 10k buffers."""
    from mallocmuzero.env import generator

    say = None if args.quiet else lambda line: print(line, flush=True)
    wanted = generator.large_programs(args.sizes)
    built = generator.build_recipes(args.out, wanted, jobs=args.jobs, progress=say)
    sizes = ", ".join(f"{name} {built[name]['buffers']:,}" for name in sorted(built))
    print(f"{len(built)} large programs in {args.out} (buffers: {sizes}); all held out")
    return 0


def cmd_workloads_import(args: argparse.Namespace) -> int:
    """Import an XLA dump folder, an HLO text file or a MiniMalloc CSV."""
    from mallocmuzero.env.workload import resolve_capacity, save_workload

    source = Path(args.source)
    fmt = args.format
    if fmt == "auto":
        if source.is_dir():
            fmt = "xla-dump"
        elif source.suffix == ".csv":
            fmt = "minimalloc"
        elif source.suffix in (".hlo", ".txt"):
            fmt = "hlo"
        else:
            raise UserError(f"{source}: cannot tell the format; pass --format")
    if not source.exists():
        raise UserError(f"{source}: no such file or folder")
    if fmt == "minimalloc":
        from mallocmuzero.env.importers.minimalloc import import_minimalloc_csv

        workload = import_minimalloc_csv(source, args.capacity)  # default: the file name's
    elif fmt == "xla-dump":
        from mallocmuzero.env.importers.xla_dump import import_xla_dump

        workload = import_xla_dump(source, module=args.module, name=args.name)
    else:
        from mallocmuzero.env.importers.compile import import_hlo_text

        workload = import_hlo_text(source, name=args.name)
    workload = resolve_capacity(workload, args.capacity, args.capacity_fraction)
    save_workload(workload, args.out)
    print(
        f"{workload.name}: {workload.num_buffers} buffers, {workload.num_instructions} "
        f"instructions, capacity {fmt_bytes(workload.capacity)} -> wrote {args.out}"
    )
    return 0


def _summary_row(path: Path) -> list[str]:
    from mallocmuzero.env import cost_model
    from mallocmuzero.env.suite import split_of
    from mallocmuzero.env.workload import load_workload, placeable_peak

    w = load_workload(path)
    split = split_of(w.name, default="-")
    return [
        w.name,
        split,
        str(w.num_buffers),
        str(int((~w.pinned).sum())),
        str(w.num_instructions),
        fmt_bytes(placeable_peak(w)),
        fmt_bytes(w.capacity),
        f"{cost_model.total_time(w):.4g}",
    ]


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Rows of text in columns as wide as their widest cell."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())


def cmd_workloads_list(args: argparse.Namespace) -> int:
    """List the workload files of a folder."""
    folder = Path(args.folder)
    if not folder.is_dir():
        raise UserError(
            f"{folder}: no such folder (build the suite with 'mallocmuzero workloads build')"
        )
    paths = sorted(folder.glob("*.json"))
    if not paths:
        raise UserError(f"{folder}: no workload files (*.json)")
    header = [
        "name",
        "split",
        "buffers",
        "unpinned",
        "instrs",
        "placeable peak",
        "capacity",
        "all-slow s",
    ]
    print_table(header, [_summary_row(p) for p in paths])
    return 0


def cmd_workloads_show(args: argparse.Namespace) -> int:
    """Describe one workload and msa's result on it."""
    from mallocmuzero.env import cost_model
    from mallocmuzero.env.workload import placeable_peak
    from mallocmuzero.solvers.greedy import solve_msa

    w = load_with_capacity(args.workload, args)
    order = cost_model.game_order(w)
    msa = solve_msa(w)
    hw = w.hardware
    print(f"workload        {w.name}")
    print(f"instructions    {w.num_instructions} ({int((w.repeat > 1).sum())} in loops)")
    print(
        f"buffers         {w.num_buffers} ({int(w.pinned.sum())} pinned, "
        f"{order.size} presented at this capacity)"
    )
    print(f"sizes           {fmt_bytes(w.size.min())} .. {fmt_bytes(w.size.max())}")
    print(f"placeable peak  {fmt_bytes(placeable_peak(w))}")
    print(f"capacity        {fmt_bytes(w.capacity)}")
    print(
        f"hardware        {hw.peak_flops:.3g} FLOP/s, slow {hw.slow_bandwidth:.3g} B/s, "
        f"fast {hw.fast_bandwidth:.3g} B/s"
    )
    print(f"all-slow time   {msa.all_slow_time_s:.6g} s")
    print(
        f"msa time        {msa.estimated_time_s:.6g} s "
        f"(speed-up {msa.all_slow_time_s / msa.estimated_time_s:.4f}x)"
    )
    return 0


def add_workloads_commands(sub: argparse._SubParsersAction) -> None:
    """The ``workloads`` subcommand and its own subcommands."""
    workloads = sub.add_parser("workloads", help="build, import, list and show workloads")
    wsub = workloads.add_subparsers(dest="workloads_command", required=True)
    build = wsub.add_parser("build", help="compile the built-in suite of JAX programs")
    build.add_argument(
        "--out", default="workloads/builtin", help="folder (default workloads/builtin)"
    )
    build.add_argument("--only", nargs="*", help="build only these programs")
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    build.set_defaults(func=cmd_workloads_build)
    gen = wsub.add_parser(
        "generate", help="draw and compile random programs of several model families (cached)"
    )
    gen.add_argument("--count", type=int, default=300, help="programs to draw (default 300)")
    gen.add_argument(
        "--out", default="workloads/generated", help="folder (default workloads/generated)"
    )
    gen.add_argument("--seed", type=int, default=0, help="the draw's seed (default 0)")
    gen.add_argument("--jobs", type=int, default=1, help="compiling processes (default 1)")
    gen.add_argument("--quiet", action="store_true", help="no progress lines")
    gen.set_defaults(func=cmd_workloads_generate)
    large = wsub.add_parser(
        "large", help="compile the large-program suite (train steps of ~1k, 3k, 10k buffers)"
    )
    large.add_argument("--out", default="workloads/large", help="folder (default workloads/large)")
    large.add_argument("--sizes", nargs="+", default=["1k", "3k", "10k"],
                       help="sizes to build: 1k 3k 10k (default all)")  # fmt: skip
    large.add_argument("--jobs", type=int, default=1, help="compiling processes (default 1)")
    large.add_argument("--quiet", action="store_true", help="no progress lines")
    large.set_defaults(func=cmd_workloads_large)
    imp = wsub.add_parser("import", help="import an XLA dump folder, HLO text or MiniMalloc CSV")
    imp.add_argument("source")
    imp.add_argument("--out", required=True)
    imp.add_argument("--format", default="auto", choices=["auto", "xla-dump", "hlo", "minimalloc"])
    imp.add_argument("--module", help="module name (substring) inside a dump folder")
    imp.add_argument("--name", help="workload name (default: from the source)")
    add_capacity(imp)
    imp.set_defaults(func=cmd_workloads_import)
    lst = wsub.add_parser("list", help="list the workloads of a folder")
    lst.add_argument("folder", nargs="?", default="workloads/builtin")
    lst.set_defaults(func=cmd_workloads_list)
    show = wsub.add_parser("show", help="describe one workload")
    show.add_argument("workload")
    add_capacity(show)
    show.set_defaults(func=cmd_workloads_show)
