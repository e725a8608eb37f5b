"""The command line: `bpgen compile NET.py ...` (also `python -m bpgen`).

Parses arguments, loads net files, runs the compiler and writes files atomically.
No compiler logic lives here. User mistakes print one line `file:line: error: ...`
and exit with status 2; `--check` exits 1 when the output directory is out of date.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import time
from pathlib import Path

from . import __version__
from .compiler import compile_network
from .emit import TARGETS, emit
from .errors import BpgenError, OutputError
from .loader import load_networks
from .output import diff, write_all

EXAMPLES = """\
examples:
  bpgen compile examples/seed.py                  # NumPy module in generated/
  bpgen compile examples/*.py --target all        # NumPy and C, builds the C library
  bpgen compile net.py:seed -o out --target c     # one network of net.py, into out/
  bpgen compile examples/*.py --target all --check   # CI: fail if generated/ is stale
"""


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
    c.add_argument("--target", choices=("numpy", "c", "all"), default="numpy",
                   help="what to generate (default: numpy)")
    c.add_argument("-o", "--output", default="generated", metavar="DIR",
                   help="output directory (default: generated/)")
    c.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 and print a diff if DIR is out of date")
    c.add_argument("--force", action="store_true",
                   help="overwrite generated files even if they were edited by hand")
    c.add_argument("--no-build", action="store_true",
                   help="with the C target, write sources but do not build the library")
    c.add_argument("-v", "--verbose", action="store_true",
                   help="print the time of each compiler stage and the graph sizes")
    return top


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return compile_command(args)
    except BpgenError as exc:
        print(exc.format(), file=sys.stderr)
        return 2


def compile_command(args) -> int:
    targets = list(TARGETS) if args.target == "all" else [args.target]
    files: dict[str, str] = {}
    owners: dict[str, str] = {}
    started = time.perf_counter()
    for spec in args.nets:
        shown, networks = load_networks(spec)
        for net in networks:
            compiled = compile_network(net, shown)
            for d in compiled.diagnostics:
                print(d, file=sys.stderr)
            clock = time.perf_counter()
            produced = emit(compiled, targets)
            compiled.timings["emit"] = time.perf_counter() - clock
            for name in produced:
                if name in owners:
                    raise OutputError(f"networks in {owners[name]} and {shown} both "
                                      f"generate {name}")
                owners[name] = shown
            files.update(produced)
            if args.verbose:
                report(compiled, file=sys.stderr)
    out_dir = Path(args.output)
    if args.check:
        text = diff(out_dir, files)
        if text:
            sys.stdout.write(text)
            print(f"bpgen: {out_dir} is out of date; run: bpgen compile "
                  f"{' '.join(args.nets)} --target {args.target} -o {args.output}",
                  file=sys.stderr)
            return 1
        return 0
    wrappers = [name for name in files if name.endswith("_c.py")]
    if wrappers and not args.no_build:
        require_compiler()
    write_all(out_dir, files, force=args.force)
    if wrappers and not args.no_build:
        for name in sorted(wrappers):
            build_library(out_dir / name)
    if args.verbose:
        print(f"bpgen: wrote {len(files)} files to {out_dir} in "
              f"{time.perf_counter() - started:.2f} s", file=sys.stderr)
    return 0


def report(compiled, file) -> None:
    ir = compiled.programs["value_and_grad"]
    n_forward = len(compiled.ir.equations)
    n_backward = len(ir.equations) - len(ir.forward())
    stages = ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in compiled.timings.items())
    print(f"{compiled.ir.name}: {stages}; forward graph {n_forward} equations, "
          f"backward graph {n_backward} equations", file=file)


def require_compiler() -> None:
    for candidate in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if candidate and shutil.which(candidate):
            return
    raise OutputError("no C compiler found (install gcc or clang, or set CC); "
                      "use --no-build to write the C sources only")


def build_library(wrapper: Path) -> None:
    """Import the generated wrapper: on import it builds its library if it is stale,
    with the same compiler and flags users get."""
    spec = importlib.util.spec_from_file_location(f"_bpgen_build_{wrapper.stem}", wrapper)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except (RuntimeError, OSError) as exc:
        raise OutputError(f"building the C library for {wrapper} failed: "
                          f"{str(exc).strip()}") from None
