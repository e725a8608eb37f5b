"""Load a user's net file: run it and collect the `bpgen.Network`s it defines.

Anything that goes wrong while the file runs (a syntax error, an exception, a bad
declaration) becomes a `BpgenError` that points at the line in the user's file.
"""

from __future__ import annotations

import os
import sys
import traceback

from .dsl import Network
from .errors import BpgenError, LoadError, Origin


def display_path(path: str) -> str:
    """The path as a user reads it: relative to the working directory, '/'-separated."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        rel = path
    return rel.replace(os.sep, "/")


def load_networks(spec: str) -> tuple[str, list[Network]]:
    """`net.py` or `net.py:NAME` -> (display path, networks defined at the top level)."""
    path, _, wanted = spec.rpartition(":") if ":" in spec and not os.path.exists(spec) \
        else (spec, "", "")
    shown = display_path(path)
    try:
        with open(path, encoding="utf-8") as f:
            source = f.read()
    except OSError as exc:
        raise LoadError(f"cannot read {shown}: {exc.strerror or exc}") from None
    try:
        code = compile(source, shown, "exec")
    except SyntaxError as exc:
        raise LoadError(f"syntax error: {exc.msg}", Origin(shown, exc.lineno or 1)) from None
    namespace = {"__name__": "__bpgen_net__", "__file__": os.path.abspath(path)}
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        exec(code, namespace)  # noqa: S102 - running the user's net file is the point
    except BpgenError:
        raise
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, TypeError) and "for @" in str(exc):
            message += " (an operand of @ must be a declared value; use bp.matmul(a, b))"
        raise LoadError(message, _user_origin(exc, shown)) from None
    finally:
        sys.path.pop(0)
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
    return shown, unique


def _user_origin(exc: BaseException, shown: str) -> Origin | None:
    """The deepest traceback frame in the user's file."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == shown:
            line = frame.lineno
    return Origin(shown, line) if line else None
