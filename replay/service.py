"""The replay service: a Reverb server with checkpoints that resume under the current config.

The distributed runner wraps :class:`ReplayService` in a Ray actor; it is a plain class so
it can be tested and used without Ray. Reverb's server listens on every interface with no
authentication (it takes only a port): a free random port is picked, the server stops
with the run, and a cluster must sit on a private network (README, Security).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from mallocmuzero.memory import release_free_memory
from mallocmuzero.replay.checkpoint import item_count, retarget_checkpoint
from mallocmuzero.replay.schema import SequenceSpec
from mallocmuzero.replay.server import TABLE, ReplayConfig, make_table


class ReplayService:
    """One Reverb server holding the sequence table.

    ``restore_from``: a Reverb checkpoint folder whose items to load; the table itself is
    always built from ``config`` (see :mod:`mallocmuzero.replay.checkpoint`).
    ``scratch_dir``: where Reverb writes checkpoints before they are moved into a run's
    checkpoint; ``host``: the address other nodes reach this one by.
    """

    def __init__(
        self,
        spec: SequenceSpec,
        config: ReplayConfig,
        scratch_dir: str,
        restore_from: str | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        import reverb

        Path(scratch_dir).mkdir(parents=True, exist_ok=True)
        self._scratch = Path(tempfile.mkdtemp(dir=scratch_dir, prefix="reverb-"))
        fallback = None
        if restore_from:
            fallback = str(
                retarget_checkpoint(
                    restore_from, self._scratch / "restore", make_table(spec, config)
                )
            )
        checkpointer = reverb.checkpointers.DefaultCheckpointer(
            str(self._scratch / "checkpoints"), fallback_checkpoint_path=fallback
        )
        self._server = reverb.Server([make_table(spec, config)], checkpointer=checkpointer)
        self._host = host
        self._client = reverb.Client(f"127.0.0.1:{self._server.port}")
        self.restored_items = self.size()

    def address(self) -> str:
        """``host:port`` of the server, as other processes and nodes reach it."""
        return f"{self._host}:{self._server.port}"

    def size(self) -> int:
        """Items in the table now."""
        return int(self._client.server_info()[TABLE].current_size)

    def stats(self) -> dict[str, float]:
        """Table size and the rate limiter's completed inserts and samples."""
        info = self._client.server_info()[TABLE]
        limiter = info.rate_limiter_info
        return {
            "size": float(info.current_size),
            "inserts": float(limiter.insert_stats.completed),
            "samples": float(limiter.sample_stats.completed),
        }

    def checkpoint(self, destination: str) -> int:
        """Checkpoint the table into ``destination`` (a new folder); returns its item count."""
        written = Path(self._client.checkpoint())
        target = Path(destination)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(written), str(target))
        release_free_memory()  # the serialisation buffers, kept by glibc otherwise
        return item_count(target)

    def stop(self) -> None:
        """Stop the server and delete its scratch folder."""
        self._server.stop()
        shutil.rmtree(self._scratch, ignore_errors=True)
