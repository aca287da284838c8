"""The program generator: hundreds of real programs, drawn at random and compiled by XLA.

Each program is a recipe (:mod:`mallocmuzero.env.program_families`) drawn from a seeded
generator: a model family, forward pass or train step (SGD, momentum or Adam), and random
depth, width, sequence length, batch size and dtype. It is compiled on XLA's CPU backend
and imported like the built-in suite. Whole families are held out (``HELDOUT_FAMILIES``):
their programs never enter training, so the gap between training and unseen families is
measured, not assumed.

``mallocmuzero workloads generate --count N --out DIR`` writes ``gen_<family>_<i>.json``
and ``recipes.manifest`` (JSON) of the recipes. It is a cache: a program whose file exists and
whose recipe is unchanged is not compiled again, so a longer run extends a shorter one.

``mallocmuzero workloads large`` builds the large-program suite the same way (fixed
recipes, ``large_<family>_<layers>``, always held out): Adam train steps of a GPT-style
language model and of an MLP-Mixer at growing depth, about 1k, 3k and 10k buffers each
(:data:`LARGE_LAYERS`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from mallocmuzero.errors import ArgumentError, UserError

GENERATOR_VERSION = 1
MANIFEST = "recipes.manifest"  # JSON, not *.json: the folder's *.json are its workloads
PREFIX = "gen_"
LARGE_PREFIX = "large_"
TRAIN_FAMILIES = ("mlp", "cnn", "transformer", "attention", "rnn", "moe")
HELDOUT_FAMILIES = ("mixer", "unet")
FAMILIES = TRAIN_FAMILIES + HELDOUT_FAMILIES


def _pick(rng: np.random.Generator, options: Iterable[Any]) -> Any:
    options = list(options)
    return options[int(rng.integers(len(options)))]


def _family_sizes(family: str, rng: np.random.Generator) -> dict[str, Any]:
    """The random sizes of one program of ``family``."""
    p = lambda *options: _pick(rng, options)  # noqa: E731
    if family == "mlp":
        return {"depth": p(2, 3, 4, 5, 6), "width": p(128, 256, 512, 1024, 2048),
                "inputs": p(64, 256, 784, 1024), "outputs": p(10, 100, 256),
                "batch": p(16, 32, 64, 128, 256)}  # fmt: skip
    if family == "cnn":
        return {"stages": p(2, 3, 4), "blocks": p(1, 2), "width": p(16, 32, 64),
                "image": p(16, 32, 48), "batch": p(4, 8, 16, 32)}  # fmt: skip
    if family == "transformer":
        return {"layers": p(1, 2, 3, 4), "dim": p(64, 128, 256, 384), "heads": p(2, 4, 8),
                "mlp_ratio": p(2, 4), "seq": p(32, 64, 128, 256),
                "vocab": p(256, 1024, 4096), "batch": p(2, 4, 8, 16)}  # fmt: skip
    if family == "attention":
        return {"layers": p(1, 2, 3), "dim": p(64, 128, 256), "heads": p(2, 4, 8),
                "mlp_ratio": p(2, 4), "seq": p(16, 32, 64, 128), "memory": p(32, 64, 256),
                "features": p(32, 64, 128), "outputs": p(10, 64),
                "batch": p(2, 4, 8, 16)}  # fmt: skip
    if family == "rnn":
        return {"cell": p("elman", "gru", "lstm"), "steps": p(8, 16, 32, 64),
                "inputs": p(32, 64, 128, 256), "hidden": p(64, 128, 256, 512),
                "batch": p(8, 16, 32, 64)}  # fmt: skip
    if family == "moe":
        return {"layers": p(1, 2, 3), "experts": p(2, 4, 8), "dim": p(64, 128, 256),
                "hidden": p(128, 256, 512), "seq": p(16, 32, 64), "batch": p(2, 4, 8)}  # fmt: skip
    if family == "mixer":
        return {"layers": p(2, 4, 6, 8), "dim": p(64, 128, 256), "patch": p(4, 8),
                "image": p(32, 64), "token_hidden": p(32, 64, 128),
                "channel_hidden": p(128, 256, 512), "batch": p(4, 8, 16, 32)}  # fmt: skip
    if family == "unet":
        return {"depth": p(2, 3, 4), "width": p(8, 16, 32), "image": p(32, 64),
                "classes": p(2, 8), "batch": p(1, 2, 4, 8)}  # fmt: skip
    raise ArgumentError("family", f"unknown: {family!r} (known: {', '.join(FAMILIES)})")


def draw_recipe(family: str, rng: np.random.Generator) -> dict[str, Any]:
    """One random program of ``family``: mode, optimizer, dtype and the family's sizes."""
    if family not in FAMILIES:
        raise ArgumentError("family", f"unknown: {family!r} (known: {', '.join(FAMILIES)})")
    mode = _pick(rng, ("forward", "train", "train"))
    recipe = {"family": family, "mode": mode, "dtype": _pick(rng, ("float32", "bfloat16"))}
    if mode == "train":
        recipe["optimizer"] = _pick(rng, ("sgd", "momentum", "adam"))
        recipe["dtype"] = "float32"  # train steps keep float32 parameters
    recipe.update(_family_sizes(family, rng))
    return recipe


def program_name(family: str, index: int) -> str:
    """The workload name of generated program ``index`` (of ``family``)."""
    return f"{PREFIX}{family}_{index:04d}"


def family_of(name: str) -> str | None:
    """The family of a generated or large program's name (``gen_unet_0007``), or None."""
    prefix = next((p for p in (PREFIX, LARGE_PREFIX) if name.startswith(p)), None)
    if prefix is None:
        return None
    family = name[len(prefix) :].rsplit("_", 1)[0]
    return family if family in FAMILIES else None


def generated_split(name: str) -> str | None:
    """``heldout`` or ``train`` for a generated program's name; None for other names.

    Large programs are always held out.
    """
    family = family_of(name)
    if family is None:
        return None
    held = family in HELDOUT_FAMILIES or name.startswith(LARGE_PREFIX)
    return "heldout" if held else "train"


# Layers of the large suite's programs per target size (buffers, about), per family.
LARGE_LAYERS = {"transformer": {"1k": 4, "3k": 13, "10k": 45},
                "mixer": {"1k": 7, "3k": 20, "10k": 68}}  # fmt: skip
LARGE_SHAPES = {
    "transformer": {"dim": 128, "heads": 4, "mlp_ratio": 4, "seq": 64, "vocab": 1024,
                    "batch": 4},
    "mixer": {"dim": 128, "patch": 8, "image": 32, "token_hidden": 64, "channel_hidden": 256,
              "batch": 8},
}  # fmt: skip


def large_programs(sizes: Iterable[str] = ("1k", "3k", "10k")) -> dict[str, dict[str, Any]]:
    """The large suite's recipes for ``sizes`` (keys of :data:`LARGE_LAYERS`' entries)."""
    programs = {}
    for family, layers in LARGE_LAYERS.items():
        for size in sizes:
            if size not in layers:
                raise ArgumentError("sizes", f"unknown size {size!r} (known: {', '.join(layers)})")
            recipe = {"family": family, "mode": "train", "optimizer": "adam", "dtype": "float32",
                      "layers": layers[size], **LARGE_SHAPES[family]}  # fmt: skip
            programs[f"{LARGE_PREFIX}{family}_{layers[size]:04d}"] = recipe
    return programs


def draw_programs(count: int, seed: int = 0) -> dict[str, dict[str, Any]]:
    """``count`` distinct recipes, families in turn; ``{name: recipe}``, the same for a seed."""
    if count < 1:
        raise ArgumentError("count", f"must be >= 1 (got {count})")
    rng = np.random.default_rng(seed)
    programs: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for index in range(count):
        family = FAMILIES[index % len(FAMILIES)]
        for _ in range(1000):
            recipe = draw_recipe(family, rng)
            key = json.dumps(recipe, sort_keys=True)
            if key not in seen:
                break
        seen.add(key)
        programs[program_name(family, index)] = recipe
    return programs


def _build_one(item: tuple[str, dict[str, Any], str]) -> tuple[str, int | None, str | None]:
    """Compile one recipe into ``out/name.json``: (name, buffers or None, error or None)."""
    name, recipe, out = item
    from mallocmuzero.env.importers.compile import import_jax_function
    from mallocmuzero.env.program_families import build_recipe
    from mallocmuzero.env.workload import save_workload

    try:
        fn, args = build_recipe(recipe)
        workload = import_jax_function(fn, args, name)
    except Exception as exc:  # one program that XLA or the importer rejects: report it
        return name, None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    save_workload(workload, Path(out) / f"{name}.json")
    return name, workload.num_buffers, None


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: unreadable generator manifest ({exc}); delete it") from None
    return data.get("programs", {}) if data.get("version") == GENERATOR_VERSION else {}


def generate(
    out_dir: str | os.PathLike[str],
    count: int,
    seed: int = 0,
    jobs: int = 1,
    progress: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Compile ``count`` generated programs into ``out_dir`` (cached); returns the manifest.

    Programs already built with the same recipe are kept. A program that fails to compile
    is reported and left out of the manifest. ``jobs`` compiles in that many processes.
    """
    return build_recipes(out_dir, draw_programs(count, seed), seed, jobs, progress)


def build_recipes(
    out_dir: str | os.PathLike[str],
    wanted: dict[str, dict[str, Any]],
    seed: int = 0,
    jobs: int = 1,
    progress: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Compile the recipes ``wanted`` (``{name: recipe}``) into ``out_dir``, cached.

    The folder's manifest is the cache; returns its programs (see :func:`generate`).
    """
    if jobs < 1:
        raise ArgumentError("jobs", f"must be >= 1 (got {jobs})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST
    built = _read_manifest(manifest_path)
    todo = [
        (name, recipe, str(out))
        for name, recipe in wanted.items()
        if built.get(name, {}).get("recipe") != recipe or not (out / f"{name}.json").exists()
    ]
    pending = {name for name, _, _ in todo}
    done = {name: built[name] for name in wanted if name in built and name not in pending}
    say = progress or (lambda _: None)
    say(f"[generate] {len(wanted)} programs: {len(done)} cached, {len(todo)} to compile")
    results = _map(_build_one, todo, jobs)
    for k, (name, buffers, error) in enumerate(results, 1):
        if error is None:
            recipe = wanted[name]
            done[name] = {"recipe": recipe, "buffers": buffers, "split": generated_split(name)}
            say(f"[generate] {k}/{len(todo)} {name}: {buffers} buffers")
        else:
            say(f"[generate] {k}/{len(todo)} {name}: skipped ({error})")
        if k % 10 == 0 or k == len(todo):
            _write_manifest(manifest_path, done, seed)
    _write_manifest(manifest_path, done, seed)
    return done


def _write_manifest(path: Path, programs: dict[str, Any], seed: int) -> None:
    """Write the manifest atomically (sorted by name)."""
    data = {"version": GENERATOR_VERSION, "seed": seed, "programs": dict(sorted(programs.items()))}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


def _map(fn: Callable[[Any], Any], items: list[Any], jobs: int) -> Iterable[Any]:
    """``fn`` over ``items`` in order, in ``jobs`` spawned processes when more than one."""
    if jobs == 1 or len(items) <= 1:
        yield from map(fn, items)
        return
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(jobs, maxtasksperchild=20) as pool:
        yield from pool.imap(fn, items)
