"""What a run shows while it goes: the figures of a log interval and the progress line.

Pure functions over the counters the supervisor gathers, so the line and the TensorBoard
scalars can be tested without a run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def format_duration(seconds: float) -> str:
    """``1h02m``, ``12m05s`` or ``42s``."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def time_line(
    running_s: float, max_minutes: float, max_steps: int, learner_step: int, first_step: int
) -> str:
    """Elapsed time, and the time left when the run is bounded by minutes or steps."""
    parts, left = [f"{format_duration(running_s)} elapsed"], []
    if max_minutes:
        left.append(max_minutes * 60 - running_s)
    steps_done = learner_step - first_step
    if max_steps and steps_done > 0:
        left.append((max_steps - learner_step) * running_s / steps_done)
    if left:
        parts.append(f"{format_duration(max(0.0, min(left)))} left")
    return ", ".join(parts)


def window_scalars(
    window: Mapping[str, float],
    seconds: float,
    num_actors: int,
    num_simulations: int,
    learner_metrics: Mapping[str, float],
) -> dict[str, float]:
    """The TensorBoard scalars of one log interval of ``seconds`` (self-play, learner)."""
    scalars = {f"loss/{k[5:]}" if k.startswith("loss/") else f"learner/{k}": v
               for k, v in learner_metrics.items()}  # fmt: skip
    per_actor = {i: window.get(f"actor{i}/steps", 0) / seconds for i in range(num_actors)}
    scalars.update({f"self_play/actor{i}/steps_per_s": v for i, v in per_actor.items()})
    scalars.update({
        f"self_play/actor{i}/simulations_per_s": window.get(f"actor{i}/simulations", 0) / seconds
        for i in range(num_actors)
    })  # fmt: skip
    total = sum(per_actor.values())
    scalars["self_play/steps_per_s"] = total
    scalars["self_play/simulations_per_s"] = total * num_simulations
    scalars["learner/steps_per_s"] = window.get("learner_steps", 0) / seconds
    scalars["learner/replay_wait_fraction"] = window.get("learner_wait_seconds", 0) / max(
        window.get("learner_seconds", 0), 1e-9
    )
    return scalars


def run_scalars(
    replay_size: float,
    inserts: float,
    samples: float,
    learner_step: int,
    actor_versions: Sequence[int],
    returns: Sequence[float],
) -> dict[str, float]:
    """Replay, policy-lag and episode-return scalars."""
    scalars = {"replay/size": replay_size}
    if inserts > 0:
        scalars["replay/samples_per_insert"] = samples / inserts
    if actor_versions:
        scalars["policy_lag"] = learner_step - float(np.mean(actor_versions))
    if returns:
        scalars["self_play/episode_return"] = float(np.mean(returns))
    return scalars


def eval_line(last_eval: Mapping[str, float]) -> str:
    """The last evaluation's mean gain over msa, on its large programs, and against restarts.

    The ratio is the agent's speed-up over restarts given the same time (above 1: better).
    """
    if not last_eval:
        return ""
    line = f" | eval gain/msa {last_eval['gain/mean']:+.2%}"
    if "gain/large_mean" in last_eval:
        line += f" (large {last_eval['gain/large_mean']:+.2%})"
    if "ratio/mean" in last_eval:
        line += f", x{last_eval['ratio/mean']:.4f} of restarts at equal time"
    return line


def progress_line(
    learner_step: int,
    time_text: str,
    num_actors: int,
    scalars: Mapping[str, float],
    last_eval: Mapping[str, float],
) -> str:
    """The terminal's one line per log interval."""
    return (
        f"[train] step {learner_step} | {time_text} | "
        f"self-play {scalars['self_play/steps_per_s']:,.0f} steps/s ({num_actors} actors) | "
        f"replay {scalars['replay/size']:,.0f} items, "
        f"{scalars.get('replay/samples_per_insert', 0):.2f} samples/insert | lag "
        f"{scalars.get('policy_lag', 0):.0f} | return "
        f"{scalars.get('self_play/episode_return', 0):.4f} | loss "
        f"{scalars.get('loss/total', float('nan')):.4f}" + eval_line(last_eval)
    )
