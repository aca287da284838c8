"""FLOPs and bytes of HLO instructions, and how often each computation runs.

Flop counts follow XLA's HloCostAnalysis so that totals can be checked against
``compiled.cost_analysis()``: dot = 2 x |out| x contracted size; convolution = 2 x fused
multiply-adds over valid (unpadded) taps; elementwise = |out| (transcendentals counted
apart); reduce = (|in| - |out|) x reducer flops; fusion = the sum over its computation.
"""

from __future__ import annotations

import math
import re

from mallocmuzero.env.importers.hlo_text import (
    FREE_OPS,
    Instruction,
    Module,
    Shape,
    attr,
    called_computations,
    dims_list,
    trip_count,
)

TRANSCENDENTAL = {
    "exponential", "exponential-minus-one", "log", "log-plus-one", "power", "sqrt", "cbrt",
    "rsqrt", "tanh", "sine", "cosine", "tan", "atan2", "erf", "logistic",
}  # fmt: skip
ELEMENTWISE = {
    "add", "subtract", "multiply", "divide", "maximum", "minimum", "negate", "abs", "sign",
    "compare", "select", "and", "or", "xor", "not", "clamp", "remainder", "floor", "ceil",
    "round-nearest-afz", "round-nearest-even", "convert", "shift-left",
    "shift-right-logical", "shift-right-arithmetic", "is-finite", "real", "imag", "popcnt",
    "count-leading-zeros", "stochastic-convert", "reduce-precision",
}  # fmt: skip


class FlopCounter:
    """HloCostAnalysis-style flops and transcendentals of instructions of one module."""

    def __init__(self, module: Module) -> None:
        self.module = module
        self.by_name = module.instruction_index()
        self._computation_cache: dict[str, tuple[float, float]] = {}

    def computation(self, name: str) -> tuple[float, float]:
        """(flops, transcendentals) of one run of a whole computation."""
        if name not in self._computation_cache:
            total = [0.0, 0.0]
            for instr in self.module.computations.get(name, []):
                f, t = self.instruction(instr)
                total[0] += f
                total[1] += t
            self._computation_cache[name] = (total[0], total[1])
        return self._computation_cache[name]

    def _operand_shape(self, instr: Instruction, k: int) -> Shape:
        return self.by_name[instr.operands[k]].shape

    def instruction(self, instr: Instruction) -> tuple[float, float]:
        """(flops, transcendentals) of one run of one instruction (while bodies excluded)."""
        op = instr.opcode
        out = instr.shape.num_elements
        if op in TRANSCENDENTAL:
            return 0.0, float(out)
        if op in ELEMENTWISE:
            return float(out), 0.0
        if op == "dot":
            lhs = self._operand_shape(instr, 0)
            contracted = math.prod(
                lhs.dims[d] for d in dims_list(attr(instr.attrs, "lhs_contracting_dims"))
            )
            return 2.0 * out * contracted, 0.0
        if op == "convolution":
            return 2.0 * self._convolution_fmas(instr), 0.0
        if op in ("reduce", "reduce-window", "map", "scatter", "select-and-scatter"):
            sub = called_computations(instr)
            f, t = self.computation(sub[0]) if sub else (1.0, 0.0)
            if op == "reduce":
                n_inputs = max(1, len(instr.operands) // 2)
                count = self._operand_shape(instr, 0).num_elements - out // n_inputs
            elif op == "reduce-window":
                window = attr(instr.attrs, "window") or ""
                m = re.search(r"size=([\dx]+)", window)
                taps = math.prod(int(x) for x in m.group(1).split("x")) if m else 1
                count = out * (taps - 1)
            elif op == "scatter":
                count = self._operand_shape(instr, len(instr.operands) - 1).num_elements
            else:
                count = out
            return count * f, count * t
        if op == "fusion":
            sub = called_computations(instr)
            return self.computation(sub[0]) if sub else (0.0, 0.0)
        return 0.0, 0.0

    def _convolution_fmas(self, instr: Instruction) -> float:
        lhs = self._operand_shape(instr, 0)
        rhs = self._operand_shape(instr, 1)
        labels = attr(instr.attrs, "dim_labels") or ""
        m = re.match(r"([\w]+)_([\w]+)->([\w]+)", labels)
        if not m:
            return float(instr.shape.num_elements * rhs.num_elements)
        lhs_l, rhs_l, out_l = m.groups()
        out = instr.shape
        window = attr(instr.attrs, "window") or ""
        spatial = [c for c in lhs_l if c.isdigit()]

        def window_field(key: str, default: int, count: int) -> list[str]:
            mm = re.search(rf"\b{key}=([\d_x\-]+)", window)
            return mm.group(1).split("x") if mm else [str(default)] * count

        n = len(spatial)
        strides = [int(x) for x in window_field("stride", 1, n)]
        pads = [tuple(int(v) for v in p.split("_")) for p in window_field("pad", 0, n)]
        if pads and len(pads[0]) == 1:
            pads = [(p[0], p[0]) for p in pads]
        lhs_dil = [int(x) for x in window_field("lhs_dilate", 1, n)]
        rhs_dil = [int(x) for x in window_field("rhs_dilate", 1, n)]
        valid_product = 1
        for d, label in enumerate(spatial):
            in_size = lhs.dims[lhs_l.index(label)]
            k_size = rhs.dims[rhs_l.index(label)]
            o_size = out.dims[out_l.index(label)]
            dilated = (in_size - 1) * lhs_dil[d] + 1
            valid = 0
            for o in range(o_size):
                base = o * strides[d] - pads[d][0]
                for k in range(k_size):
                    i = base + k * rhs_dil[d]
                    if 0 <= i < dilated and i % lhs_dil[d] == 0:
                        valid += 1
            valid_product *= valid
        groups = int(attr(instr.attrs, "feature_group_count") or 1)
        batch_groups = int(attr(instr.attrs, "batch_group_count") or 1)
        in_features = lhs.dims[lhs_l.index("f")]
        out_features = out.dims[out_l.index("f")]
        batch = out.dims[out_l.index("b")]
        del batch_groups  # the output batch already accounts for batch groups
        return float(batch * out_features * (in_features // groups) * valid_product)


_SLICING = {"slice", "dynamic-slice", "gather"}


def _fused_parameter_bytes(module: Module, fusion: Instruction, k: int, full: float) -> float:
    """Bytes a fusion reads of operand k: only the sliced part when every user slices it."""
    sub = called_computations(fusion)
    if not sub:
        return full
    instrs = module.computations.get(sub[0], [])
    param = next(
        (
            i
            for i in instrs
            if i.opcode == "parameter" and re.match(rf"\s*{k}\s*$", _param_number(i))
        ),
        None,
    )
    if param is None:
        return full
    users = [i for i in instrs if param.name in i.operands]
    if users and all(u.opcode in _SLICING and u.operands[0] == param.name for u in users):
        return float(sum(u.shape.bytes for u in users))
    if users and all(
        u.opcode == "dynamic-update-slice" and u.operands[0] == param.name for u in users
    ):
        return 0.0  # updated in place: only the update is written
    return full


def _param_number(instr: Instruction) -> str:
    return instr.attrs  # for a parameter, _parse_instruction keeps its number K in attrs


def operand_bytes(
    module: Module, by_name: dict[str, Instruction], instr: Instruction, k: int
) -> float:
    """Bytes ``instr`` reads of its operand ``k`` (XLA's rules for slicing and in-place ops)."""
    operand = by_name.get(instr.operands[k])
    if operand is None:
        return 0.0
    full = float(operand.shape.bytes)
    op = instr.opcode
    if op in _SLICING and k == 0:
        return float(instr.shape.bytes)
    if op == "dynamic-update-slice" and k == 0:
        return 0.0
    if op == "fusion":
        return _fused_parameter_bytes(module, instr, k, full)
    return full


def output_bytes(module: Module, by_name: dict[str, Instruction], instr: Instruction) -> float:
    """Bytes ``instr`` writes (an in-place dynamic-update-slice writes only its update)."""
    if instr.opcode == "dynamic-update-slice":
        return float(by_name[instr.operands[1]].shape.bytes)
    if instr.opcode == "fusion":
        sub = called_computations(instr)
        root = (
            next((i for i in module.computations.get(sub[0], []) if i.is_root), None)
            if sub
            else None
        )
        if root is not None and root.opcode == "dynamic-update-slice":
            inner = {i.name: i for i in module.computations[sub[0]]}
            return float(inner[root.operands[1]].shape.bytes)
    return float(instr.shape.bytes)


def operand_and_output_bytes(
    module: Module, by_name: dict[str, Instruction], instr: Instruction
) -> float:
    """Bytes an instruction reads plus writes, as HloCostAnalysis counts them (0 if free).

    ``by_name`` is :meth:`Module.instruction_index` of ``module``.
    """
    if instr.opcode in FREE_OPS and instr.opcode != "tuple":
        return 0.0
    if instr.opcode == "tuple":
        return float(instr.shape.bytes)
    reads = sum(operand_bytes(module, by_name, instr, k) for k in range(len(instr.operands)))
    return reads + output_bytes(module, by_name, instr)


def computation_repeats(module: Module) -> dict[str, float]:
    """How many times each computation runs per program run (while trip counts multiply)."""
    repeat = {module.entry: 1.0}
    pending = [module.entry]
    while pending:
        comp = pending.pop()
        for instr in module.computations.get(comp, []):
            if instr.opcode != "while":
                factor = 1.0
                if instr.opcode not in ("call", "conditional"):
                    continue
            else:
                factor = float(trip_count(instr) or 1)
            for callee in called_computations(instr):
                if callee not in repeat:
                    repeat[callee] = repeat[comp] * factor
                    pending.append(callee)
    return repeat


def access_bytes(
    module: Module,
    by_name: dict[str, Instruction],
    instr: Instruction,
    operand: int,
    value_size: int,
) -> float:
    """Bytes of a value that ``instr`` reads (operand >= 0) or writes (operand -1).

    XLA's per-operand rules scale the value's size: a slice reads only what it keeps, an
    in-place dynamic-update-slice writes only its update.
    """
    if operand < 0:
        full = instr.shape.bytes
        part = output_bytes(module, by_name, instr)
    else:
        if operand >= len(instr.operands) or instr.operands[operand] not in by_name:
            return float(value_size)
        full = by_name[instr.operands[operand]].shape.bytes
        part = operand_bytes(module, by_name, instr, operand)
    if instr.shape.elements is not None and operand < 0 or full <= 0:
        return float(value_size)
    return value_size * min(1.0, part / full)
