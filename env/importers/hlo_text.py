"""Parse HLO text (the optimized module XLA dumps) into instructions with shapes and flops.

Flop counts follow XLA's HloCostAnalysis so that totals can be checked against
``compiled.cost_analysis()``: dot = 2 x |out| x contracted size; convolution = 2 x fused
multiply-adds over valid (unpadded) taps; elementwise = |out| (transcendentals counted
apart); reduce = (|in| - |out|) x reducer flops; fusion = the sum over its computation.
"""

from __future__ import annotations

import dataclasses
import math
import re

from mallocmuzero.errors import WorkloadError, where

DTYPE_BYTES = {
    "pred": 1, "s2": 1, "u2": 1, "s4": 1, "u4": 1, "s8": 1, "u8": 1, "f8e4m3fn": 1, "f8e5m2": 1,
    "f8e4m3b11fnuz": 1, "f8e4m3fnuz": 1, "f8e5m2fnuz": 1, "s16": 2, "u16": 2, "f16": 2,
    "bf16": 2, "s32": 4, "u32": 4, "f32": 4, "s64": 8, "u64": 8, "f64": 8, "c64": 8,
    "c128": 16, "token": 0,
}  # fmt: skip

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
#: Opcodes that touch no memory of their own (they alias or pass buffers through).
FREE_OPS = {
    "parameter", "tuple", "get-tuple-element", "bitcast", "while", "conditional", "call",
    "after-all", "opt-barrier", "add-dependency", "constant",
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Shape:
    """An array shape (``dtype``, ``dims``) or a tuple of shapes (``elements``)."""

    dtype: str
    dims: tuple[int, ...] = ()
    elements: tuple[Shape, ...] | None = None

    @property
    def num_elements(self) -> int:
        """Elements of an array shape (sum over a tuple's leaves)."""
        if self.elements is not None:
            return sum(e.num_elements for e in self.elements)
        return math.prod(self.dims)

    @property
    def bytes(self) -> int:
        """Bytes of an array; for a tuple, its table of pointers (8 bytes each), as XLA."""
        if self.elements is not None:
            return 8 * len(self.elements)
        return DTYPE_BYTES.get(self.dtype, 4) * math.prod(self.dims)


@dataclasses.dataclass
class Instruction:
    """One HLO instruction: name, opcode, result shape, operand names and attributes."""

    name: str
    opcode: str
    shape: Shape
    operands: list[str]
    attrs: str
    computation: str
    is_root: bool = False


@dataclasses.dataclass
class Module:
    """A parsed HLO module: computations (instruction lists) and the entry's name."""

    name: str
    computations: dict[str, list[Instruction]]
    entry: str

    def instruction_index(self) -> dict[str, Instruction]:
        """Every instruction of the module by name (HLO names are unique in a module)."""
        return {i.name: i for instrs in self.computations.values() for i in instrs}


def _balanced(text: str, start: int) -> int:
    """Index just past the bracket group opening at ``text[start]``."""
    depth = 0
    pairs = {"(": ")", "{": "}", "[": "]"}
    closing = set(pairs.values())
    for i in range(start, len(text)):
        c = text[i]
        if c in pairs:
            depth += 1
        elif c in closing:
            depth -= 1
            if depth == 0:
                return i + 1
    raise ValueError("unbalanced brackets")


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for c in text:
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
    if "".join(cur).strip():
        parts.append("".join(cur).strip())
    return parts


_ARRAY = re.compile(r"([a-z][a-z0-9]*)\[([^\]]*)\]")


def parse_shape(text: str) -> Shape:
    """Parse an HLO shape such as ``f32[32,128]{1,0}`` or ``(f32[2], s32[])``."""
    text = text.strip()
    if text.startswith("("):
        inner = text[1 : _balanced(text, 0) - 1]
        return Shape("tuple", elements=tuple(parse_shape(p) for p in _split_top(inner)))
    m = _ARRAY.match(text)
    if not m:
        raise ValueError(f"cannot parse shape {text!r}")
    dims = tuple(int(d.replace("<=", "")) for d in m.group(2).split(",") if d.strip())
    return Shape(m.group(1), dims)


_COMMENT = re.compile(r"/\*.*?\*/")
_COMP = re.compile(r"^(ENTRY\s+)?%?([\w.\-]+)\s*(\([^{]*\))?\s*(->\s*.*?)?\s*\{\s*$")


def parse_module(text: str, source: str = "HLO") -> Module:
    """Parse HLO text into a :class:`Module`; raises WorkloadError on malformed text."""
    computations: dict[str, list[Instruction]] = {}
    entry = None
    current: str | None = None
    name = "module"
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = _COMMENT.sub("", raw).strip()
        if not line or line.startswith("//"):
            continue
        if line.startswith("HloModule"):
            name = line.split()[1].rstrip(",")
            continue
        if current is None:
            m = _COMP.match(line)
            if m:
                current = m.group(2)
                computations[current] = []
                if m.group(1):
                    entry = current
            continue
        if line.startswith("}"):
            current = None
            continue
        try:
            computations[current].append(_parse_instruction(line, current))
        except (ValueError, IndexError) as exc:
            raise WorkloadError(
                where(source, f"line {lineno}", f"bad HLO instruction: {exc}")
            ) from None
    if entry is None:
        raise WorkloadError(where(source, None, "no ENTRY computation in the HLO text"))
    return Module(name=name, computations=computations, entry=entry)


def _parse_instruction(line: str, computation: str) -> Instruction:
    is_root = line.startswith("ROOT ")
    if is_root:
        line = line[5:]
    lhs, rhs = line.split(" = ", 1)
    name = lhs.strip().lstrip("%")
    rhs = rhs.strip()
    if rhs.startswith("("):
        end = _balanced(rhs, 0)
    else:
        end = rhs.index(" ")
        # Layouts like {1,0} or {1,0:T(8,128)} follow the dims directly.
        if "{" in rhs[:end]:
            end = _balanced(rhs, rhs.index("{"))
    shape = parse_shape(rhs[:end])
    rest = rhs[end:].strip()
    paren = rest.index("(")
    opcode = rest[:paren].strip()
    close = _balanced(rest, paren)
    args = rest[paren + 1 : close - 1]
    attrs = rest[close:]
    operands = []
    if opcode == "parameter":
        return Instruction(name, opcode, shape, [], args, computation, is_root)
    if opcode != "constant":
        for part in _split_top(args):
            token = part.split()[-1] if part else ""
            if token:
                operands.append(token.lstrip("%"))
    return Instruction(name, opcode, shape, operands, attrs, computation, is_root)


def _attr(attrs: str, key: str) -> str | None:
    m = re.search(rf"\b{key}=", attrs)
    if not m:
        return None
    start = m.end()
    if start < len(attrs) and attrs[start] in "{(":
        return attrs[start : _balanced(attrs, start)]
    end = start
    while end < len(attrs) and attrs[end] not in ", ":
        end += 1
    return attrs[start:end]


def _dims_list(value: str | None) -> list[int]:
    if not value:
        return []
    return [int(x) for x in value.strip("{}").split(",") if x.strip()]


def trip_count(instr: Instruction) -> int | None:
    """The ``known_trip_count`` of a while instruction, when XLA recorded one."""
    m = re.search(r'"known_trip_count":\{"n":"(\d+)"\}', instr.attrs)
    return int(m.group(1)) if m else None


def called_computations(instr: Instruction) -> list[str]:
    """Names of the computations an instruction calls (body, condition, calls, to_apply)."""
    names = []
    for key in ("calls", "to_apply", "body", "condition"):
        value = _attr(instr.attrs, key)
        if value:
            names += [v.strip().lstrip("%") for v in value.strip("{}").split(",") if v.strip()]
    return names


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
                lhs.dims[d] for d in _dims_list(_attr(instr.attrs, "lhs_contracting_dims"))
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
                window = _attr(instr.attrs, "window") or ""
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
        labels = _attr(instr.attrs, "dim_labels") or ""
        m = re.match(r"([\w]+)_([\w]+)->([\w]+)", labels)
        if not m:
            return float(instr.shape.num_elements * rhs.num_elements)
        lhs_l, rhs_l, out_l = m.groups()
        out = instr.shape
        window = _attr(instr.attrs, "window") or ""
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
        groups = int(_attr(instr.attrs, "feature_group_count") or 1)
        batch_groups = int(_attr(instr.attrs, "batch_group_count") or 1)
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
