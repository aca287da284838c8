"""The workload of mallocgame.md section 1: instructions, buffers, hardware and capacity.

A :class:`Workload` is immutable and array-backed. Build one with :func:`build_workload`
(which validates every rule of the specification) or load one with :func:`load_workload`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mallocmuzero.errors import ArgumentError, WorkloadError, where

WORKLOAD_FORMAT = "mallocmuzero.workload/1"


@dataclasses.dataclass(frozen=True)
class Hardware:
    """Roofline parameters: compute rate and the bandwidths of slow and fast memory."""

    peak_flops: float
    slow_bandwidth: float
    fast_bandwidth: float


#: An accelerator-like default: 100 TFLOP/s, 1 TB/s slow (HBM-like), 10 TB/s fast (SRAM-like).
DEFAULT_HARDWARE = Hardware(peak_flops=1.0e14, slow_bandwidth=1.0e12, fast_bandwidth=1.0e13)


@dataclasses.dataclass(frozen=True, eq=False)
class Workload:
    """One compiled program seen by a memory planner (arrays indexed by buffer *index*).

    Accesses are stored in CSR form over instructions: the accesses of instruction ``t`` are
    ``access_buffer[access_ptr[t]:access_ptr[t+1]]`` (buffer indices) with byte counts
    ``access_bytes[...]``. ``buffer_ids`` maps an index back to the file's buffer id.
    """

    name: str
    flops: np.ndarray
    repeat: np.ndarray
    access_ptr: np.ndarray
    access_buffer: np.ndarray
    access_bytes: np.ndarray
    buffer_ids: np.ndarray
    size: np.ndarray
    start: np.ndarray
    end: np.ndarray
    pinned: np.ndarray
    names: tuple[str | None, ...]
    hardware: Hardware
    capacity: int

    @property
    def num_instructions(self) -> int:
        """Number of scheduled instructions ``T``."""
        return int(self.flops.shape[0])

    @property
    def num_buffers(self) -> int:
        """Number of buffers."""
        return int(self.size.shape[0])

    def live_time(self) -> np.ndarray:
        """Each buffer's live time in instruction runs (loop repeats counted), int64."""
        clock = np.concatenate([[0], np.cumsum(self.repeat, dtype=np.int64)])
        return clock[self.end] - clock[self.start]

    def with_capacity(self, capacity: int) -> Workload:
        """Return the same workload with another fast-memory capacity (bytes)."""
        if capacity <= 0:
            raise WorkloadError(where(self.name, "capacity", f"must be > 0 (got {capacity})"))
        return dataclasses.replace(self, capacity=int(capacity))


def placeable_peak(workload: Workload) -> int:
    """Largest total size of unpinned buffers live at one instruction (spec section 1)."""
    live = np.zeros(workload.num_instructions + 1, dtype=np.int64)
    unpinned = ~workload.pinned
    np.add.at(live, workload.start[unpinned], workload.size[unpinned])
    np.add.at(live, workload.end[unpinned], -workload.size[unpinned])
    return int(np.cumsum(live).max(initial=0))


def resolve_capacity(
    workload: Workload, capacity: int | None = None, fraction: float | None = None
) -> Workload:
    """Apply a capacity override: absolute bytes, or a fraction of the placeable peak."""
    if capacity is not None and fraction is not None:
        raise ArgumentError("capacity", "and fraction exclude each other: give one")
    if fraction is not None:
        if not 0 < fraction:
            raise ArgumentError(
                "fraction", f"must be > 0 (got {fraction})", flag="--capacity-fraction"
            )
        peak = placeable_peak(workload)
        if peak == 0:
            raise WorkloadError(
                where(workload.name, "capacity", "no placeable buffer, a fraction means nothing")
            )
        return workload.with_capacity(max(1, int(peak * fraction)))
    if capacity is not None:
        return workload.with_capacity(int(capacity))
    return workload


def _number(value: Any, source: str, field: str, *, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WorkloadError(where(source, field, f"must be a number (got {value!r})"))
    if not math.isfinite(value):
        raise WorkloadError(where(source, field, f"must be finite (got {value!r})"))
    if integer and not float(value).is_integer():
        raise WorkloadError(where(source, field, f"must be an integer (got {value!r})"))
    return value


def _require(mapping: Mapping[str, Any], key: str, source: str, field: str) -> Any:
    if not isinstance(mapping, Mapping):
        raise WorkloadError(where(source, field, "must be an object"))
    if key not in mapping:
        raise WorkloadError(where(source, f"{field}.{key}" if field else key, "missing"))
    return mapping[key]


def _checked_header(
    hardware: Hardware, capacity: Any, buffers: Any, instructions: Any, src: str
) -> float:
    """Check the hardware, the capacity and that the two lists are lists; the capacity."""
    for field in ("peak_flops", "slow_bandwidth", "fast_bandwidth"):
        value = _number(getattr(hardware, field), src, f"hardware.{field}")
        if value <= 0:
            raise WorkloadError(where(src, f"hardware.{field}", f"must be > 0 (got {value})"))
    capacity = _number(capacity, src, "capacity", integer=True)
    if capacity <= 0:
        raise WorkloadError(where(src, "capacity", f"must be > 0 (got {capacity})"))
    if not isinstance(buffers, Sequence) or isinstance(buffers, str):
        raise WorkloadError(where(src, "buffers", "must be a list"))
    if not isinstance(instructions, Sequence) or isinstance(instructions, str):
        raise WorkloadError(where(src, "instructions", "must be a list"))
    return capacity


def _parsed_buffers(buffers: Sequence[Mapping[str, Any]], num_instr: int, src: str):
    """Check every buffer: (index of each id, sizes, starts, ends, pinned flags, names)."""
    index_of: dict[int, int] = {}
    sizes, starts, ends, pinned, names = [], [], [], [], []
    for i, buf in enumerate(buffers):
        field = f"buffers[{i}]"
        buffer_id = int(_number(_require(buf, "id", src, field), src, f"{field}.id", integer=True))
        if buffer_id in index_of:
            raise WorkloadError(where(src, f"{field}.id", f"duplicate buffer id {buffer_id}"))
        size = _number(_require(buf, "size", src, field), src, f"{field}.size", integer=True)
        start = _number(_require(buf, "start", src, field), src, f"{field}.start", integer=True)
        end = _number(_require(buf, "end", src, field), src, f"{field}.end", integer=True)
        if size <= 0:
            raise WorkloadError(where(src, f"{field}.size", f"must be > 0 (got {size})"))
        if start < 0:
            raise WorkloadError(where(src, f"{field}.start", f"must be >= 0 (got {start})"))
        if end <= start:
            raise WorkloadError(
                where(src, f"{field}.end", f"must be > start (got start={start}, end={end})")
            )
        if end > num_instr:
            raise WorkloadError(
                where(src, f"{field}.end", f"must be <= T={num_instr} instructions (got {end})")
            )
        is_pinned = buf.get("pinned", False)
        if not isinstance(is_pinned, bool):
            raise WorkloadError(where(src, f"{field}.pinned", "must be true or false"))
        label = buf.get("name")
        if label is not None and not isinstance(label, str):
            raise WorkloadError(where(src, f"{field}.name", "must be a string"))
        index_of[buffer_id] = i
        sizes.append(int(size))
        starts.append(int(start))
        ends.append(int(end))
        pinned.append(is_pinned)
        names.append(label)
    return index_of, sizes, starts, ends, pinned, names


def _parsed_instructions(
    instructions: Sequence[Mapping[str, Any]],
    index_of: dict[int, int],
    starts: list[int],
    ends: list[int],
    src: str,
):
    """Check every instruction: (flops, repeat, CSR pointer, accessed buffer, bytes)."""
    num_instr = len(instructions)
    flops = np.zeros(num_instr, dtype=np.float64)
    repeat = np.ones(num_instr, dtype=np.float64)
    ptr = np.zeros(num_instr + 1, dtype=np.int64)
    acc_buffer: list[int] = []
    acc_bytes: list[float] = []
    for t, instr in enumerate(instructions):
        field = f"instructions[{t}]"
        flops[t] = _number(_require(instr, "flops", src, field), src, f"{field}.flops")
        if flops[t] < 0:
            raise WorkloadError(where(src, f"{field}.flops", f"must be >= 0 (got {flops[t]})"))
        if "repeat" in instr:
            repeat[t] = _number(instr["repeat"], src, f"{field}.repeat")
            if repeat[t] <= 0:
                raise WorkloadError(
                    where(src, f"{field}.repeat", f"must be > 0 (got {instr['repeat']})")
                )
        accesses = _require(instr, "accesses", src, field)
        if not isinstance(accesses, Sequence) or isinstance(accesses, str):
            raise WorkloadError(where(src, f"{field}.accesses", "must be a list"))
        for k, access in enumerate(accesses):
            afield = f"{field}.accesses[{k}]"
            if not isinstance(access, Sequence) or isinstance(access, str) or len(access) != 2:
                raise WorkloadError(where(src, afield, "must be [buffer_id, bytes]"))
            buffer_id = int(_number(access[0], src, afield, integer=True))
            nbytes = _number(access[1], src, afield)
            if buffer_id not in index_of:
                raise WorkloadError(where(src, afield, f"unknown buffer id {buffer_id}"))
            if nbytes < 0:
                raise WorkloadError(where(src, afield, f"bytes must be >= 0 (got {nbytes})"))
            b = index_of[buffer_id]
            if not starts[b] <= t < ends[b]:
                raise WorkloadError(
                    where(
                        src,
                        afield,
                        f"buffer {buffer_id} accessed at instruction {t}, outside its live "
                        f"range [{starts[b]}, {ends[b]})",
                    )
                )
            acc_buffer.append(b)
            acc_bytes.append(float(nbytes))
        ptr[t + 1] = len(acc_buffer)
    return flops, repeat, ptr, acc_buffer, acc_bytes


def build_workload(
    *,
    name: str,
    instructions: Sequence[Mapping[str, Any]],
    buffers: Sequence[Mapping[str, Any]],
    hardware: Hardware,
    capacity: int,
    source: str | None = None,
) -> Workload:
    """Validate the spec's rules and build an array-backed :class:`Workload`.

    ``instructions`` items have ``flops``, optional ``repeat`` and ``accesses`` (a list of
    ``[buffer_id, bytes]``); ``buffers`` items have ``id``, ``size``, ``start``, ``end``,
    ``pinned`` and an optional ``name``. Raises :class:`WorkloadError` naming the source
    and field of the first broken rule.
    """
    src = source or name
    capacity = _checked_header(hardware, capacity, buffers, instructions, src)
    index_of, sizes, starts, ends, pinned, names = _parsed_buffers(buffers, len(instructions), src)
    flops, repeat, ptr, acc_buffer, acc_bytes = _parsed_instructions(
        instructions, index_of, starts, ends, src
    )
    return Workload(
        name=name,
        flops=flops,
        repeat=repeat,
        access_ptr=ptr,
        access_buffer=np.asarray(acc_buffer, dtype=np.int64),
        access_bytes=np.asarray(acc_bytes, dtype=np.float64),
        buffer_ids=np.asarray(list(index_of), dtype=np.int64),
        size=np.asarray(sizes, dtype=np.int64),
        start=np.asarray(starts, dtype=np.int64),
        end=np.asarray(ends, dtype=np.int64),
        pinned=np.asarray(pinned, dtype=bool),
        names=tuple(names),
        hardware=hardware,
        capacity=int(capacity),
    )


def workload_from_dict(data: Any, source: str) -> Workload:
    """Build a workload from the canonical JSON object, validating it."""
    if not isinstance(data, Mapping):
        raise WorkloadError(where(source, None, "top level must be a JSON object"))
    fmt = data.get("format")
    if fmt != WORKLOAD_FORMAT:
        raise WorkloadError(where(source, "format", f"expected {WORKLOAD_FORMAT!r}, got {fmt!r}"))
    hw = _require(data, "hardware", source, "")
    hardware = Hardware(
        peak_flops=_require(hw, "peak_flops", source, "hardware"),
        slow_bandwidth=_require(hw, "slow_bandwidth", source, "hardware"),
        fast_bandwidth=_require(hw, "fast_bandwidth", source, "hardware"),
    )
    name = data.get("name") or Path(source).stem
    return build_workload(
        name=str(name),
        instructions=_require(data, "instructions", source, ""),
        buffers=_require(data, "buffers", source, ""),
        hardware=hardware,
        capacity=_require(data, "capacity", source, ""),
        source=source,
    )


def workload_to_dict(workload: Workload) -> dict[str, Any]:
    """Return the canonical JSON object (``mallocmuzero.workload/1``) of a workload."""
    ids = workload.buffer_ids.tolist()
    instructions = []
    for t in range(workload.num_instructions):
        lo, hi = workload.access_ptr[t], workload.access_ptr[t + 1]
        item: dict[str, Any] = {"flops": float(workload.flops[t])}
        if workload.repeat[t] != 1:
            rep = float(workload.repeat[t])
            item["repeat"] = int(rep) if rep.is_integer() else rep
        item["accesses"] = [
            [ids[b], _compact(nb)]
            for b, nb in zip(workload.access_buffer[lo:hi], workload.access_bytes[lo:hi])
        ]
        instructions.append(item)
    buffers = []
    for b in range(workload.num_buffers):
        item = {
            "id": ids[b],
            "size": int(workload.size[b]),
            "start": int(workload.start[b]),
            "end": int(workload.end[b]),
            "pinned": bool(workload.pinned[b]),
        }
        if workload.names[b] is not None:
            item["name"] = workload.names[b]
        buffers.append(item)
    return {
        "format": WORKLOAD_FORMAT,
        "name": workload.name,
        "hardware": dataclasses.asdict(workload.hardware),
        "capacity": workload.capacity,
        "instructions": instructions,
        "buffers": buffers,
    }


def _compact(value: float) -> int | float:
    value = float(value)
    return int(value) if value.is_integer() else value


def read_json(path: str | os.PathLike[str], error: type[Exception] = WorkloadError) -> Any:
    """Read a JSON file, turning I/O and syntax problems into one-line user errors."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise error(where(str(path), None, "no such file")) from None
    except IsADirectoryError:
        raise error(where(str(path), None, "is a directory, expected a JSON file")) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(where(str(path), None, f"cannot read: {exc}")) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(
            where(str(path), None, f"bad JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")
        ) from None


def write_bytes_atomic(data: bytes, path: str | os.PathLike[str]) -> None:
    """Write ``data`` so that a crash never leaves a half-written file at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(data: Any, path: str | os.PathLike[str]) -> None:
    """Write JSON so that a crash never leaves a half-written file at ``path``."""
    write_bytes_atomic((json.dumps(data, separators=(",", ":")) + "\n").encode(), path)


def load_workload(path: str | os.PathLike[str]) -> Workload:
    """Load and validate a ``mallocmuzero.workload/1`` JSON file."""
    return workload_from_dict(read_json(path), str(path))


def save_workload(workload: Workload, path: str | os.PathLike[str]) -> None:
    """Save a workload as canonical JSON, atomically."""
    write_json_atomic(workload_to_dict(workload), path)
