"""TensorBoard logging for a run: scalars, memory-map images and the config as text.

One writer, in the supervisor, logs every role's figures against the learner step, so a
resumed run continues the same curves from the checkpoint's step. Each run first writes a
session-start event at its first step: TensorBoard then discards what an earlier run of
the folder logged at that step or later (a run killed after its last checkpoint), so a
curve never zigzags across a resume. A scalar is written at most once per step.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from mallocmuzero.configs.schema import ExperimentConfig


class TensorBoard:
    """Writes event files under ``RUN/tensorboard``."""

    def __init__(self, run_dir: str | Path, start_step: int = 0) -> None:
        import tensorflow as tf

        self._tf = tf
        self.folder = Path(run_dir) / "tensorboard"
        self._writer = tf.summary.create_file_writer(str(self.folder))
        self._write_session_start(start_step)
        self._last_step: dict[str, int] = {}

    def _write_session_start(self, step: int) -> None:
        """SessionLog.START at ``step``, the first event of this run's file."""
        from tensorboard.compat.proto import event_pb2
        from tensorflow.python.ops import summary_ops_v2  # the raw-event op of tf.summary

        start = event_pb2.Event(wall_time=time.time(), step=step)
        start.session_log.status = event_pb2.SessionLog.START
        with self._writer.as_default():
            summary_ops_v2.import_event(self._tf.constant(start.SerializeToString()))
        self._writer.flush()

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Log ``values`` at ``step``; a tag already written at ``step`` or later is skipped."""
        fresh = {t: v for t, v in values.items() if self._last_step.get(t, -1) < step}
        with self._writer.as_default(step=step):
            for tag, value in fresh.items():
                self._tf.summary.scalar(tag, float(value))
                self._last_step[tag] = step

    def images(self, step: int, pngs: dict[str, bytes]) -> None:
        """Log PNG images at ``step``."""
        with self._writer.as_default(step=step):
            for tag, png in pngs.items():
                image = self._tf.io.decode_png(png, channels=3)[None]
                self._tf.summary.image(tag, image)

    def config(self, step: int, config: ExperimentConfig) -> None:
        """Log the run's config as a text summary."""
        text = "```\n" + json.dumps(config.to_dict(), indent=1) + "\n```"
        with self._writer.as_default(step=step):
            self._tf.summary.text("config", text)

    def flush(self) -> None:
        """Write buffered events to disk."""
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self._writer.close()
