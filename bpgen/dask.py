"""Data-parallel loss, gradient and training on Dask, with the code bpgen generated.

    import bpgen.dask, mlp_c                      # or the NumPy module: import mlp
    data = {"x": dask.array.from_npy_stack("x"), "y": dask.array.from_npy_stack("y")}
    loss, grads = bpgen.dask.value_and_grad(mlp_c, params, data)
    params, losses = bpgen.dask.train(mlp_c, params, data, 0.01, 1000, optimizer="adam",
                                      batch_size=256)

`data` maps the module's INPUTS to Dask arrays chunked along the sample axis (a value of
an input's own shape is one sample, the same for all, as in the generated modules). Each
chunk's loss and gradient, summed over its samples, are computed where the chunk lives by
the generated module (`value_and_grad_flat` times the chunk's size for a mean), added up
by Dask's tree reduction and scaled once: only the parameters go to the workers and only
one vector of sums per step comes back to the caller. Training takes the same options as
the generated `train`: each step's batch is drawn in the same order
(`permutation(n, seed, epoch)`), its gradient summed over the chunks that hold its
samples, and the optimiser step taken by the module's own `update`, so the results equal
the single-process module's on the same data up to the order of the sums.

The generated files reach the workers through a worker plugin (a C wrapper's library is
built on each worker from its sources, once per machine); the functions of this module
travel by value, so workers need Dask, NumPy (and a C compiler for the C target), not
bpgen. Without a `distributed.Client`, Dask's local scheduler runs the same tasks.

Requires `pip install "bpgen[dask]"` (dask[array] and distributed).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import cloudpickle
import dask
import dask.array as da
import numpy as np

__all__ = ["loss", "value_and_grad", "train"]


# -- the generated files on the workers ------------------------------------------------
def _folder(key: str) -> Path:
    return Path(tempfile.gettempdir()) / "bpgen-dask" / key


def _install(key: str, files) -> None:
    """Write the generated files where tasks look for them (atomically: several workers
    of one machine may write at once)."""
    folder = _folder(key)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files:
        target = folder / name
        if target.exists() and target.read_text() == text:
            continue
        handle, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
        with os.fdopen(handle, "w") as f:
            f.write(text)
        os.replace(tmp, target)


def _load(key: str, stem: str):
    """The generated module `stem` of the set `key`, imported once per process."""
    name = f"_bpgen_dask_{key}_{stem}"
    module = sys.modules.get(name)
    if module is None:  # threads of one worker may both load it: the first one stays
        spec = importlib.util.spec_from_file_location(name, _folder(key) / f"{stem}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module = sys.modules.setdefault(name, module)
    return module


try:
    from distributed import WorkerPlugin
except ImportError:  # Dask without distributed: the local scheduler only
    WorkerPlugin = object


class _Install(WorkerPlugin):
    """A worker plugin that writes the generated files on every worker, present and
    future."""

    def __init__(self, key, files):
        self.key, self.files = key, files
        self.name = f"bpgen-{key}"

    def setup(self, worker=None):
        _install(self.key, self.files)


cloudpickle.register_pickle_by_value(sys.modules[__name__])
_SHIPPED: set = set()


def _ship(module) -> tuple[str, str]:
    """(key, stem): where tasks find `module`'s files, installed here and on the workers
    of the current distributed client (if any)."""
    path = Path(module.__file__)
    stem = path.stem
    names = [path.name]
    if hasattr(module, "_lib"):  # the C wrapper: its sources are built on each worker
        base = stem[:-2] if stem.endswith("_c") else stem
        names += [f"{base}.c", f"{base}.h"]
    files = tuple((n, (path.parent / n).read_text(encoding="utf-8")) for n in names)
    key = f"{module.BPGEN_SET}-{stem}" if hasattr(module, "BPGEN_SET") else stem
    key = key.replace("/", "_")
    if key not in _SHIPPED:
        _install(key, files)
    try:
        from distributed import default_client
        client = default_client()
    except (ImportError, ValueError):
        client = None
    if client is not None and (key, id(client)) not in _SHIPPED:
        client.register_plugin(_Install(key, files), name=f"bpgen-{key}")
        _SHIPPED.add((key, id(client)))
    _SHIPPED.add(key)
    return key, stem


# -- the data ------------------------------------------------------------------------------
def _chunked(module, data):
    """(arrays or one-sample values in INPUTS order, chunk sizes along the samples, n)."""
    if not isinstance(data, dict):
        raise TypeError(f"{module.__name__}: data must be a dict keyed by INPUTS")
    values, chunks, first = [], None, None
    for key in module.INPUTS:  # the chunks of the first Dask input of samples rule
        value = data.get(key)
        if isinstance(value, da.Array) and value.ndim > len(module.SHAPES[key]) and \
                not any(np.isnan(c) for c in value.chunks[0]):
            chunks, first = value.chunks[0], key
            break
    for key in module.INPUTS:
        if key not in data:
            raise KeyError(f"{module.__name__}: input {key!r} is missing")
        value, shape = data[key], module.SHAPES[key]
        if not isinstance(value, da.Array) and np.ndim(value) > len(shape) and chunks:
            # samples in memory: chunked like the Dask inputs (rechunked below)
            value = da.from_array(np.asarray(value), chunks=-1)
        if isinstance(value, da.Array) and value.shape != shape:
            if value.shape[1:] != shape:
                raise ValueError(f"{module.__name__}: input {key!r} has shape "
                                 f"{value.shape}, expected (N, {', '.join(map(str, shape))})"
                                 .replace(", )", ")"))
            value = value.rechunk({k: -1 for k in range(1, value.ndim)})
            if any(np.isnan(c) for c in value.chunks[0]):
                raise ValueError(f"{module.__name__}: input {key!r} has chunks of unknown "
                                 "size; call compute_chunk_sizes() on it first")
            if chunks is None:
                chunks, first = value.chunks[0], key
            elif value.shape[0] != sum(chunks):
                raise ValueError(f"{module.__name__}: input {key!r} has {value.shape[0]} "
                                 f"samples, but input {first!r} has {sum(chunks)}")
            elif value.chunks[0] != chunks:
                value = value.rechunk({0: chunks})
        else:
            value = np.asarray(value)  # one sample, the same for all
        values.append(value)
    if chunks is None:
        raise ValueError(f"{module.__name__}: no input is a dask array of samples; use the "
                         "module itself")
    values = [v.rechunk({0: chunks}) if isinstance(v, da.Array) and v.chunks[0] != chunks
              else v for v in values]
    return values, chunks, sum(chunks)


def _sums(key, stem, flat, rows, *blocks):
    """On a worker: [loss, gradient...] summed over the block's samples (or the `rows`
    of it), and their number."""
    module = _load(key, stem)
    data, n = {}, 1
    for k, b in zip(module.INPUTS, blocks):
        if b.shape != module.SHAPES[k]:  # samples, not one sample for all
            b = b if rows is None else b[rows]
            n = len(b)
        data[k] = b
    value, grad = module.value_and_grad_flat(flat, data)
    scale = n if module.REDUCE == "mean" else 1
    return np.concatenate([[value * scale], grad * scale, [n]])


def _total(module, params, values, chunks, rows=None):
    """(loss, gradient dict) over the samples (`rows`: per chunk, the sample indices within
    it to use, None for all; chunks without rows are skipped), reduced as the module
    reduces."""
    key, stem = _ship(module)
    flat = module.pack(params)
    blocks = [v.to_delayed().ravel() if isinstance(v, da.Array) else None for v in values]
    parts = []
    for c in range(len(chunks)):
        take = None if rows is None else rows[c]
        if take is not None and not len(take):
            continue
        args = [b[c] if b is not None else v for b, v in zip(blocks, values)]
        part = dask.delayed(_sums, pure=True)(key, stem, flat, take, *args)
        parts.append(da.from_delayed(part, (module.N_FLAT + 2,), dtype=np.float64))
    sums = da.stack(parts).sum(axis=0).compute()
    value, grad, n = sums[0], sums[1:-1], sums[-1]
    if module.REDUCE == "mean":
        value, grad = value / n, grad / n
    return float(value), module.unpack(grad)


# -- the API -------------------------------------------------------------------------------
def _require_finite(module, params, values):
    """check_finite=True: FloatingPointError naming the first non-finite parameter, or
    the first input that holds a non-finite value (one pass over the data, on the
    workers)."""
    module._require_finite("parameter", params, module.PARAMS)
    for key, value in zip(module.INPUTS, values):
        if not bool(da.isfinite(value).all().compute() if isinstance(value, da.Array)
                    else np.isfinite(value).all()):
            raise FloatingPointError(f"{module.__name__}: input {key!r} holds a non-finite "
                                     "value")


def _finite_result(module, value, grads, step=None):
    """check_finite=True: FloatingPointError for a non-finite loss (at `step` of
    training) or gradient."""
    if not np.isfinite(value):
        at = "" if step is None else f" at step {step}"
        raise FloatingPointError(f"{module.__name__}: result 'loss' is {value}{at}")
    module._require_finite("result", grads, module.PARAMS)


def value_and_grad(module, params, data, check_finite=False):
    """(loss, grads) of `module` over all samples of the Dask arrays in `data`.
    check_finite=True: FloatingPointError for a non-finite parameter, input or result."""
    values, chunks, _ = _chunked(module, data)
    if check_finite:
        _require_finite(module, params, values)
    value, grads = _total(module, params, values, chunks)
    if check_finite:
        _finite_result(module, value, grads)
    return value, grads


def loss(module, params, data, check_finite=False):
    """The loss of `module` over all samples of the Dask arrays in `data`."""
    return value_and_grad(module, params, data, check_finite)[0]


def train(module, params, data, lr, steps, check_finite=False, *, optimizer="sgd",
          batch_size=None, shuffle=True, seed=0, clip_norm=None, callback=None,
          progress=None, **hyper):
    """The generated `train` (same options, same batches, same optimiser steps) with each
    step's gradient computed where the data live: (final params, loss before each step).
    check_finite=True: FloatingPointError for a non-finite parameter, input, loss or
    gradient (naming the step)."""
    values, chunks, n = _chunked(module, data)
    if check_finite:
        _require_finite(module, params, values)
    state = module.init_state(params, optimizer, clip_norm, **hyper)
    rates = module._rates(lr, steps)
    starts = np.cumsum((0,) + tuple(chunks))
    losses, bar = [], module._Progress(len(rates), progress)
    for t, (rate, (take, count)) in enumerate(zip(rates, module.batches(
            n, len(rates), batch_size, shuffle, seed))):
        rows = None
        if count < n:  # the batch's samples, split among the chunks that hold them
            take = np.sort(np.arange(n)[take])
            cut = np.searchsorted(take, starts)
            rows = [take[cut[c]:cut[c + 1]] - starts[c] for c in range(len(chunks))]
        value, grads = _total(module, params, values, chunks, rows)
        if check_finite:
            _finite_result(module, value, grads, t)
        params, state = module.update(params, grads, state, float(rate))
        losses.append(value)
        bar.update(t + 1, value)
        if callback is not None and module._stops(callback(t, value, module.unpack(
                module.pack(params)))):
            break
    if losses:
        bar.update(len(losses), losses[-1], final=True)
    return module.unpack(module.pack(params)), np.array(losses)
