"""Run checkpoints: the learner, the replay table and the counters under one step number.

Layout of a run folder::

    RUN/checkpoints/step_000001200/   learner/  (orbax TrainState)
                                      replay/   (Reverb checkpoint)
                                      agent/    (params.msgpack, config.json, meta.json:
                                                 usable by `solve --solver agent`)
                                      meta.json (step, counters, replay item count)
    RUN/checkpoint -> the newest agent/ copy, for `evaluate` and `solve`

Each checkpoint is written into a hidden temporary folder and renamed into place, so a
crash mid-write leaves the previous checkpoints intact; the newest ``keep`` are kept. A
checkpoint whose ``replay/`` was left out (to carry a run elsewhere: the learner and the
agent are a few MB, the replay tens) resumes with an empty table.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mallocmuzero.replay.checkpoint import is_complete

META = "meta.json"


def checkpoints_dir(run_dir: str | Path) -> Path:
    """The folder of a run's checkpoints."""
    return Path(run_dir) / "checkpoints"


def write_checkpoint(
    run_dir: str | Path,
    step: int,
    write_parts: Callable[[Path], dict[str, Any]],
    keep: int = 3,
) -> Path:
    """Create ``step_<step>`` atomically: ``write_parts(tmp)`` fills it and returns meta."""
    root = checkpoints_dir(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:09d}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{final.name}."))
    try:
        meta = {"step": step, **write_parts(tmp)}
        (tmp / META).write_text(json.dumps(meta, indent=1))
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in sorted(root.glob("step_*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def agent_meta(
    learner_steps: int, spec: Any, self_play_steps: int, self_play_episodes: int, **extra: Any
) -> dict[str, Any]:
    """What an agent checkpoint records of its training (both runners write this)."""
    return {
        "learner_steps": learner_steps,
        "observation_size": spec.size,
        "num_actions": spec.num_actions,
        "self_play_steps": self_play_steps,
        "self_play_episodes": self_play_episodes,
        **extra,
    }


def remove_partial(run_dir: str | Path) -> None:
    """Delete the hidden temporary folders of checkpoints a killed run never finished."""
    for partial in checkpoints_dir(run_dir).glob(".step_*"):
        shutil.rmtree(partial, ignore_errors=True)


def checkpoint_problem(folder: Path) -> str | None:
    """Why ``folder`` is not a usable checkpoint, or None when it is."""
    try:
        meta = json.loads((folder / META).read_text())
        int(meta["step"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"unreadable {META} ({exc})"
    if (folder / "replay").exists() and not is_complete(folder / "replay"):
        return "incomplete replay checkpoint"  # absent is fine: the table restarts empty
    if not (folder / "learner").is_dir():
        return "no learner state"
    return None


def candidates(run_dir: str | Path) -> Iterator[Path]:
    """The run's checkpoints, newest first."""
    yield from sorted(checkpoints_dir(run_dir).glob("step_*"), reverse=True)


def restore_newest(run_dir: str | Path, restore: Callable[[Path, dict[str, Any]], Any]) -> Any:
    """``restore(folder, meta)`` on the newest checkpoint that restores; None if none exists.

    A checkpoint that is corrupt (or whose restore raises) is skipped with a warning and the
    previous one is tried.
    """
    for folder in candidates(run_dir):
        problem = checkpoint_problem(folder)
        if problem is None:
            try:
                return restore(folder, json.loads((folder / META).read_text()))
            except Exception as exc:  # a corrupt part: fall back to the previous checkpoint
                problem = f"{type(exc).__name__}: {exc}"
        warnings.warn(
            f"{folder}: skipping corrupt checkpoint ({problem}); trying the previous one",
            stacklevel=2,
        )
    return None
