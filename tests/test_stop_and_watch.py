"""One run folder through what only real processes show: signals, loopback, TensorBoard.

The loop's logic (a crashed role, a learner failure, a stop's final checkpoint, resume
with the replay and counters) is tested in-process in ``test_supervisor.py``. Three real
``mallocmuzero train`` runs in turn on one run folder, on both runtimes (a checkpoint of
one restores on the other):
1. Without Ray (``--runner sync``: every role on a thread of the driver), then SIGINT to
   the driver: a final checkpoint, at a step later than the last timer checkpoint, exit 0
   within 60 s.
2. On a local Ray runtime, resumed (the exact step and replay items): its services listen
   on loopback only; a self-play actor killed by its pid comes back and training goes
   on; then SIGTERM to the whole process group (systemd, Slurm, ``timeout``,
   ``kill -- -PGID``): the same, and the runtime gone. The real ``tensorboard`` program
   then serves the folder on 127.0.0.1 and its HTTP API gives the scalar tags, one curve
   (each step once, the final step included), a memory-map image and the config text.
3. Without Ray, resumed, then SIGINT to the group and SIGTERM to the driver at once: the
   second signal aborts (exit 128 + 15) and every finished checkpoint stays intact;
   every TensorBoard tag is in the three runs' event files. (What an abort does to a
   local Ray runtime's processes, ``kill_descendants``, is tested on a process tree of
   its own in ``test_supervisor.py``.)
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from mallocmuzero.cluster.run_checkpoint import checkpoint_problem
from mallocmuzero.replay.checkpoint import item_count

from harness import (
    BIN,
    ENV,
    REAL_RUNS,
    ROOT,
    TAGS,
    actors_file,
    checkpoint_meta,
    checkpoints,
    process_tree,
    stop_checkpoints,
    train_args,
    wait_for,
)

pytest.importorskip("ray")
pytestmark = REAL_RUNS
pytest.importorskip("reverb")


def start(run: Path, suite: Path, log: Path, *extra: str) -> subprocess.Popen:
    """A run in a new session of its own (so its process group is the test's to signal)."""
    args = train_args(run, suite, "--max-steps", "100000",
                      "--set", "run.checkpoint_interval_minutes=0.05", *extra)  # fmt: skip
    with open(log, "w") as out:
        return subprocess.Popen(args, cwd=ROOT, env=ENV, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip


def timer_checkpoint(run: Path, after: str, proc: subprocess.Popen) -> str:
    """Wait for a timer checkpoint newer than ``after`` and return its name."""

    def newer() -> str | None:
        names = [c.name for c in checkpoints(run)]
        return names[-1] if names and names[-1] > after else None

    return wait_for(newer, 300, f"a checkpoint after {after}", proc)


def learner_moved_past(log: Path, checkpoint: str, proc: subprocess.Popen) -> None:
    """Wait until a progress line shows a learner step later than ``checkpoint``'s."""
    step = int(checkpoint.split("_")[1])

    def logged() -> bool:
        steps = [int(s) for s in re.findall(r"\[train\] step (\d+) \|", log.read_text())]
        return bool(steps) and steps[-1] > step

    wait_for(logged, 300, f"a learner step after {checkpoint}", proc)


def stop(proc: subprocess.Popen, deliveries: list[tuple[bool, int]]) -> tuple[int, float, set]:
    """Deliver (to the group?, signal) in turn; exit code, seconds to exit, the run's pids."""
    tree = process_tree(proc.pid)  # the driver, its Ray runtime and the workers
    started = time.monotonic()
    try:
        for to_group, signum in deliveries:
            if to_group:
                os.killpg(proc.pid, signum)
            else:
                os.kill(proc.pid, signum)
            time.sleep(0.05)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return code, time.monotonic() - started, tree


def final_checkpoint(log: Path, signal_name: str) -> str:
    """The checkpoint written after the stop line; the newest (a timer checkpoint may have
    landed between the test's decision to stop and the signal, at the same learner step)."""
    timer, written = stop_checkpoints(log.read_text(), signal_name)
    assert written, log.read_text()[-3000:]
    assert timer and written >= max(timer), (written, timer)
    return written


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (zombies count as gone)."""
    import psutil

    found = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                found.add(pid)
        except psutil.NoSuchProcess:
            pass
    return found


def serve_tensorboard(logdir: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """The real ``tensorboard`` program on 127.0.0.1 at a free port; (process, base URL)."""
    args = [str(BIN / "tensorboard"), "--logdir", str(logdir), "--host", "127.0.0.1",
            "--port", "0", "--load_fast", "false", "--reload_interval", "1"]  # fmt: skip
    out = open(log, "w")  # noqa: SIM115 (kept open for the server's lifetime)
    proc = subprocess.Popen(args, env=ENV, stdout=out, stderr=subprocess.STDOUT)
    url = wait_for(
        lambda: (m := re.search(r"(http://127\.0\.0\.1:\d+)/", log.read_text())) and m.group(1),
        120, "TensorBoard's address", proc,
    )  # fmt: skip
    return proc, url


def get(url: str, path: str, **query: str) -> bytes:
    full = f"{url}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    with urllib.request.urlopen(full, timeout=30) as response:
        return response.read()


def get_json(url: str, path: str, **query: str):
    return json.loads(get(url, path, **query))


def check_tensorboard(run: Path, tmp_path: Path, final_step: int) -> None:
    proc, url = serve_tensorboard(run / "tensorboard", tmp_path / "tensorboard.log")
    try:
        tags = wait_for(
            lambda: get_json(url, "/data/plugin/scalars/tags").get(".", {}) or None,
            120, "TensorBoard to load the scalars", proc,
        )  # fmt: skip
        assert TAGS <= set(tags), sorted(TAGS - set(tags))
        assert "eval/gain/mean" in tags
        # One curve across three sessions: each step once, increasing, the final step last.
        curve = get_json(url, "/data/plugin/scalars/scalars", run=".", tag="loss/total")
        steps = [step for _, step, _ in curve]
        assert steps == sorted(set(steps)) and steps[-1] == final_step, steps
        assert all(value == value for _, _, value in curve)  # no NaN loss once learning

        images = get_json(url, "/data/plugin/images/tags")["."]
        maps = [t for t in images if t.startswith("memory_map/") and t.endswith("/agent")]
        assert maps, images
        entries = get_json(url, "/data/plugin/images/images", run=".", tag=maps[0])
        png = get(url, "/data/plugin/images/individualImage?" + entries[-1]["query"])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000

        text = get_json(url, "/data/plugin/text/text", run=".", tag="config")
        assert '"num_simulations": 4' in text[-1]["text"]  # the smoke config's value
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def stopped_cleanly(
    run: Path, proc: subprocess.Popen, log: Path, after: str, to_group: bool, signum: int
) -> str:
    """After a timer checkpoint newer than ``after`` and a learner step past it, one signal:
    exit 0 within 60 s, a final checkpoint later than that timer one (and the newest), the
    runtime gone."""
    last_timer = timer_checkpoint(run, after, proc)
    learner_moved_past(log, last_timer, proc)
    code, seconds, tree = stop(proc, [(to_group, signum)])
    assert code == 0 and seconds < 60, (code, seconds)
    final = final_checkpoint(log, signal.Signals(signum).name)
    assert final > last_timer and checkpoint_problem(run / "checkpoints" / final) is None
    wait_for(lambda: not alive(tree), 30, "the runtime's processes to stop")
    return final


def listening(pids: set[int]) -> list[tuple[str, int, int]]:
    """(address, port, pid) of every listening TCP socket of ``pids``, from ``ss -ltnp``."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        fields = line.split()
        address, _, port = fields[3].rpartition(":")
        for pid in map(int, re.findall(r"pid=(\d+)", line)):
            if pid in pids:
                found.append((address.strip("[]"), int(port), pid))
    return found


def is_loopback(address: str) -> bool:
    if address in ("*", "0.0.0.0", "::"):  # every interface
        return False
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def loopback_and_actor_restart(run: Path, log: Path, proc: subprocess.Popen) -> None:
    """Every Ray service listens on loopback (only Reverb's port, which takes no address,
    on every interface); an actor killed by its pid comes back and training goes on."""
    replay_port = int(re.search(r"replay at 127\.0\.0\.1:(\d+)", log.read_text()).group(1))
    sockets = listening(process_tree(proc.pid))
    assert len(sockets) >= 4, sockets  # gcs, raylet, workers, reverb
    exposed = [s for s in sockets if not is_loopback(s[0]) and s[1] != replay_port]
    assert exposed == [], exposed

    actors = wait_for(lambda: actors_file(run), 120, "the actors' pids", proc)
    victim = actors[0]["pid"]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: "self-play actor 0 failed" in log.read_text(), 180, "the restart", proc)
    wait_for(
        lambda: json.loads((run / "actors.json").read_text())[0]["pid"] != victim,
        300, "a new actor pid", proc,
    )  # fmt: skip


def resumed_exactly(run: Path, log: Path, proc: subprocess.Popen) -> Path:
    """The resume line names the newest checkpoint's step and replay items; that checkpoint."""
    newest = checkpoints(run)[-1]
    meta = checkpoint_meta(newest)
    assert meta["replay_items"] == item_count(newest / "replay") > 0
    items = meta["replay_items"]
    expected = (f"resumed from {newest.name}: learner step {meta['step']}, {items} replay "
                f"items (checkpoint holds {items})")  # fmt: skip
    wait_for(lambda: expected in log.read_text(), 300, "the resume line", proc)
    return newest


def check_event_files(run: Path, resumed_step: int) -> None:
    """Every tag in the event files; the last run's file starts at its checkpoint's step."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"tensors": 0})
    events.Reload()
    tags = set(events.Tags()["tensors"])  # TF2 summaries: scalars, images and text as tensors
    assert TAGS <= tags, sorted(TAGS - tags)
    assert any(t.startswith("memory_map/") and t.endswith("/agent") for t in tags)
    assert any(t.startswith("memory_map/") and t.endswith("/msa") for t in tags)
    assert "config" in tags
    # Each run writes its own file in the same folder.
    files = sorted((run / "tensorboard").glob("events.out.tfevents.*.v2"), key=os.path.getmtime)
    assert len(files) == 3
    last = EventAccumulator(str(files[-1]), size_guidance={"tensors": 0})
    last.Reload()
    first_step = min(e.step for e in last.Tensors("self_play/steps_per_s"))
    assert first_step == resumed_step


def test_crashes_stops_resumes_and_tensorboard_on_one_run(small_suite, tmp_path):
    run = tmp_path / "run"

    # 1. Without Ray; SIGINT to the driver alone.
    log = tmp_path / "first.log"
    proc = start(run, small_suite, log, "--runner", "sync")
    final = stopped_cleanly(run, proc, log, "", to_group=False, signum=signal.SIGINT)

    # 2. On Ray, resumed exactly; loopback, an actor killed and restarted; then SIGTERM to
    # the whole process group.
    log = tmp_path / "second.log"
    proc = start(run, small_suite, log)
    assert resumed_exactly(run, log, proc).name == final
    loopback_and_actor_restart(run, log, proc)
    wait_for(lambda: "eval gain/msa" in log.read_text(), 300,
             "an evaluation (for its memory maps)", proc)  # fmt: skip
    final = stopped_cleanly(run, proc, log, final, to_group=True, signum=signal.SIGTERM)
    meta = checkpoint_meta(run / "checkpoints" / final)
    assert meta["counters"]["actor_restarts"] >= 1
    final_step = meta["step"]

    check_tensorboard(run, tmp_path, final_step)

    # 3. Resumed without Ray; two signals at once: the second aborts, checkpoints intact.
    log = tmp_path / "third.log"
    proc = start(run, small_suite, log, "--runner", "sync")
    assert resumed_exactly(run, log, proc).name == final
    timer_checkpoint(run, final, proc)
    before = [c.name for c in checkpoints(run)]
    code, seconds, _ = stop(proc, [(True, signal.SIGINT), (False, signal.SIGTERM)])
    assert code == 128 + signal.SIGTERM and seconds < 60, (code, seconds)
    assert "second stop signal (SIGTERM): aborting" in log.read_text()
    # Nothing finished is lost: the newest checkpoint before the signals is still there;
    # what changed is what any save does (a newer checkpoint, the oldest pruned).
    after = [c.name for c in checkpoints(run)]
    gone, added = set(before) - set(after), set(after) - set(before)
    assert before[-1] in after, (before, after)
    assert all(name > before[-1] for name in added), (before, after)
    assert all(name < after[0] for name in gone), (before, after)
    assert all(checkpoint_problem(c) is None for c in checkpoints(run))

    check_event_files(run, final_step)
    assert (run / "checkpoint" / "params.msgpack").is_file()  # usable by solve --solver agent
