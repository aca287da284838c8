"""Compile programs on XLA's CPU backend with dumping on, and import the dump.

Two entry points: :func:`import_jax_function` (a jitted JAX function and its argument
shapes) and :func:`import_hlo_text` (an HLO text module, e.g. the TensorFlow programs in
``../shared/workloads/hlo/``). Dumps go to a temporary folder that is deleted afterwards
(XLA also writes LLVM IR and object files of tens of MB per module).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mallocmuzero.env.importers.xla_dump import DEFAULT_CAPACITY_FRACTION, import_xla_dump
from mallocmuzero.env.workload import DEFAULT_HARDWARE, Hardware, Workload
from mallocmuzero.errors import WorkloadError, where

_DUMP_OPTIONS = {"xla_dump_hlo_as_text": True, "xla_dump_hlo_pass_re": "^$"}


def compile_jax_function(fn: Callable[..., Any], args: Sequence[Any], dump_dir: str) -> Any:
    """Jit-compile ``fn`` for ``args`` (arrays or ShapeDtypeStructs) dumping into ``dump_dir``."""
    import jax

    lowered = jax.jit(fn).lower(*args)
    return lowered.compile({"xla_dump_to": dump_dir, **_DUMP_OPTIONS})


def import_jax_function(
    fn: Callable[..., Any],
    args: Sequence[Any],
    name: str,
    hardware: Hardware = DEFAULT_HARDWARE,
    capacity_fraction: float = DEFAULT_CAPACITY_FRACTION,
    keep_compiled: list[Any] | None = None,
) -> Workload:
    """Compile a JAX function on the CPU backend and import its buffer assignment.

    When ``keep_compiled`` is a list, the compiled executable is appended to it (tests use
    it to compare against ``cost_analysis()`` and ``memory_analysis()``).
    """
    with tempfile.TemporaryDirectory(prefix="mallocmuzero-dump-") as dump:
        compiled = compile_jax_function(fn, args, dump)
        if keep_compiled is not None:
            keep_compiled.append(compiled)
        module = getattr(fn, "__name__", None)
        return import_xla_dump(
            dump,
            module=f"jit_{module}" if module and module != "<lambda>" else None,
            name=name,
            hardware=hardware,
            capacity_fraction=capacity_fraction,
        )


def import_hlo_text(
    path: str | os.PathLike[str],
    name: str | None = None,
    hardware: Hardware = DEFAULT_HARDWARE,
    capacity_fraction: float = DEFAULT_CAPACITY_FRACTION,
) -> Workload:
    """Compile an HLO text module on the CPU backend and import its buffer assignment."""
    import jax.extend.backend
    from jax._src.lib import xla_client

    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkloadError(where(str(path), None, f"cannot read: {exc}")) from None
    try:
        module = xla_client._xla.hlo_module_from_text(text)
    except Exception as exc:  # XLA raises its own status errors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WorkloadError(where(str(path), None, f"not valid HLO text: {first}")) from None
    computation = xla_client.XlaComputation(module.as_serialized_hlo_module_proto())
    mlir = xla_client._xla.mlir.xla_computation_to_mlir_module(computation)
    backend = jax.extend.backend.get_backend("cpu")
    with tempfile.TemporaryDirectory(prefix="mallocmuzero-dump-") as dump:
        options = xla_client.CompileOptions()
        debug = options.executable_build_options.debug_options
        debug.xla_dump_to = dump
        debug.xla_dump_hlo_as_text = True
        debug.xla_dump_hlo_pass_re = "^$"
        backend.compile(mlir, options)
        return import_xla_dump(
            dump, name=name or path.stem, hardware=hardware, capacity_fraction=capacity_fraction
        )
