"""Loop nests for the C target, one builder per kind of equation.

Arrays are row-major. Inside the loop over blocks of samples, a per-sample value of shape
S is a block array: sample z of the block starts at z*prod(S) (`_z` runs over the `_m`
samples of the block). A value that is the same for every sample is an array of shape S,
or a plain local for a scalar.

* elementwise: one loop (flat when nothing is broadcast, else one index per axis, with
  broadcast operands indexed by the axes they have);
* contraction (matmul, transpose, sums, a parameter's gradient summed over samples): a
  nest ordered with an axis that is contiguous in the output innermost; small output rows
  accumulate 4 at a time in local arrays, and a small operand whose layout would make the
  inner loop strided is copied transposed first, so gcc -O3 vectorises every inner loop;
  a sum over the samples adds each block's part to its total (`+=`);
* log-sum-exp: the maximum, then the sum of exponentials around it;
* reshape: a copy.
"""

from __future__ import annotations

import re
from math import prod

import sympy

from ..ir import N_SAMPLES
from ..nodes import Assemble, Concat, Extreme, Index, key_shape
from ..tensor import Einsum, LogSumExp, Reshape
from .cloops import Comment, For, Scope, Stmt, nest
from .common import print_expr

ACC_MAX = 64  # longest output row accumulated in a local array (registers)
ROWS = 4  # output rows accumulated together
TILE = 32  # columns of a long output row accumulated together
#: rows of the SIMD kernel's tile (two vectors of columns each: 12 of AVX2's 16 registers)
SIMD_ROWS = 6
SIMD_VECTOR_BYTES = 32  # an AVX2 register (two of them: the C target's lanes)
#: the largest panel of a product's column operand that the SIMD kernel copies to the
#: stack (contiguous, read in order by every group of rows), e.g. 2048 contracted steps
SIMD_PACK_BYTES = 128 * 1024
#: multiply-adds of a tiled product (in one block of samples, counted at run time) from
#: which its tiles of columns share out among the threads when the call runs in one chunk
#: (a parallel region of its own then, the chunk running outside any: below this, the
#: region costs more than the second thread saves; 784-256-10 MLP, batches 8 to 128)
ROW_THREADS_WORK = 1 << 22
#: the threads a tiled product may use: the call's own when its samples are one chunk
#: (declared in each chunk; see the template's BP_PARALLEL_ROWS)
ROW_THREADS = "_row_threads"


def size(shape) -> int:
    return prod(shape) if shape else 1


def strides(shape):
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= d
    return out[::-1]


def contiguous(shape, key) -> int | None:
    """Where the piece `key` of a value of this shape starts, if its elements are one run
    in memory (X[t] of an X of shape (T, D)); else None."""
    offset, spread = 0, False  # spread: an axis of more than one element seen
    for k, d, stride in zip(key, shape, strides(shape)):
        start, stop, step = (k, k + 1, 1) if isinstance(k, int) else k
        n = len(range(start, stop, step))
        if spread and (n, step) != (d, 1) or n > 1 and step != 1:
            return None
        spread = spread or n > 1
        offset += start * stride
    return offset


def index(parts) -> str:
    """Sum of (variable, stride) terms as C text."""
    terms = [v if s == 1 else f"{v}*{s}" for v, s in parts if s]
    return " + ".join(terms) if terms else "0"


def var(letter: str) -> str:
    return "_z" if letter == "Z" else f"_{letter}"


def ref(array: str, letters: str, sizes: dict) -> str:
    """array[index] for row-major axes named by letters (Z, the sample, first)."""
    parts, stride = [], 1
    for c in reversed(letters):
        parts.append((var(c), stride))
        if c != "Z":
            stride *= int(sizes[c])
    return f"{array}[{index(parts[::-1])}]"


def calls(expr) -> bool:
    """Whether the C form of `expr` calls a function (such loops stay alone)."""
    return bool(expr.atoms(sympy.Function)) or any(
        not (p.exp.is_Integer and abs(p.exp) <= 4) for p in expr.atoms(sympy.Pow))


class Nests:
    """Builds the nodes of each equation. `ctx` knows names, shapes, which values are
    per-sample, which per-batch scalars are plain locals, and hands out scratch arrays."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.helpers: set[str] = set()

    def name(self, s) -> str:
        return self.ctx.names[s]

    def batched(self, s) -> bool:
        return s in self.ctx.batched

    def shape(self, s):
        return self.ctx.shapes[s]

    def build(self, eq, accumulate=False) -> list:
        rhs = eq.rhs
        if isinstance(rhs, Einsum):
            return self.einsum(eq, accumulate)
        if isinstance(rhs, Reshape):
            return self.reshape(eq)
        if isinstance(rhs, LogSumExp):
            return self.logsumexp(eq)
        if isinstance(rhs, Index):
            (op,) = rhs.operands
            return self.copy(eq.lhs, None, op, rhs.key, "=")
        if isinstance(rhs, Concat):
            return [node for op, key in zip(rhs.operands, rhs.pieces(self.ctx.shapes))
                    for node in self.copy(eq.lhs, key, op, None, "=")]
        if isinstance(rhs, Assemble):
            n = size(eq.shape) if not self.batched(eq.lhs) else f"_m*{size(eq.shape)}"
            nodes = nest([("_i", str(n))], [Stmt(f"{self.name(eq.lhs)}[_i] = 0.0;")])
            for key, piece in zip(rhs.keys, rhs.operands):
                nodes += self.copy(eq.lhs, key, piece, None, "+=")
            return nodes
        if isinstance(rhs, Extreme):
            return self.extreme(eq)
        return self.elementwise(eq)

    # -- pieces: indexing, concatenating, assembling ------------------------------------------
    def copy(self, dst, dst_key, src, src_key, store) -> list:
        """dst[dst_key] (store) src[src_key], per sample where either is; a key of None
        is the whole value. The loops run over the piece's shape."""
        dst_shape, src_shape = self.shape(dst), self.shape(src)
        piece = key_shape(src_key) if src_key is not None else (
            key_shape(dst_key) if dst_key is not None else src_shape)
        at = contiguous(src_shape, src_key) if src_key is not None else None
        if at is not None and dst_key is None and store == "=" and self.batched(dst) and \
                self.batched(src) and dst not in self.ctx.locals:
            # a run of each sample (`h_t = X[t]` of a sequence): one helper for them all,
            # not a loop nest per offset for the C compiler to optimise again
            self.helpers.add("bp_piece")
            return [Stmt(f"bp_piece({self.name(dst)}, {self.name(src)}, {size(src_shape)}, "
                         f"{at}, {size(piece)}, _m);")]
        loop_vars = [f"_i{k}" for k in range(len(piece))]
        loops = [("_z", "_m")] if self.batched(dst) or self.batched(src) else []
        loops += [(v, str(d)) for v, d in zip(loop_vars, piece)]
        target = self.at(dst, dst_shape, dst_key, loop_vars)
        value = self.at(src, src_shape, src_key, loop_vars)
        return nest(loops, [Stmt(f"{target} {store} {value};")])

    def at(self, symbol, shape, key, loop_vars) -> str:
        """The element of `symbol` that iteration (loop_vars) of a piece touches."""
        if symbol in self.ctx.locals:
            return self.name(symbol)
        parts = [("_z", size(shape))] if self.batched(symbol) else []
        key = key if key is not None else tuple((0, d, 1) for d in shape)
        free = iter(loop_vars)
        for k, stride in zip(key, strides(shape)):
            if isinstance(k, int):
                parts.append((str(k), stride) if k else ("0", 0))
            else:
                start, _, step = k
                v = next(free)
                term = v if step == 1 else f"{step}*{v}"
                parts.append((f"({start} + {term})" if start else term, stride))
        return f"{self.name(symbol)}[{index(parts)}]"

    # -- maximum and minimum -------------------------------------------------------------------
    def extreme(self, eq) -> list:
        (op,) = eq.rhs.operands
        shape, axes, which = self.shape(op), eq.rhs.axes, eq.rhs.which
        st = strides(shape)
        per_sample = self.batched(op)
        loops = [("_z", "_m")] if per_sample else []
        parts = [("_z", size(shape))] if per_sample else []
        out_parts = [("_z", size(eq.shape))] if per_sample else []
        out_strides, k_out, inner = strides(eq.shape), 0, []
        for k, d in enumerate(shape):
            if k in axes:
                inner.append((f"_a{k}", str(d)))
                parts.append((f"_a{k}", st[k]))
                continue
            loops.append((f"_i{k}", str(d)))
            parts.append((f"_i{k}", st[k]))
            out_parts.append((f"_i{k}", out_strides[k_out]))
            k_out += 1
        x = f"{self.name(op)}[{index(parts)}]"
        better = ">" if which == "max" else "<"
        huge = self.ctx.printer({}).huge()
        start = f"-{huge}" if which == "max" else huge
        return nest(loops, [Scope([
            Stmt(f"{self.ctx.real} _best = {start};"),
            Comment("nan wins, as in NumPy"),
            *nest(inner, [Stmt(f"_best = {x} {better} _best || {x} != {x} ? {x} : _best;")]),
            Stmt(f"{self.cell(eq.lhs, index(out_parts))} = _best;")])])

    # -- elementwise -----------------------------------------------------------------------
    def elementwise(self, eq) -> list:
        shape, n = eq.shape, size(eq.shape)
        per_sample = self.batched(eq.lhs)
        symbols = sorted(eq.rhs.free_symbols - {N_SAMPLES}, key=lambda s: s.name)
        if not per_sample and not shape:  # a plain local, computed once
            rhs = self.print(eq, {s: self.scalar_or(s, "0") for s in symbols})
            return [Stmt(f"const {self.ctx.real} {self.name(eq.lhs)} = {rhs};")]
        flat = all(self.shape(s) == shape or size(self.shape(s)) == 1 for s in symbols)
        whole = flat and per_sample and all(
            (self.shape(s) == shape) == self.batched(s) or
            (size(self.shape(s)) == 1 and not self.batched(s)) for s in symbols)
        if whole:
            loops = [("_z", "_m")] if n == 1 else [("_i", f"_m*{n}")]
        else:
            loops = [("_z", "_m")] if per_sample else []
            if flat and n > 1:
                loops.append(("_i", str(n)))
            elif not flat:
                loops += [(f"_i{k}", str(d)) for k, d in enumerate(shape)]

        def at(s, s_shape, s_batched):
            if whole:
                return ("_z" if n == 1 else "_i") if s_shape == shape and s_batched else "0"
            parts = [("_z", size(s_shape))] if s_batched else []
            if flat:
                if s_shape == shape and n > 1:
                    parts.append(("_i", 1))
            else:
                lead = len(shape) - len(s_shape)
                for k, (d, st) in enumerate(zip(s_shape, strides(s_shape))):
                    if d != 1:
                        parts.append((f"_i{k + lead}", st))
            return index(parts)

        texts = {s: self.scalar_or(s, at(s, self.shape(s), self.batched(s))) for s in symbols}
        rhs = self.print(eq, texts)
        lhs = f"{self.name(eq.lhs)}[{at(eq.lhs, shape, per_sample)}]"
        return nest(loops, [Stmt(f"{lhs} = {rhs};")], fusable=not calls(eq.rhs))

    def scalar_or(self, s, at: str) -> str:
        """A per-batch scalar is a plain local; anything else an array element."""
        if s in self.ctx.locals:
            return self.name(s)
        return f"{self.name(s)}[{at}]"

    cell = scalar_or

    def print(self, eq, texts) -> str:
        printer = self.ctx.printer(texts)
        text = print_expr(printer, eq.rhs, eq.origin, "c")
        self.helpers |= printer.helpers
        return text

    # -- contractions ------------------------------------------------------------------------
    def einsum(self, eq, accumulate) -> list:
        """A contraction; with `accumulate`, a sum over samples adding this block's part
        to a total that starts at zero before the first block."""
        node: Einsum = eq.rhs
        ins, out = node.subscripts
        flags = [self.batched(op) for op in node.operands]
        sizes = {c: str(d) for c, d in node.sizes(self.ctx.shapes).items()}
        sizes["Z"] = "_m"
        out_batched = any(flags) and not node.batch_sum
        subs = ["Z" + s if f else s for s, f in zip(ins, flags)]
        full_out = ("Z" if out_batched else "") + out
        contracted = sorted(set("".join(subs)) - set(full_out), key=lambda c: (c != "Z", c))
        inner = full_out[-1] if full_out and full_out[-1] != "Z" else None
        if contracted and inner:
            inner = self.vector_axis(full_out, subs, sizes, inner)
        name = self.name(eq.lhs)
        texts = [self.name(op) for op in node.operands]
        pre = []
        for k, sub in enumerate(subs):
            if inner and not flags[k] and inner in sub and sub[-1] != inner:
                texts[k], subs[k], copy = self.ctx.transposed(node.operands[k], sub, inner,
                                                              sizes)
                pre += copy
        product = "*".join(t if not sub and node.operands[k] in self.ctx.locals
                           else ref(t, sub, sizes)
                           for k, (t, sub) in enumerate(zip(texts, subs)))
        outer = [(var(c), sizes[c]) for c in full_out if c != inner]
        reduce = [(var(c), sizes[c]) for c in contracted]
        target = name if eq.lhs in self.ctx.locals else ref(name, full_out, sizes)
        store = "+=" if accumulate else "="
        real = self.ctx.real
        if not contracted:
            loops = outer + ([(var(inner), sizes[inner])] if inner else [])
            return pre + nest(loops, [Stmt(f"{target} {store} {product};")])
        if inner is None:
            return pre + nest(outer, [Scope([Stmt(f"{real} _acc = 0.0;"),
                                             *nest(reduce, [Stmt(f"_acc += {product};")]),
                                             Stmt(f"{target} {store} _acc;")])])
        simd = self.simd_operands(full_out, inner, subs, texts, sizes) if outer else None
        if int(sizes[inner]) <= ACC_MAX and outer:
            whole = int(sizes[inner]) % self.ctx.lanes == 0  # pairs of AVX2 vectors
            return pre + self.blocked(outer, reduce, inner, sizes[inner], product, target,
                                      store, simd=simd if whole else None)
        if outer and int(sizes[inner]) % TILE == 0:  # long rows: a tile of each at a time
            return pre + self.blocked(outer, reduce, inner, sizes[inner], product, target,
                                      store, TILE, parallel=self.ctx.in_block and
                                      len(outer) == 1, simd=simd)
        if int(sizes[inner]) <= ACC_MAX:
            row = [(var(inner), sizes[inner])]
            return pre + [Scope([
                Stmt(f"{real} _acc[{sizes[inner]}] = {{0.0}};"),
                *nest(reduce + row, [Stmt(f"_acc[_{inner}] += {product};")]),
                *nest(row, [Stmt(f"{target} {store} _acc[_{inner}];")])])]
        nodes = pre
        if not accumulate:
            count = f"_m*{size(eq.shape)}" if out_batched else str(size(eq.shape))
            nodes += nest([("_i", count)], [Stmt(f"{name}[_i] = 0.0;")])
        loops = ([o for o in outer if o[0] == "_z"] + reduce +
                 [o for o in outer if o[0] != "_z"] + [(var(inner), sizes[inner])])
        return nodes + nest(loops, [Stmt(f"{target} += {product};")])

    def vector_axis(self, out, subs, sizes, last) -> str:
        """The output axis a contraction's inner loop runs along: the last (contiguous in
        the output), unless its length is not a whole number of vectors and another axis
        is, with every operand that has it contiguous along it (a transposed store of the
        output then costs less than partial vectors on every multiply-add)."""
        lanes = self.ctx.lanes
        if int(sizes[last]) % lanes == 0:
            return last
        for c in reversed(out):
            d = int(sizes[c]) if c != "Z" else 0
            if c != last and d and d % lanes == 0 and (d <= ACC_MAX or d % TILE == 0) and \
                    all(sub.endswith(c) for sub in subs if c in sub):
                return c
        return last

    def simd_operands(self, out, inner, subs, texts, sizes):
        """(row operand, column operand) of a two-operand product whose tiles the SIMD
        kernel can do: one operand without the inner axis (a number per row, broadcast),
        the other contiguous along the inner axis and without the rows' axis. None
        otherwise."""
        rows = [c for c in out if c != inner][-1]
        if len(subs) != 2 or not all(subs):
            return None
        for a, b in ((0, 1), (1, 0)):
            if inner not in subs[a] and subs[b].endswith(inner) and rows not in subs[b]:
                return ref(texts[a], subs[a], sizes), ref(texts[b], subs[b], sizes)
        return None

    def simd_tile(self, outer, reduce, inner, tile, simd, target, store,
                  tiled=True) -> list:
        """One tile of columns of a product by the SIMD kernel: SIMD_ROWS rows of the
        output at a time, each row two vectors of columns (BP_VLANES reals each) held in
        registers while the contracted axes run; the row operand broadcast, the column
        operand loaded. Where the column operand's panel (two vectors for each step of
        the contracted axes) fits SIMD_PACK_BYTES, it is first copied into a contiguous
        array on the stack that every group of rows then reads in order (the kernel read
        it a row of the operand apart: 24 -> 40 GFLOP/s on AMD Zen 3, OpenBLAS's speed).
        The rows past the last whole group (all of them for one sample) go one at a
        time. Each output element is the same multiply-adds in the same order as the
        portable loops (gcc contracts those into the same fused multiply-adds)."""
        self.helpers.add("bp_simd_tiles")
        v, count = outer[-1]
        i = f"_{inner}"
        row, column = simd
        steps = [self.ctx.block_size if d == "_m" else int(d) for _, d in reduce]
        packed = prod(steps) * 2 * SIMD_VECTOR_BYTES <= SIMD_PACK_BYTES and \
            all(d != "_m" for _, d in reduce[1:])

        def at(text, offset):  # the column `_sc + offset` of this tile
            return re.sub(rf"\b{i}\b", f"({i}0 + _sc{offset})" if tiled else
                          f"(_sc{offset})", text)
        direct = [Stmt(f"const bp_vec _sb0 = bp_vload(&{at(column, '')});"),
                  Stmt(f"const bp_vec _sb1 = bp_vload(&{at(column, ' + BP_VLANES')});")]
        loads = direct
        if packed:
            step = index([(w, prod(int(d) for _, d in reduce[k + 1:]))
                          for k, (w, _) in enumerate(reduce)])
            panel = f"_spack[({step})*2*BP_VLANES"
            loads = [Stmt(f"const bp_vec _sb0 = bp_vload(&{panel}]);"),
                     Stmt(f"const bp_vec _sb1 = bp_vload(&{panel} + BP_VLANES]);")]
        inside = [Stmt(f"const long {v} = {v}0 + _r;"),
                  Stmt(f"const bp_vec _sa = bp_vbroadcast(&{row});"),
                  Stmt("_sacc[_r][0] = bp_vfma(_sa, _sb0, _sacc[_r][0]);"),
                  Stmt("_sacc[_r][1] = bp_vfma(_sa, _sb1, _sacc[_r][1]);")]
        group = [Stmt(f"bp_vec _sacc[{SIMD_ROWS}][2];"),
                 For("_r", str(SIMD_ROWS), [Stmt("_sacc[_r][0] = _sacc[_r][1] = bp_vzero();")]),
                 *nest(reduce, [*loads,
                                For("_r", str(SIMD_ROWS), inside)]),
                 For("_r", str(SIMD_ROWS), self.simd_store(v, f"{v}0 + _r", "_sacc[_r]",
                                                           at(target, " + _sj"), store))]
        # the last rows (fewer than SIMD_ROWS: all of them for one sample) one at a time,
        # the column operand read where it is
        last = For(v, count, [
            Stmt("bp_vec _sacc[2] = {bp_vzero(), bp_vzero()};"),
            *nest(reduce, [*direct, Stmt(f"const bp_vec _sa = bp_vbroadcast(&{row});"),
                           Stmt("_sacc[0] = bp_vfma(_sa, _sb0, _sacc[0]);"),
                           Stmt("_sacc[1] = bp_vfma(_sa, _sb1, _sacc[1]);")]),
            *self.simd_store(None, None, "_sacc", at(target, " + _sj"), store)],
            start="_stail")
        body = [For(f"{v}0", "_stail", group, step=SIMD_ROWS), last]
        if packed:
            pack = nest(reduce, [Stmt(f"memcpy(&{panel}], &{at(column, '')}, "
                                      f"2*BP_VLANES*sizeof({self.ctx.real}));")])
            body = [Stmt(f"{self.ctx.real} _spack[{prod(steps)}*2*BP_VLANES];"),
                    Scope(pack, cond="_stail > 0"), *body]
        return [Stmt(f"const long _stail = {count} - {count} % {SIMD_ROWS};"),
                For("_sc", str(tile), body, step="2*BP_VLANES")]

    def simd_store(self, v, value, acc, target, store) -> list:
        """A row's two vectors `acc` into the output (`v` = value first, if given)."""
        return [*([Stmt(f"const long {v} = {value};")] if v else []),
                Stmt(f"{self.ctx.real} _st[2*BP_VLANES];"),
                Stmt(f"bp_vstore(_st, {acc}[0]);"),
                Stmt(f"bp_vstore(_st + BP_VLANES, {acc}[1]);"),
                For("_sj", "2*BP_VLANES", [Stmt(f"{target} {store} _st[_sj];")])]

    def blocked(self, outer, reduce, inner, extent, product, target, store,
                tile=None, parallel=False, simd=None) -> list:
        """ROWS rows of the output at once (the last outer axis), each accumulated in a
        local array: every operand load feeds ROWS multiply-adds, and the ROWS chains of
        additions run side by side. Past the end of that axis, the padded rows repeat its
        first row and are not stored. With `tile`, rows longer than registers hold are
        done `tile` columns at a time (a ROWS x tile block of the output stays in
        registers while the contracted axes run: the micro-kernel of a blocked matrix
        product); with `parallel`, the tiles of columns share out among the threads
        (each output element is still summed by one thread in one order: the result is
        the same for any number)."""
        if tile is not None:
            i = f"_{inner}"

            def column(text):
                return re.sub(rf"\b{i}\b", f"({i}0 + {i}t)", text)
            body = self.blocked(outer[-1:], reduce, f"{inner}t", str(tile), column(product),
                                column(target), store)
            if simd is not None:  # the SIMD kernel where the C compiler has it (see template)
                body = [Stmt("#if BP_SIMD_TILES"),
                        *self.simd_tile(outer, reduce, inner, tile, simd, target, store),
                        Stmt("#else"), *body, Stmt("#endif")]
            # threads only where the product is large at run time (each region starts
            # its threads), and no more threads than tiles
            work = "*".join(d for _, d in outer + reduce) + f"*{extent}"
            pragma = (f"BP_PARALLEL_ROWS({ROW_THREADS}, {work} >= {ROW_THREADS_WORK}, "
                      f"{int(extent) // tile})") if parallel else ""
            return nest(outer[:-1], [For(f"{i}0", extent, body, step=tile, pragma=pragma)])
        if simd is not None:  # the SIMD kernel where the C compiler has it (see template);
            # one braced block, so that both stay one nest (see c_outline)
            return [Scope([Stmt("#if BP_SIMD_TILES"),
                           *nest(outer[:-1], self.simd_tile(outer, reduce, inner, extent,
                                                            simd, target, store, tiled=False)),
                           Stmt("#else"), *self.blocked(outer, reduce, inner, extent, product,
                                                        target, store),
                           Stmt("#endif")])]
        v, count = outer[-1]
        tail = not (count.isdigit() and int(count) % ROWS == 0)
        lane = f"{v}0 + (_r < _rn ? _r : 0)" if tail else f"{v}0 + _r"
        body = [Stmt(f"const long _rn = {count} - {v}0 < {ROWS} ? {count} - {v}0 : {ROWS};")] \
            if tail else []
        body.append(Stmt(f"{self.ctx.real} _acc[{ROWS}][{extent}] = {{{{0.0}}}};"))
        inside = [Stmt(f"const long {v} = {lane};"),
                  *nest([(f"_{inner}", extent)], [Stmt(f"_acc[_r][_{inner}] += {product};")])]
        body += nest(reduce, [For("_r", str(ROWS), inside)])
        body.append(For("_r", "_rn" if tail else str(ROWS), [
            Stmt(f"const long {v} = {v}0 + _r;"),
            *nest([(f"_{inner}", extent)], [Stmt(f"{target} {store} _acc[_r][_{inner}];")])]))
        return nest(outer[:-1], [For(f"{v}0", count, body, step=ROWS)])

    # -- the rest ----------------------------------------------------------------------------
    def reshape(self, eq) -> list:
        (op,) = eq.rhs.operands
        count = f"_m*{size(eq.shape)}" if self.batched(op) else str(size(eq.shape))
        return nest([("_i", count)], [Stmt(f"{self.cell(eq.lhs, '_i')} = "
                                           f"{self.cell(op, '_i')};")])

    def logsumexp(self, eq) -> list:
        (op,) = eq.rhs.operands
        shape, axis = self.shape(op), eq.rhs.axis
        st = strides(shape)
        per_sample = self.batched(op)
        loops = [("_z", "_m")] if per_sample else []
        parts = [("_z", size(shape))] if per_sample else []
        out_parts = [("_z", size(eq.shape))] if per_sample else []
        out_strides = strides(eq.shape)
        k_out = 0
        for k, d in enumerate(shape):
            if k == axis:
                continue
            loops.append((f"_i{k}", str(d)))
            parts.append((f"_i{k}", st[k]))
            out_parts.append((f"_i{k}", out_strides[k_out]))
            k_out += 1
        x = f"{self.name(op)}[{index(parts + [('_a', st[axis])])}]"
        self.helpers.add("bp_exp")
        real, p = self.ctx.real, self.ctx.printer({})
        body = [Scope([
            Stmt(f"{real} _max = -{p.huge()}, _sum = {p.num('0.0')};"),
            For("_a", str(shape[axis]), [Stmt(f"_max = {x} > _max ? {x} : _max;")]),
            Comment("inf or nan: around 0, so inf - inf does not make a nan"),
            Stmt(f"_max = isfinite(_max) ? _max : {p.num('0.0')};"),
            For("_a", str(shape[axis]), [Stmt(f"_sum += bp_exp({x} - _max);")]),
            Stmt(f"{self.cell(eq.lhs, index(out_parts))} = _max + {p.math('log')}(_sum);")])]
        return nest(loops, body)
