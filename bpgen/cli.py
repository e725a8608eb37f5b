"""The command line: `bpgen compile NET.py ...` (also `python -m bpgen`).

Parses arguments, loads net files, runs the compiler and writes files atomically.
No compiler logic lives here.

Exit status: 0 done; 1 `--check` found the output out of date; 2 a user error (one line
`file:line: error: ...`, nothing written); 3 an internal error of bpgen (one line; the
traceback with -v); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import traceback
from pathlib import Path

from . import __version__
from .compiler import compile_network
from .emit import TARGETS, emit, files_of
from .emit.common import DTYPES
from .errors import BpgenError, LoadError, OutputError
from .loader import current_line, display_path, load_networks, split_spec
from .build import build_libraries, require_compiler
from .output import check_targets, diff, write_set
from .provenance import read_file_header

EXAMPLES = """\
examples:
  bpgen compile examples/seed.py                  # NumPy module in generated/
  bpgen compile examples/*.py --target all        # NumPy and C, builds the C library
  bpgen compile net.py:seed -o out --target c     # one network of net.py, into out/
  bpgen compile net.py --target c --dtype float32 -o out32   # single precision
  bpgen compile examples/*.py --target all --check   # CI: fail if generated/ is stale
  bpgen explain examples/seed.py --wrt w11        # the chain rule, factor by factor
  bpgen explain examples/seed.py --format latex --standalone > seed.tex
  bpgen graph examples/seed.py -o seed.svg        # forward and backward graphs
"""


def positive(text: str) -> float:
    """A number of seconds > 0 (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="bpgen", description="Compile networks written as equations into "
        "standalone loss, gradient and training code (NumPy and C).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--version", action="version", version=f"bpgen {__version__}")
    sub = top.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compile", help="generate code for the networks in NET.py files",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("nets", nargs="+", metavar="NET.py[:NAME]",
                   help="net files; NAME picks one network of the file")
    c.add_argument("--target", choices=("numpy", "c", "array-api", "all"), default="numpy",
                   help="what to generate (default: numpy)")
    c.add_argument("-o", "--output", default="generated", metavar="DIR",
                   help="output directory (default: generated/)")
    c.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 and print a diff if DIR is out of date")
    c.add_argument("--force", action="store_true",
                   help="overwrite generated files even if they were edited by hand")
    c.add_argument("--hvp", action="store_true",
                   help="also generate exact Hessian-vector products (hvp, hvp_flat) for "
                   "every network (one asks for them with bp.Network(name, hvp=True))")
    c.add_argument("--dtype", choices=DTYPES, default=DTYPES[0],
                   help="the real type of the generated code (default: float64); float32 "
                   "computes in single precision on both targets")
    c.add_argument("--no-build", action="store_true",
                   help="with the C target, write sources but do not build the library")
    c.add_argument("-v", "--verbose", action="store_true",
                   help="print the time of each compiler stage and the graph sizes")
    c.add_argument("--timeout", type=positive, metavar="SECONDS",
                   help="give up loading a net file, or compiling a network, that takes "
                   "longer than this")
    e = sub.add_parser("explain", help="show the chain rule for each parameter's gradient",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("nets", nargs="+", metavar="NET.py[:NAME]")
    e.add_argument("--wrt", nargs="+", metavar="NAME", help="only these parameters")
    e.add_argument("--format", choices=("text", "markdown", "latex"), default="text")
    e.add_argument("--standalone", action="store_true",
                   help="with --format latex: a complete document for pdflatex")
    e.add_argument("-v", "--verbose", action="store_true",
                   help="show the traceback of an internal error")
    e.add_argument("--timeout", type=positive, metavar="SECONDS",
                   help="give up loading a net file that runs longer than this")
    g = sub.add_parser("graph", help="draw the forward and backward graphs (DOT, SVG, PNG)",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    g.add_argument("net", metavar="NET.py[:NAME]")
    g.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="FILE.dot (text), or .svg/.png/.pdf (needs Graphviz's dot)")
    g.add_argument("--force", action="store_true",
                   help="overwrite FILE even if it is not a graph bpgen drew")
    g.add_argument("-v", "--verbose", action="store_true",
                   help="show the traceback of an internal error")
    g.add_argument("--timeout", type=positive, metavar="SECONDS",
                   help="give up loading a net file that runs longer than this")
    return top


EXIT_OK, EXIT_OUT_OF_DATE, EXIT_USER_ERROR, EXIT_INTERNAL_ERROR, EXIT_INTERRUPTED = \
    0, 1, 2, 3, 130


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    commands = {"compile": compile_command, "explain": explain_command,
                "graph": graph_command}
    try:
        return commands[args.command](args)
    except BpgenError as exc:
        print(exc.format(), file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("bpgen: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except RecursionError:
        print("error: an expression is nested deeper than bpgen can follow; build it in "
              "several net.eq steps", file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception as exc:  # a bug in bpgen, not a user mistake
        if args.verbose:
            traceback.print_exc()
        what = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        print(f"error: internal error in bpgen ({type(exc).__name__}"
              f"{': ' + what if what else ''}); please report it with the network file"
              f"{'' if args.verbose else ' (run with -v for the traceback)'}",
              file=sys.stderr)
        return EXIT_INTERNAL_ERROR


#: Loading and compiling run in a worker thread with a large stack and a high recursion
#: limit, so deeply nested user expressions are followed instead of crashing Python.
STACK_SIZE = 512 * 1024 * 1024
RECURSION_LIMIT = 100_000


def in_worker(fn, *args, timeout=None, shown=None, what=None):
    """`fn(*args)` in a worker thread; its result, or its exception re-raised here.

    The main thread waits in short steps, so Ctrl-C interrupts at once; with `timeout`
    (seconds), a worker still running then is reported at the line of `shown` (the net
    file) it is executing, and abandoned (it is a daemon thread).
    """
    outcome: dict = {}

    def target():
        try:
            outcome["value"] = fn(*args)
        except BaseException as exc:  # noqa: B036 - handed to the main thread
            outcome["error"] = exc

    old_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old_limit, RECURSION_LIMIT))
    old_stack = threading.stack_size()
    try:
        try:
            threading.stack_size(STACK_SIZE)
        except (ValueError, RuntimeError):  # the platform refuses: keep its default
            pass
        worker = threading.Thread(target=target, name="bpgen-worker", daemon=True)
        worker.start()
    finally:
        threading.stack_size(old_stack)
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        while worker.is_alive():
            worker.join(0.05)
            if deadline is not None and worker.is_alive() and time.monotonic() > deadline:
                if what:
                    raise LoadError(f"{what} took longer than {timeout:g} s (--timeout)")
                frame = sys._current_frames().get(worker.ident)
                raise LoadError(f"still running after {timeout:g} s (--timeout); is there "
                                "an endless loop?", current_line(frame, shown) if shown
                                else None)
    finally:
        sys.setrecursionlimit(old_limit)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def load(spec, args, progress=None):
    """`load_networks(spec)` in the worker, with --timeout and a progress line."""
    if progress:
        progress.update(f"loading {display_path(split_spec(spec)[0])}…")
    return in_worker(load_networks, spec, timeout=getattr(args, "timeout", None),
                     shown=display_path(split_spec(spec)[0]))


class Progress:
    """A one-line status on stderr for compiles that take over a second, on a terminal."""

    DELAY = float(os.environ.get("BPGEN_PROGRESS_DELAY", "1.0"))  # seconds

    def __init__(self, stream=sys.stderr):
        import threading
        self.stream = stream
        self.enabled = hasattr(stream, "isatty") and stream.isatty()
        self.text = ""
        self.shown = False
        self.lock = threading.Lock()
        self.timer = threading.Timer(self.DELAY, self._show) if self.enabled else None
        if self.timer:
            self.timer.daemon = True
            self.timer.start()

    def _show(self):
        with self.lock:
            self.shown = True
            self.stream.write(f"\r\x1b[Kbpgen: {self.text}")
            self.stream.flush()

    def update(self, text: str):
        self.text = text
        if self.shown:
            self._show()

    def close(self):
        if self.timer:
            self.timer.cancel()
        with self.lock:
            if self.shown:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
            self.shown = False


def compile_command(args) -> int:
    progress = Progress()
    try:
        return _compile(args, progress)
    finally:
        progress.close()


def _compile(args, progress) -> int:
    requested = list(TARGETS) if args.target == "all" else [args.target]
    out_dir = Path(args.output)
    files: dict[str, str] = {}
    owners: dict[str, str] = {}
    protect: list[str] = []  # net files and the modules they import: never written
    notes: list[str] = []
    started = time.perf_counter()
    for spec in dict.fromkeys(args.nets):  # a file named twice is compiled once
        shown, networks, imported = load(spec, args, progress)
        net_file = split_spec(spec)[0]
        protect += [net_file, *imported]
        for net in networks:
            net.hvp = net.hvp or args.hvp
            compiled = in_worker(compile_network, net, source_for(net_file, out_dir),
                                 lambda stage, n=net.name:
                                 progress.update(f"{n}: {stage or 'emit'}…"), args.dtype,
                                 timeout=args.timeout, what=f"compiling network {net.name!r}")
            for d in compiled.diagnostics:
                print(d, file=sys.stderr)
            extra, why = companions(out_dir, net.name, requested)
            targets = requested + extra
            notes += why
            clock = time.perf_counter()
            produced = in_worker(emit, compiled, targets, timeout=args.timeout,
                                 what=f"generating the code of network {net.name!r}")
            compiled.timings["emit"] = time.perf_counter() - clock
            for name in produced:
                if name in owners:
                    raise OutputError(f"networks in {owners[name]} and {shown} both "
                                      f"generate {name}")
                owners[name] = shown
            files.update(produced)
            if args.verbose:
                report(compiled, file=sys.stderr)
    if args.check:
        text = diff(out_dir, files)
        if text:
            sys.stdout.write(text)
            extra = "".join(f" --{flag}" for flag in ("hvp",) if getattr(args, flag))
            if args.dtype != DTYPES[0]:
                extra += f" --dtype {args.dtype}"
            print(f"bpgen: {out_dir} is out of date; run: bpgen compile "
                  f"{' '.join(args.nets)} --target {args.target}{extra} -o {args.output}",
                  file=sys.stderr)
            return EXIT_OUT_OF_DATE
        return EXIT_OK
    if any(name.endswith("_c.py") for name in files) and not args.no_build:
        require_compiler()
        check_targets(out_dir, files, args.force, protect)  # before a long build
        files.update(build_libraries(files, progress))
    write_set(out_dir, files, force=args.force, protect=protect)
    for note in notes:
        print(note, file=sys.stderr)
    if args.verbose:
        print(f"bpgen: wrote {len(files)} files to {out_dir} in "
              f"{time.perf_counter() - started:.2f} s", file=sys.stderr)
    return EXIT_OK


def source_for(net_file: str, out_dir: Path) -> str:
    """The net file as generated files name it: relative to the output directory (so
    their headers do not depend on where bpgen runs), '/'-separated."""
    try:
        rel = os.path.relpath(os.path.abspath(net_file), os.path.abspath(out_dir))
    except ValueError:  # another drive on Windows
        rel = os.path.abspath(net_file)
    return rel.replace(os.sep, "/")


def companions(out_dir: Path, name: str, requested) -> tuple[list[str], list[str]]:
    """Targets not asked for whose files of network `name` are in `out_dir` (from an
    earlier compile): they are regenerated too, so the directory never holds files of two
    versions of one network. (targets, a note for each)"""
    found, notes = [], []
    for target in TARGETS:
        if target in requested:
            continue
        for filename in files_of(name, target):
            header = read_file_header(out_dir / filename)
            if header is not None and header.network == name:
                notes.append(f"bpgen: also updated {out_dir / filename} and the other "
                             f"{target} files of network {name!r}, so that they match")
                found.append(target)
                break
    return found, notes


def explain_command(args) -> int:
    from .explain import Explanation
    if args.standalone and args.format != "latex":
        raise OutputError("--standalone makes a LaTeX document: use it with --format latex")
    wrt = list(dict.fromkeys(args.wrt)) if args.wrt else None  # each parameter once
    parts = []
    for spec in args.nets:
        shown, networks, _ = load(spec, args)
        for net in networks:
            compiled = in_worker(compile_network, net, shown)
            exp = Explanation(compiled, wrt)
            if args.format == "text":
                parts.append(exp.text())
            elif args.format == "markdown":
                parts.append(exp.markdown())
            else:
                parts.append(exp.latex(standalone=args.standalone))
    sys.stdout.write("\n".join(parts))
    return 0


def graph_command(args) -> int:
    from .graph import GRAPH_MARK, render, to_dot
    shown, networks, _ = load(args.net, args)
    if len(networks) > 1:
        raise OutputError(f"{shown} defines {len(networks)} networks; pick one with "
                          f"{shown}:NAME ({', '.join(n.name for n in networks)})")
    dot = in_worker(lambda: to_dot(compile_network(networks[0], shown)))
    target = Path(args.output)
    fmt = target.suffix.lstrip(".").lower()
    if fmt not in ("dot", "gv", "svg", "png", "pdf"):
        raise OutputError(f"{target}: unknown graph format {target.suffix!r} "
                          "(use .dot, .svg, .png or .pdf)")
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise OutputError(f"{directory} is not a directory")
    if target.exists() and not args.force and GRAPH_MARK.encode() not in target.read_bytes():
        raise OutputError(f"{target} exists and is not a graph bpgen drew; refusing to "
                          "overwrite it (use --force)")
    data = dot if fmt in ("dot", "gv") else render(dot, fmt)
    write_set(directory, {target.name: data}, force=True,
              protect=[split_spec(args.net)[0]])
    return 0


def report(compiled, file) -> None:
    ir = compiled.programs["value_and_grad"]
    n_forward = len(compiled.ir.equations)
    n_backward = len(ir.equations) - len(ir.forward())
    stages = ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in compiled.timings.items())
    print(f"{compiled.ir.name}: {stages}; forward graph {n_forward} equations, "
          f"backward graph {n_backward} equations", file=file)


