"""Reverb checkpoints that resume under the *current* config.

A Reverb server started from a checkpoint restores the checkpoint's own table (its max
size, selectors and rate limiter), ignoring the table it was given: a resumed run would
keep a stale sample-to-insert ratio. :func:`retarget_checkpoint` copies a checkpoint and
rewrites its table definition from a table built from the current config; the items and
their priorities are kept, and the rate limiter's counters are rebalanced so that the
configured ratio holds from the first step after the resume.

A checkpoint folder holds ``tables.tfrecord``, ``items.tfrecord``, ``chunks.tfrecord``
(ZLIB-compressed TFRecords of Reverb's protos) and an empty ``DONE`` marker.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

COMPRESSION = "ZLIB"
FILES = ("tables.tfrecord", "items.tfrecord", "chunks.tfrecord", "DONE")


def is_complete(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` holds every file of a finished Reverb checkpoint."""
    return all((Path(folder) / name).is_file() for name in FILES)


def _records(path: Path) -> list[bytes]:
    import tensorflow as tf

    return [r.numpy() for r in tf.data.TFRecordDataset(str(path), compression_type=COMPRESSION)]


def item_count(folder: str | os.PathLike[str]) -> int:
    """Number of items stored in a Reverb checkpoint (all tables)."""
    return len(_records(Path(folder) / "items.tfrecord"))


def retarget_checkpoint(
    source: str | os.PathLike[str], target: str | os.PathLike[str], table
) -> Path:
    """Copy checkpoint ``source`` to ``target`` with ``table``'s definition (a reverb.Table).

    The table of the same name in the checkpoint takes the new max size, selectors and
    rate-limiter settings; its insert and delete counts are kept and its sample count is
    set to ``inserts * samples_per_insert``, so the limiter starts balanced.
    """
    import tensorflow as tf
    from reverb.cc.checkpointing import checkpoint_pb2

    src, dst = Path(source), Path(target)
    if not is_complete(src):
        raise ValueError(f"{src}: not a complete Reverb checkpoint")
    info = table.info
    tables = []
    for record in _records(src / "tables.tfrecord"):
        checkpoint = checkpoint_pb2.PriorityTableCheckpoint.FromString(record)
        if checkpoint.table_name == info.name:
            checkpoint.max_size = info.max_size
            checkpoint.sampler.CopyFrom(info.sampler_options)
            checkpoint.remover.CopyFrom(info.remover_options)
            limiter, fresh = checkpoint.rate_limiter, info.rate_limiter_info
            limiter.samples_per_insert = fresh.samples_per_insert
            limiter.min_diff = fresh.min_diff
            limiter.max_diff = fresh.max_diff
            limiter.min_size_to_sample = fresh.min_size_to_sample
            limiter.sample_count = int(limiter.insert_count * fresh.samples_per_insert)
        tables.append(checkpoint.SerializeToString())
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for name in ("items.tfrecord", "chunks.tfrecord"):
        shutil.copyfile(src / name, dst / name)
    with tf.io.TFRecordWriter(str(dst / "tables.tfrecord"), options=COMPRESSION) as writer:
        for record in tables:
            writer.write(record)
    (dst / "DONE").touch()
    return dst
