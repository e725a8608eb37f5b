"""The C target: `<name>.h`, `<name>.c` (C99, no allocation, no globals) and `<name>_c.py`,
a ctypes wrapper with the same Python API as the NumPy module.

One calling convention for every network (documented in the header): parameters, data,
gradients and outputs are tables of pointers, one per value, to its elements in row-major
order (n samples one after another for data); intermediate values live in a workspace the
caller provides (`<name>_work_size(n)` reals).

Every function has the same schedule, chosen from the IR:

    values that are the same for every sample   (once per call: W.T, regularisers)
    sums over the samples start at zero
    for each block of up to BLOCK samples:
        the per-sample equations, one loop nest each (neighbouring loops fused)
        each block's part of the sums over samples
    what depends on those sums                  (the backward pass of per-batch values)
    results (the mean's 1/n last)

A network whose values are all scalars is the special case where every nest is one loop
over the block's samples: they fuse into a few loops over block arrays, which gcc
vectorises (a loop that calls a math function stays alone, which vectorises best). A sum
over the samples of scalars goes into LANES partial sums in a fixed order, so it
vectorises without -ffast-math and gives the same result on every run. bpgen's own
`bp_tanh`/`bp_exp`/... are vectorisable and keep IEEE special values; their range checks
vectorise as selects under -fno-trapping-math (without it, only AVX-512's masked stores
vectorise them: every math loop ran scalar on AVX2 machines).
"""

from __future__ import annotations

import re

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import sympy

from ..compiler import Compiled
from ..ir import IR, N_SAMPLES, is_batch_sum
from ..tensor import Structural
from .c_nests import ROW_THREADS, Nests, ref, size
from .c_outline import outline, wrapped
from .cloops import INDENT, For, Scope, Stmt, fuse, nest, render
from .common import Real, Target, Value, api_data, print_expr, real_of
from .printers import CPrinter

REAL = "bp_real"  # the real type: one typedef in the header
VECTOR = 64  # bytes: partial sums in LANES = VECTOR/sizeof(real) lanes; arrays aligned to it
BLOCK_BYTES = 512 * 1024  # block arrays of one function fit in L2
MAX_BLOCK = 256
#: The fewest samples per block of a network with a parameter larger than BLOCK_BYTES: its
#: gradient, a sum over samples, cannot stay in cache from one block to the next, so each
#: block reads and writes it again, and the product making it contracts only the block's
#: samples. The 784-256-10 MLP (W1: 1.6 MB) had blocks of 32: 4.5 -> 4.0 ms on AMD Zen 3
#: with 128 (block arrays of 1.1 MB, in L3). Larger blocks for every network lost: a CNN's
#: elementwise passes over feature maps slowed by 30%.
WIDE_BLOCK = 128
MAX_CHUNKS = 16  # the most threads one call can use
CHUNK_BYTES = 16 * 1024 * 1024  # the most workspace the chunks' own arrays may take
SUM_COST = 8  # a chunk's block arrays outweigh its array sums this many times
#: C helpers and the helpers each one needs.
HELPER_DEPS = {"bp_exp": ("bp_expm1_poly",), "bp_tanh": ("bp_expm1_poly",),
               "bp_sigmoid": ("bp_exp", "bp_expm1_poly"),
               "bp_softplus": ("bp_exp", "bp_expm1_poly"),
               "bp_logaddexp": ("bp_exp", "bp_expm1_poly")}


def lanes(fp: Real) -> int:
    """Reals per VECTOR bytes: the lanes of a sum over samples, and the alignment (in
    reals) of every workspace array."""
    return VECTOR // np.dtype(fp.dtype).itemsize


def padded(n: int, fp: Real) -> int:
    return -(-n // lanes(fp)) * lanes(fp)


@dataclass
class Function:
    """One generated C function, as lines for the template."""

    pointers: list = field(default_factory=list)  # declarations before everything
    prologue: list = field(default_factory=list)
    zero: list = field(default_factory=list)
    block_pointers: list = field(default_factory=list)
    block: list = field(default_factory=list)
    epilogue: list = field(default_factory=list)
    returns: str | None = None
    work: int = 0  # reals of workspace this function uses
    chunk: list = field(default_factory=list)  # at the start of each chunk of blocks
    chunk_end: list = field(default_factory=list)  # at its end: its sums kept apart
    combine: list = field(default_factory=list)  # after the chunks: their sums added in order
    shared: int = 0  # reals of work shared by the chunks (before their block arrays)
    per_chunk: int = 0  # reals of block arrays of one chunk
    scalar_parts: int = 0  # reals of one chunk's scalar sums (every chunk keeps them apart)
    tensor_parts: int = 0  # reals of one chunk's array sums (chunk 0 adds into the totals)
    helpers: set = field(default_factory=set)
    printer: object = None  # texts -> a CPrinter of the function's real type


class Builder:
    """The context of one function: names, shapes, phases, workspace, transposed copies."""

    def __init__(self, ir: IR, names: dict, block: int, fp: Real):
        self.ir, self.real, self.block_size, self.fp = ir, REAL, block, fp
        self.lanes = lanes(fp)
        self.printer_class = CPrinter.of(fp)
        self.shapes = ir.shapes()
        self.batched = ir.batched()
        self.names = dict(names)
        self.totals = {eq.lhs for eq in ir.equations if is_batch_sum(eq.rhs)}
        self.scalar_totals = {s for s in self.totals if not self.shapes[s]}
        self.lane_totals = {eq.lhs for eq in ir.equations if eq.lhs in self.scalar_totals
                            and all(not s for s in eq.rhs.subscripts[0])}
        self.locals = {v.symbol for v in ir.params if not v.shape} | self.scalar_totals
        self.locals |= {eq.lhs for eq in ir.equations
                        if not eq.shape and eq.lhs not in self.batched}
        self.in_block = False
        self.hoisted: list = []
        self.copies: dict = {}
        self.work = 0
        self.arrays: list = []
        self.block_work = 0  # reals of one chunk's block arrays
        self.block_arrays: list = []

    def printer(self, texts: dict) -> CPrinter:
        """A printer of expressions over `texts` (symbol -> C text) in this real type."""
        return self.printer_class({**texts, N_SAMPLES: f"({REAL})_n"})

    def allocate(self, name: str, reals: int) -> None:
        self.arrays.append(Stmt(f"{REAL} *restrict {name} = _work + {self.work};"))
        self.work += padded(reals, self.fp)

    def allocate_block(self, name: str, reals: int) -> None:
        """A block array: one per chunk of blocks (chunks may run in parallel)."""
        self.block_arrays.append(Stmt(f"{REAL} *restrict {name} = _blk + {self.block_work};"))
        self.block_work += padded(reals, self.fp)

    def transposed(self, operand, sub, inner, sizes):
        """A per-batch operand copied with axis `inner` last, once per call: (its name,
        its subscripts, the nodes that make it (empty if made before))."""
        moved = sub.replace(inner, "") + inner
        key = (operand, moved)
        if key in self.copies:
            return self.copies[key], moved, []
        name = f"_T{len(self.copies)}"
        self.copies[key] = name
        self.allocate(name, size(self.shapes[operand]))
        copy = nest([(f"_{c}", sizes[c]) for c in moved],
                    [Stmt(f"{ref(name, moved, sizes)} = {ref(self.names[operand], sub, sizes)};")])
        if self.in_block:
            self.hoisted += copy
            return name, moved, []
        return name, moved, copy


def offset(shape) -> str:
    """Where the block's first sample starts in an array of samples of this shape."""
    return "_i0" if size(shape) == 1 else f"_i0*{size(shape)}"


def phases(ir: IR, totals: set, batched: set) -> dict:
    """Each equation's place: 'block' (per sample, or a sum over samples), 'prologue'
    (the same for every sample, before the sums) or 'epilogue' (after them)."""
    after = set(totals)
    where = {}
    for eq in ir.equations:
        if eq.lhs in totals or eq.lhs in batched:
            where[eq.lhs] = "block"
            if eq.rhs.free_symbols & after - totals:
                raise AssertionError(f"{eq.lhs} is per sample but reads a value that "
                                     "depends on a sum over all samples")
        elif eq.rhs.free_symbols & after:
            where[eq.lhs] = "epilogue"
            after.add(eq.lhs)
        else:
            where[eq.lhs] = "prologue"
    return where


def function(ir: IR, names: dict, block: int, fp: Real, outputs: dict,
             n_params=None) -> Function:
    """`outputs`: symbol -> the caller's array that receives it (`grad[k]`, `_out[k]`).
    Parameters after the first `n_params` (hvp's direction) come from `_tangents`."""
    b = Builder(ir, names, block, fp)
    f = Function()
    into = merged_parts(ir, b.totals, outputs)
    sums = set(into.values())
    where = phases(ir, b.totals | sums, b.batched)
    b.totals = (b.totals - set(into)) | sums
    b.names.update({part: names[total] for part, total in into.items()})
    nests = Nests(b)
    read = set().union(*(e.rhs.free_symbols for e in ir.equations),
                       *(r.expr.free_symbols for r in ir.results))
    n_params = len(ir.params) if n_params is None else n_params
    for k, v in enumerate(ir.params):
        table = f"_params[{k}]" if k < n_params else f"_tangents[{k - n_params}]"
        if v.symbol in read:
            f.pointers.append(Stmt(f"const {REAL} {names[v.symbol]} = {table}[0];")
                              if not v.shape else
                              Stmt(f"const {REAL} *restrict {names[v.symbol]} = {table};"))
    for k, v in enumerate(ir.inputs):
        if v.symbol in read:
            f.block_pointers.append(Stmt(f"const {REAL} *restrict {names[v.symbol]} = "
                                         f"_data[{k}] + {offset(v.shape)};"))
    for eq in ir.equations:
        s = eq.lhs
        if s in outputs and where[s] == "block" and s not in b.totals:
            f.block_pointers.append(Stmt(f"{REAL} *restrict {names[s]} = {outputs[s]} + "
                                         f"{offset(eq.shape)};"))
        elif s in outputs:
            f.pointers.append(Stmt(f"{REAL} *restrict {names[s]} = {outputs[s]};"))
        elif s in b.lane_totals:
            pass  # lanes in one array of the function's sums over samples: see chunked()
        elif s in b.scalar_totals or (s in b.locals and not eq.rhs.is_Atom and
                                      isinstance(eq.rhs, Structural)):
            f.pointers.append(Stmt(f"{REAL} {names[s]} = 0.0;"))
        elif s in into:
            pass  # it adds into its sum's array
        elif s not in b.locals:
            if where[s] == "block" and s not in b.totals:
                b.allocate_block(names[s], size(eq.shape) * block)
            else:
                b.allocate(names[s], size(eq.shape))
    totals: list = []  # the lanes of sums over samples added up, after the blocks
    zeroed: set = set()
    for eq in ir.equations:
        phase = where[eq.lhs]
        b.in_block = phase == "block"
        if eq.lhs in b.lane_totals:
            operands = [names[o] for o in eq.rhs.operands]
            helper = "bp_accumulate" if len(operands) == 1 else "bp_dot"
            f.block.append(Stmt(f"{helper}({names[eq.lhs]}_lanes, {', '.join(operands)}, _m);"))
            totals.append(Stmt(f"const {REAL} {names[eq.lhs]} = "
                               f"bp_total({names[eq.lhs]}_lanes);"))
            f.helpers.add(helper)
            continue
        if eq.lhs in sums:
            continue  # a sum of parts: they added into it
        total = into.get(eq.lhs, eq.lhs)
        nodes = nests.build(eq, accumulate=total in b.totals)
        if total in b.totals and total not in b.scalar_totals and total not in zeroed:
            zeroed.add(total)
            f.zero += nest([("_i", str(size(eq.shape)))], [Stmt(f"{names[total]}[_i] = 0.0;")])
        {"block": f.block, "prologue": f.prologue, "epilogue": f.epilogue}[phase].extend(nodes)
    f.prologue += b.hoisted
    f.epilogue = totals + f.epilogue
    f.block = fuse(f.block)
    f.helpers |= nests.helpers
    f.pointers = b.arrays + f.pointers
    chunked(f, b, where)
    f.printer = b.printer
    return f


def merged_parts(ir: IR, totals: set, outputs: dict) -> dict:
    """{part: its sum} for the sums of parts `g = p1 + p2 + ...` whose every part is a sum
    over samples of an array of g's shape that only g reads (a weight used at every step
    of an unrolled sequence): the parts add into g's array as they are made, instead of
    each into an array of its own that is added up after the blocks."""
    shapes = ir.shapes()
    reads: dict = {}
    for eq in ir.equations:
        for s in eq.rhs.free_symbols:
            reads[s] = reads.get(s, 0) + 1
    for r in ir.results:
        for s in r.expr.free_symbols:
            reads[s] = reads.get(s, 0) + 1
    into = {}
    for eq in ir.equations:
        parts = eq.rhs.args if isinstance(eq.rhs, sympy.Add) else ()
        if parts and eq.shape and all(
                p in totals and p not in outputs and shapes[p] == eq.shape and reads[p] == 1
                for p in parts):
            into.update({p: eq.lhs for p in parts})
    return into


def chunked(f: Function, b: Builder, where: dict) -> None:
    """The blocks run in chunks (of consecutive blocks, fixed by n alone), which may run
    on parallel threads: each chunk has its own block arrays and keeps its sums over
    samples apart (in `_sums`, and arrays in `_parts` from the second chunk on; the first
    adds into the totals themselves); after the chunks, the sums are added up in chunk
    order. The result is then the same, bit for bit, for any number of threads."""
    names, real, n_lanes = b.names, REAL, lanes(b.fp)
    f.shared, f.per_chunk = b.work, b.block_work
    summed = [s for s in sorted(b.totals, key=lambda s: names[s]) if where.get(s) == "block"]
    scalars = [s for s in summed if s in b.scalar_totals]
    width = {s: n_lanes if s in b.lane_totals else 1 for s in scalars}
    f.scalar_parts = padded(sum(width.values()), b.fp) if scalars else 0
    f.chunk = [Stmt(f"{real} *const _blk = _work + {b.work} + _c*{b.block_work};")] \
        if b.block_arrays else []
    f.chunk += b.block_arrays
    if any(ROW_THREADS in line for line in render(f.block, 0)):
        # products large enough to share out: the call's threads, when it has one chunk
        f.chunk.append(Stmt(f"const int {ROW_THREADS} = _chunks == 1 ? _threads : 1;"))
    if scalars:
        # one array of every scalar sum's lanes: the chunk's in _sums, the totals in _lanes
        sums = f.scalar_parts
        f.pointers.insert(0, Stmt(f"{real} _lanes[{sums}] = {{0.0}};"))
        f.chunk += [Stmt(f"{real} *const _csums = _sums + _c*{sums};"),
                    Stmt(f"memset(_csums, 0, {sums}*sizeof *_csums);")]
        f.combine += nest([("_k", "_chunks"), ("_l", str(sums))],
                          [Stmt(f"_lanes[_l] += _sums[_k*{sums} + _l];")])
    at = 0  # in one chunk's scalar sums
    for s in scalars:
        if width[s] > 1:
            var = f"{names[s]}_lanes"
            f.pointers.append(Stmt(f"{real} *const {var} = _lanes + {at};"))
            f.chunk.append(Stmt(f"{real} *const {var} = _csums + {at};"))
        else:
            f.chunk.append(Stmt(f"{real} {names[s]} = 0.0;"))
            f.chunk_end.append(Stmt(f"_csums[{at}] = {names[s]};"))
            f.combine.append(Stmt(f"{names[s]} = _lanes[{at}];"))
        at += width[s]
    arrays = [s for s in summed if s not in b.scalar_totals]
    f.tensor_parts = sum(padded(size(b.shapes[s]), b.fp) for s in arrays)
    at = 0  # in one chunk's array sums
    for s in arrays:
        name, n = names[s], size(b.shapes[s])
        f.pointers.append(Stmt(f"{real} *const _all_{name} = {name};"))
        f.chunk.append(Stmt(f"{real} *restrict {name} = _c == 0 ? _all_{name} : "
                            f"_parts + (_c - 1)*{f.tensor_parts} + {at};"))
        f.chunk.append(Stmt(f"if (_c > 0) memset({name}, 0, {n}*sizeof *{name});"))
        f.combine.append(For("_k", "_chunks", nest([("_i", str(n))], [
            Stmt(f"{name}[_i] += _parts[(_k - 1)*{f.tensor_parts} + {at} + _i];")],
            fusable=True), start="1", fusable=True))
        at += padded(n, b.fp)
    f.chunk_end, f.combine = fuse(f.chunk_end), fuse(f.combine)


def result_nodes(ir: IR, names: dict, f: Function, targets: dict, first: int = 1,
                 array: str = "_grad") -> list:
    """The gradients (results from `first` on, one per parameter, into `array`): scaled
    in place where they were summed into the caller's array, else grad[k] = their
    expression (a scalar's total times 1/n, or zero)."""
    shapes = ir.shapes()
    nodes, means = [], []  # means: the mean's 1/n, which leaves one sample as it is
    for k, r in enumerate(ir.results[first:]):
        n = size(ir.params[k].shape)
        symbols = r.expr.free_symbols - {N_SAMPLES}
        at = "_i" if n > 1 else "0"
        texts = {s: f"{names[s]}[{at}]" if shapes[s] else names[s] for s in symbols}
        printer = f.printer(texts)
        (symbol,) = symbols if len(symbols) == 1 else (None,)
        if symbol is not None and targets.get(symbol) == f"{array}[{k}]":
            factor = r.expr / symbol
            if factor != 1:
                scale = nest([("_i", str(n))], [Stmt(f"{names[symbol]}[_i] *= "
                                                     f"{printer.doprint(factor)};")])
                (means if factor == 1 / N_SAMPLES else nodes).extend(scale)
            continue
        value = print_expr(printer, r.expr, None, "c")
        f.helpers |= printer.helpers
        nodes += nest([("_i", str(n))] if n > 1 else [],
                      [Stmt(f"{array}[{k}][{at}] = {value};")])
    return ([Scope(means, "_n != 1")] if means else []) + nodes  # x*1.0 is x, bit for bit


def grad_targets(ir: IR, first: int = 1, array: str = "_grad") -> dict:
    """Gradients summed straight into the caller's array: a result `c*d_p` (from
    `first` on, into `array`) whose d_p is an array made by an equation and read by no
    other result."""
    defined = {eq.lhs for eq in ir.equations}
    shapes = ir.shapes()
    out = {}
    for k, r in enumerate(ir.results[first:]):
        symbols = r.expr.free_symbols - {N_SAMPLES}
        if len(symbols) != 1:
            continue
        (symbol,) = symbols
        if symbol in defined and shapes[symbol] and symbol not in out and \
                (r.expr / symbol).free_symbols <= {N_SAMPLES}:
            out[symbol] = f"{array}[{k}]"
    return out


def block_size(irs, fp: Real) -> int:
    """The most samples per block whose block arrays fit BLOCK_BYTES (a power of two), and
    at least WIDE_BLOCK where a parameter is larger than BLOCK_BYTES itself."""
    per_sample = 0
    for ir in irs:
        batched = ir.batched()
        per_sample = max(per_sample, sum(size(eq.shape) for eq in ir.equations
                                         if eq.lhs in batched))
    itemsize = np.dtype(fp.dtype).itemsize
    block = MAX_BLOCK
    while block > 1 and block * per_sample * itemsize > BLOCK_BYTES:
        block //= 2
    if max((size(v.shape) for ir in irs for v in ir.params), default=0) * itemsize > \
            BLOCK_BYTES:
        block = max(block, WIDE_BLOCK)
    return block


@dataclass(frozen=True)
class Chunks:
    """How a network's blocks of samples group into chunks (which threads share out):
    at most `most` chunks of at least `blocks` blocks each."""

    most: int
    blocks: int


def chunks(functions, fp: Real) -> Chunks:
    """Chunks as many as CHUNK_BYTES of workspace allow (a chunk's block arrays and sums),
    up to MAX_CHUNKS; each of enough blocks that adding its array sums into the totals
    costs little against computing them (a block's arrays are written at least once)."""
    itemsize = np.dtype(fp.dtype).itemsize
    per_chunk = max(f.per_chunk + f.scalar_parts + f.tensor_parts for f in functions)
    most = max(1, min(MAX_CHUNKS, CHUNK_BYTES // max(1, per_chunk * itemsize)))
    blocks = max(1, max(-(-SUM_COST * f.tensor_parts // max(1, f.per_chunk))
                        for f in functions))
    return Chunks(most, blocks)


@dataclass(frozen=True)
class Rendered:
    """A function as the template prints it."""

    pointers: list
    prologue: list
    zero: list
    chunk: list
    block_pointers: list
    block: list
    chunk_end: list
    combine: list
    epilogue: list
    returns: str | None
    work: int
    sums_at: int
    parts_at: int
    chunk_params: list  # the chunk function's parameters after `_c`: declarations
    chunk_call: list  # and its call from the function, as lines inside the chunk loop
    glue: bool  # whether its blocks only call nests (see BP_GLUE)


#: What a chunk may read of its function: the function's own parameters, then (after its
#: declarations) the chunk loop's bounds and the chunks' sums, with their C types.
FUNCTION_PARAMS = {"_params": f"const {REAL} *const *_params",
                   "_tangents": f"const {REAL} *const *_tangents",
                   "_data": f"const {REAL} *const *_data", "_n": "const long _n",
                   "_grad": f"{REAL} *const *_grad", "_out": f"{REAL} *const *_out",
                   "_work": f"{REAL} *const _work", "_threads": "const int _threads"}
LOOP_LOCALS = {"_blocks": "const long _blocks", "_chunks": "const long _chunks",
               "_sums": f"{REAL} *const _sums", "_parts": f"{REAL} *const _parts"}
IDENT = re.compile(r"\b[A-Za-z_]\w*\b")
DECLARED = re.compile(r"\b(?:bp_real|double|float|long|int)\s*(?:\*\s*(?:const|restrict)?\s*)*"
                      r"([A-Za-z_]\w*)\s*(?:\[\d+\])*\s*[=;]")
DECLARATION = re.compile(r"^((?:const\s+)?(?:bp_real|double|float|long|int)\b[^=;]*?"
                         r"([A-Za-z_]\w*)\s*(?:\[\d+\])?)\s*=")


#: What a declaration's value may name to be declared again in a chunk function: types,
#: and macros (upper case)
SPELLING = {REAL, "double", "float", "long", "int", "const", "restrict"}


def chunk_parameters(f: Function, body: list[str]) -> tuple[list, list]:
    """What the chunk's lines `body` read of the enclosing function, as (parameters: (name,
    declaration) pairs, declarations the chunk makes again). A pointer, or a constant,
    among the function's first declarations, whose value the function's parameters give
    (`W1 = _params[0]`, `_T0 = _work + 320`), is declared again, the same way; anything
    else the function declares before the chunks is a parameter, declared as the function
    declares it without its value (an array as a pointer)."""
    known, again = dict(FUNCTION_PARAMS), {}
    pointers = len(f.pointers)  # the first declarations: the prologue's values stay once per call
    for k, node in enumerate(f.pointers + f.prologue + f.zero):
        match = DECLARATION.match(node.text) if isinstance(node, Stmt) else None
        if not match:
            continue
        name, declaration = match.group(2), match.group(1).strip()
        value = set(IDENT.findall(node.text.split("=", 1)[1]))
        if k < pointers and ("*" in declaration or declaration.startswith("const ")) and all(
                v in FUNCTION_PARAMS or v in again or v in SPELLING or v.isupper()
                for v in value):
            again[name] = (node.text, value, declaration)
        else:
            known[name] = declaration
    text = "\n".join(body)
    mine = set(DECLARED.findall(text))  # the chunk's own (`d_W1`, its part of a gradient)
    for name, (_, value, declaration) in list(again.items()):  # in order: earlier first
        if value & mine or any(v in known for v in value if v not in FUNCTION_PARAMS):
            del again[name]  # it reads a name the chunk means otherwise: a parameter
            known[name] = declaration
    known.update(LOOP_LOCALS)
    needed = set(IDENT.findall(text)) - mine
    needed |= {"_blocks", "_chunks", "_n"}  # the template's: the chunk's blocks
    for name in reversed(list(again)):  # a declaration reads only earlier ones
        if name in needed:
            needed |= again[name][1]
    return ([(name, decl) for name, decl in known.items() if name in needed],
            [line for name, (line, _, _) in again.items() if name in needed])


def used_pointers(f: Function, call: list[str]) -> list[str]:
    """The function's first declarations, less those that only its chunk read (the chunk
    declares them again: see chunk_parameters)."""
    lines = render(f.pointers)
    rest = render(f.prologue + f.zero + f.combine + f.epilogue) + [f.returns or ""]
    if not f.block:
        return lines
    while True:
        uses = Counter(IDENT.findall("\n".join(lines + rest + call)))
        unused = [k for k, line in enumerate(lines) if (m := DECLARATION.match(line.strip()))
                  and uses[m.group(2)] == 1]
        if not unused:
            return lines
        lines = [line for k, line in enumerate(lines) if k not in unused]


def rendered(f: Function, most: int, name: str) -> Rendered:
    """`f` (bp_`name`) as the template prints it."""
    sums_at = f.shared + most * f.per_chunk
    parts_at = sums_at + most * f.scalar_parts
    work = parts_at + (most - 1) * f.tensor_parts
    chunk, block_pointers, block, chunk_end = (render(f.chunk, 1), render(f.block_pointers, 2),
                                               render(f.block, 2), render(f.chunk_end, 1))
    params, again = chunk_parameters(f, chunk + block_pointers + block + chunk_end) \
        if f.block else ([], [])
    call = wrapped(" " * 12 + f"bp_{name}_chunk(", ["_c", *(n for n, _ in params)])
    call[-1] += ";"
    return Rendered(used_pointers(f, call), render(f.prologue), render(f.zero),
                    [f"{INDENT}{line}" for line in again] + chunk,
                    block_pointers, block, chunk_end,
                    render(f.combine), render(f.epilogue), f.returns, work,
                    sums_at if f.scalar_parts else -1, parts_at if f.tensor_parts else -1,
                    [decl for _, decl in params],
                    call, bool(block) and not any("for (" in line or " = " in line
                                                  for line in block))


def prepare(compiled: Compiled) -> dict:
    ir, names, fp = compiled.ir, compiled.names, real_of(compiled)
    programs = compiled.programs
    # hvp uses the others' block: adding it changes nothing in them
    block = block_size([programs[k] for k in ("loss", "forward", "value_and_grad")], fp)
    vg, fwd, loss_ir = programs["value_and_grad"], programs["forward"], programs["loss"]
    targets = grad_targets(vg)
    functions = {"loss": function(loss_ir, names, block, fp, {}),
                 "value_and_grad": function(vg, names, block, fp, targets),
                 "forward": function(fwd, names, block, fp, {
                     r.expr: f"_out[{k}]" for k, r in enumerate(fwd.results)
                     if r.expr in fwd.batched()})}
    functions["value_and_grad"].epilogue += result_nodes(vg, names,
                                                         functions["value_and_grad"], targets)
    if "hvp" in programs:
        hvp = programs["hvp"]
        hvp_targets = grad_targets(hvp, 0, "_out")
        functions["hvp"] = function(hvp, names, block, fp, hvp_targets, len(ir.params))
        functions["hvp"].epilogue += result_nodes(hvp, names, functions["hvp"], hvp_targets,
                                                  0, "_out")
    for key, program in (("loss", loss_ir), ("value_and_grad", vg)):
        printer = functions[key].printer({s: names[s] for s in program.results[0].expr.free_symbols
                                          if s != N_SAMPLES})
        functions[key].returns = printer.doprint(program.results[0].expr)
    declared = {eq.lhs.name: eq.shape for eq in ir.forward()}
    fwd_shapes, fwd_batched = fwd.shapes(), fwd.batched()
    values = [Value(r.key, names.get(r.expr, ""), declared[r.key], size(declared[r.key]))
              for r in fwd.results]
    forward = functions["forward"]
    for k, r in enumerate(fwd.results):
        shape, n = declared[r.key], size(declared[r.key])
        if r.expr in fwd_batched:
            continue  # computed in place
        # the same for every sample: copied to each sample's slot
        texts = {s: f"{names[s]}[_i]" if fwd_shapes[s] else names[s]
                 for s in r.expr.free_symbols}
        value = print_expr(forward.printer(texts), r.expr, None, "c")
        forward.block += nest([("_z", "_m"), ("_i", str(n))] if shape else [("_z", "_m")],
                              [Stmt(f"_out[{k}][(_i0 + _z)*{n}"
                                    f"{' + _i' if shape else ''}] = {value};")])
    nests = outline(functions.values(), names.values(), REAL)
    helpers = set()
    for f in functions.values():
        for h in f.helpers:
            helpers.add(h)
            helpers.update(HELPER_DEPS.get(h, ()))
    grad_space = sum(padded(size(p.shape), fp) for p in ir.params)
    plan = chunks([functions[k] for k in ("loss", "forward", "value_and_grad")], fp)
    shown = {k: rendered(f, plan.most, k) for k, f in functions.items()}
    return dict(api_data(compiled), real=REAL, lanes=lanes(fp), block=block, align=lanes(fp),
                suffix=fp.suffix, chunks=plan, functions=shown,
                helpers=sorted(helpers), values=values, grad_space=grad_space,
                nests=nests,
                param_offsets=offsets([size(p.shape) for p in ir.params], fp),
                work=max(f.work for f in shown.values()), contiguous=True,
                cflags=("-std=c99", "-O3", "-march=native", "-mtune=generic",
                        "-ffp-contract=fast", "-fno-trapping-math", "-fopenmp",
                        "-fira-region=one"),
                one_sample=ir.all_scalar())


def offsets(sizes, fp: Real) -> list[int]:
    out, at = [], 0
    for n in sizes:
        out.append(at)
        at += padded(n, fp)
    return out


TARGET = Target("c", (("c_header.h.j2", "{name}.h", "c-header", "//"),
                      ("c_source.c.j2", "{name}.c", "c-source", "//"),
                      ("c_wrapper.py.j2", "{name}_c.py", "c-wrapper", "#")), prepare)
