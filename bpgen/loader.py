"""Load a user's net file: run it and collect the `bpgen.Network`s it defines.

Anything that goes wrong while the file runs (a syntax error, an exception, a bad
declaration, a call to sys.exit or os._exit, bytes that are not UTF-8, an expression
nested deeper than Python can follow) becomes a `BpgenError` that points at the line in
the user's file. Ctrl-C (KeyboardInterrupt) is not caught: the CLI reports it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import traceback

import sympy
from sympy.core.cache import clear_cache
from sympy.core.parameters import distribute

from .dsl import Network
from .errors import BpgenError, LoadError, Origin


def display_path(path: str) -> str:
    """The path as a user reads it: relative to the working directory, '/'-separated (an
    absolute path outside it as given)."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        rel = path
    if os.path.isabs(path) and rel.startswith(".."):
        rel = path
    return rel.replace(os.sep, "/")


def split_spec(spec: str) -> tuple[str, str]:
    """`net.py` or `net.py:NAME` -> (path, NAME or '')."""
    if ":" in spec and not os.path.exists(spec):
        path, _, wanted = spec.rpartition(":")
        return path, wanted
    return spec, ""


class _Exited(BaseException):
    """Raised in place of os._exit while a net file runs."""

    def __init__(self, status):
        super().__init__(status)
        self.code = status


def _refuse_exit(status=0):
    raise _Exited(status)


def read_source(path: str, shown: str) -> str:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise LoadError(f"cannot read {shown}: {exc.strerror or exc}") from None
    try:
        return importlib.util.decode_source(raw)  # UTF-8, or the file's coding cookie
    except (UnicodeDecodeError, SyntaxError, LookupError) as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            line = raw[:bad.start].count(b"\n") + 1
            raise LoadError(f"{shown} is not valid UTF-8 (byte 0x{raw[bad.start]:02x} at "
                            f"offset {bad.start}); save it as UTF-8",
                            Origin(shown, line)) from None
        raise LoadError(f"cannot decode {shown}: {exc}", Origin(shown, 1)) from None


def load_networks(spec: str) -> tuple[str, list[Network], list[str]]:
    """`net.py` or `net.py:NAME` -> (display path, networks defined at the top level, the
    files of the modules the net file imported).

    The file runs with SymPy's automatic distribution of numbers over sums switched off,
    so `10**9*(1 - t**2)` stays the product it was written as, and in its own directory
    context: a `chdir` inside it is undone afterwards.
    """
    path, wanted = split_spec(spec)
    shown = display_path(path)
    source = read_source(path, shown)
    try:
        code = compile(source, shown, "exec")
    except SyntaxError as exc:
        raise LoadError(f"syntax error: {exc.msg}", Origin(shown, exc.lineno or 1)) from None
    except (ValueError, RecursionError, MemoryError) as exc:  # NUL bytes, absurd nesting
        raise LoadError(f"cannot compile {shown}: {exc}", Origin(shown, 1)) from None
    namespace = {"__name__": "__bpgen_net__", "__file__": os.path.abspath(path)}
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    real_exit, os._exit = os._exit, _refuse_exit
    cwd = os.getcwd()
    before = set(sys.modules)
    try:
        clear_cache()  # products built with distribution on must not be reused
        with distribute(False):
            exec(code, namespace)  # noqa: S102 - running the user's net file is the point
    except BpgenError:
        raise
    except KeyboardInterrupt:
        raise
    except (SystemExit, _Exited) as exc:
        how = "os._exit" if isinstance(exc, _Exited) else "sys.exit"
        raise LoadError(f"{shown} exited during import ({how}({exc.code!r})); a net file "
                        "should only declare networks", _user_origin(exc, shown)) from None
    except RecursionError:
        raise LoadError("RecursionError: endless recursion, or an expression nested deeper "
                        "than Python can follow (build it in several net.eq steps)",
                        _user_origin(sys.exc_info()[1], shown)) from None
    except BaseException as exc:  # noqa: B036 - whatever the file raised is the user's error
        text = _text(exc)
        message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        if isinstance(exc, TypeError) and "for @" in text:
            message += " (an operand of @ must be a declared value; use bp.matmul(a, b))"
        if isinstance(exc, TypeError) and text.endswith("object is not subscriptable") and \
                text.split("'")[1:2] and hasattr(sympy, text.split("'")[1]):
            message += (" (index an expression once it has a name, gates = net.eq(\"gates\", "
                        "...), or with bp.index(expr, key))")
        raise LoadError(message, _user_origin(exc, shown)) from None
    finally:
        os._exit = real_exit
        sys.path.pop(0)
        os.chdir(cwd)
    imported = sorted({os.path.abspath(f) for name in set(sys.modules) - before
                       if isinstance(f := getattr(sys.modules[name], "__file__", None), str)})
    networks = [v for v in namespace.values() if isinstance(v, Network)]
    unique = list({id(n): n for n in networks}.values())
    if wanted:
        unique = [n for n in unique if n.name == wanted]
        if not unique:
            raise LoadError(f"{shown} defines no network named {wanted!r}")
    if not unique:
        raise LoadError(f"{shown} defines no bpgen.Network at the top level",
                        Origin(shown, 1))
    names = [n.name for n in unique]
    for n in unique:
        if names.count(n.name) > 1:
            raise LoadError(f"two networks are named {n.name!r}", n.origin)
    return shown, unique, imported


def _text(exc: BaseException, limit: int = 300) -> str:
    """An exception's message on one line, even if printing it fails."""
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ of the user's exception
        return "(its message cannot be printed)"
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    text = lines[0] + (" …" if len(lines) > 1 else "") if lines else ""
    return text if len(text) <= limit else text[:limit] + " …"


def _user_origin(exc: BaseException, shown: str) -> Origin | None:
    """The deepest traceback frame in the user's file."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == shown:
            line = frame.lineno
    return Origin(shown, line) if line else None


def current_line(frame, shown: str) -> Origin | None:
    """The line of the user's file that a running thread (its top `frame`) is at."""
    line = None
    while frame is not None:
        if frame.f_code.co_filename == shown and line is None:
            line = frame.f_lineno
        frame = frame.f_back
    return Origin(shown, line) if line else None
