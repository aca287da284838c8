"""TensorBoard logging for a run: scalars, memory-map images and the config as text.

One writer, in the supervisor, logs every role's figures against the learner step, so a
resumed run continues the same curves from the checkpoint's step.
"""

from __future__ import annotations

from pathlib import Path

import ml_collections


class TensorBoard:
    """Writes event files under ``RUN/tensorboard``."""

    def __init__(self, run_dir: str | Path) -> None:
        import tensorflow as tf

        self._tf = tf
        self.folder = Path(run_dir) / "tensorboard"
        self._writer = tf.summary.create_file_writer(str(self.folder))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Log ``values`` at ``step``."""
        with self._writer.as_default(step=step):
            for tag, value in values.items():
                self._tf.summary.scalar(tag, float(value))

    def images(self, step: int, pngs: dict[str, bytes]) -> None:
        """Log PNG images at ``step``."""
        with self._writer.as_default(step=step):
            for tag, png in pngs.items():
                image = self._tf.io.decode_png(png, channels=3)[None]
                self._tf.summary.image(tag, image)

    def config(self, step: int, config: ml_collections.ConfigDict) -> None:
        """Log the run's config as a text summary."""
        text = "```\n" + config.to_json(indent=1) + "\n```"
        with self._writer.as_default(step=step):
            self._tf.summary.text("config", text)

    def flush(self) -> None:
        """Write buffered events to disk."""
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self._writer.close()
