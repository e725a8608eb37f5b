"""Building C libraries before anything is written.

`bpgen compile --target c` builds each network's library from its freshly generated
files in a scratch directory, with the generated wrapper's own build (the compiler and
flags users get), and the library then joins the set of files written all or nothing: a
failed build writes nothing, and the wrapper finds a library built from its own set when
it is imported.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .errors import OutputError

#: C sources larger than this get a note before they are built (bytes).
LARGE_C_SOURCE = 256 * 1024


def require_compiler() -> None:
    for candidate in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if candidate and shutil.which(candidate.split()[0] if candidate.split() else ""):
            return
    raise OutputError("no C compiler found (install gcc or clang, or set CC); "
                      "use --no-build to write the C sources only")


def build_libraries(files: dict, progress=None) -> dict[str, bytes]:
    """{library file name: its bytes} for every C wrapper among `files`. Libraries build
    concurrently, one C compiler per CPU; the first failure (in name order) is raised."""
    built: dict[str, bytes] = {}
    wrappers = sorted(name for name in files if name.endswith("_c.py"))
    if not wrappers:
        return built
    with tempfile.TemporaryDirectory(prefix="bpgen-build-") as scratch:
        stems = []
        for wrapper in wrappers:
            stem = wrapper[:-len("_c.py")]
            for name in (f"{stem}.h", f"{stem}.c", wrapper):
                Path(scratch, name).write_text(files[name], encoding="utf-8")
            size = len(files[f"{stem}.c"])
            if size > LARGE_C_SOURCE:
                print(f"bpgen: building {stem}: its C source is {size // 1024} KiB, which the "
                      "C compiler may take minutes to build (--no-build writes the sources "
                      "only)", file=sys.stderr)
            stems.append(stem)
        if progress:
            progress.update(f"building {', '.join(stems)} with the C compiler…"
                            if len(stems) <= 3 else
                            f"building {len(stems)} libraries with the C compiler…")
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
            (os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=min(len(stems), cpus)) as pool:
            futures = [pool.submit(_build, Path(scratch, f"{stem}_c.py"), stem)
                       for stem in stems]  # the compilers run apart, in subprocesses
            try:
                for future in futures:
                    library = future.result()
                    built[library.name] = library.read_bytes()
            except BaseException:
                pool.shutdown(cancel_futures=True)  # builds not started yet never start
                raise
    return built


def _build(wrapper: Path, stem: str) -> Path:
    """Import the wrapper (which builds its library beside it); the library's path."""
    spec = importlib.util.spec_from_file_location(f"_bpgen_build_{stem}_{id(wrapper)}",
                                                  wrapper)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except (RuntimeError, OSError, ImportError, ValueError) as exc:
        raise OutputError(f"building the C library of {stem} failed: "
                          f"{one_line(str(exc))}") from None
    return Path(module.LIBRARY)


def one_line(text: str) -> str:
    """A message on one line: its first line, and the compiler's first error if any."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return "(no message)"
    first = lines[0].rstrip(":")
    error = next((ln for ln in lines[1:] if "error" in ln), None)
    return f"{first}: {error}" if error else first
