"""Writing generated files: a whole set or nothing, never over a file bpgen did not write.

Guarantees of `write_set`:

* Ownership. A file is replaced only when bpgen wrote it and it was not edited since
  (its header's hash matches its body), and only by the same network's file of the same
  role; a library only when bpgen built it. A hand-edited file, a file of another
  network, or any other file at a generated file's path is refused (`--force`
  overrides); a net file being compiled, or a module it imports, is never written, even
  with `--force`.
* All or nothing. Every file is first written to a temporary file beside its target;
  then the targets are replaced one by one (each replacement is an atomic rename), the
  C wrapper last. If anything fails on the way, the files already replaced get their
  previous contents back (or are removed if they did not exist) and the temporaries are
  removed: the directory holds the complete old set.
* One writer at a time. Writers of one directory take an exclusive lock on it, so two
  concurrent compiles leave one complete set, not a mix. Temporaries of a writer that was
  killed (they can only be stale while the lock is held) are removed by the next one.
"""

from __future__ import annotations

import difflib
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from .errors import OutputError
from .provenance import read_file_header, read_header

TEMPORARY = ".bpgen-tmp"
BACKUP = ".bpgen-old"
#: Replaced last, so an interrupted write keeps an old wrapper with its old library.
LAST = ("_c.py",)
#: Called as FAULT_HOOK(index, path) before each target is replaced: tests inject
#: failures and kills here.
FAULT_HOOK = None

ROLE_NAMES = {"numpy": "NumPy module", "c-header": "C header", "c-source": "C source",
              "c-wrapper": "C wrapper", "array-api": "array API module"}


def diff(out_dir: Path, files: dict[str, str]) -> str:
    """Unified diff from what is in `out_dir` to `files`; '' when they agree."""
    chunks = []
    for rel in sorted(files):
        path = out_dir / rel
        try:
            old = path.read_text(encoding="utf-8") if path.is_file() else None
        except (OSError, UnicodeDecodeError):
            old = ""
        if old == files[rel]:
            continue
        chunks.extend(difflib.unified_diff(
            [] if old is None else old.splitlines(keepends=True),
            files[rel].splitlines(keepends=True),
            fromfile=f"{out_dir}/{rel}" if old is not None else "/dev/null",
            tofile=f"{out_dir}/{rel} (generated)"))
    return "".join(chunks)


def _describe(header) -> str:
    return f"the {ROLE_NAMES.get(header.role, 'file')} of network {header.network!r}"


def check_targets(out_dir: Path, files: dict, force: bool, protect=()) -> None:
    """Raise OutputError unless every file may be written (see the module docstring)."""
    protected = {os.path.realpath(p) for p in protect}
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir} is not a directory")
    for rel in sorted(files):
        path = out_dir / rel
        if os.path.realpath(path) in protected:
            raise OutputError(f"{path} is a network file being compiled; bpgen never "
                              "writes over it: choose another output directory (-o)")
        if path.is_dir():
            raise OutputError(f"{path} is a directory; remove it or choose another "
                              "output directory (-o)")
        if force or not (path.exists() or path.is_symlink()):
            continue
        if isinstance(files[rel], bytes):  # a library: one bpgen built
            if not _built_by_bpgen(path):
                raise OutputError(f"{path} exists and was not built by bpgen; refusing to "
                                  "overwrite it (move it away, or use --force)")
            continue
        old = read_file_header(path)
        if old is None:
            raise OutputError(f"{path} exists and was not written by bpgen; refusing to "
                              "overwrite it (move it away, or use --force)")
        if not old.intact:
            raise OutputError(f"{path} was edited by hand (its bpgen-hash no longer "
                              "matches); use --force to overwrite it")
        new = read_header(files[rel]) if isinstance(files[rel], str) else None
        if new is not None and old.network is not None and \
                (old.network, old.role) != (new.network, new.role):
            raise OutputError(f"{path} is {_describe(old)}; {_describe(new)} would "
                              "overwrite it: rename one of the networks, or use another "
                              "output directory")


def _built_by_bpgen(path: Path) -> bool:
    try:
        return b"bpgen-set=" in path.read_bytes()
    except OSError:
        return False


@contextmanager
def locked(directory: Path):
    """An exclusive lock on `directory` for the duration (POSIX; a no-op elsewhere)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def remove_abandoned(directory: Path) -> None:
    """Temporaries left by a writer that was killed (call with the lock held)."""
    for path in directory.iterdir():
        if path.name.startswith(".") and path.name.endswith((TEMPORARY, BACKUP)):
            try:
                path.unlink()
            except OSError:
                pass


def _hidden(target: Path, suffix: str) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}-{os.urandom(4).hex()}{suffix}")


def _order(rel: str):
    return (rel.endswith(LAST), rel)


def write_set(out_dir: Path, files: dict, force: bool = False, protect=()):
    """Write `files` (relative path -> text, or bytes of a built library) under `out_dir`
    as one set."""
    out_dir = Path(out_dir)
    check_targets(out_dir, files, force, protect)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write to {out_dir}: {exc.strerror or exc}") from None
    with locked(out_dir):
        remove_abandoned(out_dir)
        check_targets(out_dir, files, force, protect)  # another writer may have been first
        _replace_all(out_dir, files)


def _replace_all(out_dir: Path, files: dict) -> None:
    staged: list[tuple[Path, Path]] = []
    done: list[tuple[Path, Path | None]] = []  # (target, backup of its old contents)
    backups: list[Path] = []
    try:
        for rel in sorted(files, key=_order):
            target = out_dir / rel
            tmp = _hidden(target, TEMPORARY)
            staged.append((tmp, target))
            data = files[rel]
            with open(tmp, "xb") as f:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
            os.chmod(tmp, 0o644 if isinstance(data, str) else 0o755)  # libraries: 0755
        for k, (tmp, target) in enumerate(staged):
            if FAULT_HOOK is not None:
                FAULT_HOOK(k, target)
            backup = None
            if target.exists():
                backup = _hidden(target, BACKUP)
                backups.append(backup)
                try:
                    os.link(target, backup)
                except OSError:  # no hard links here: a copy does
                    shutil.copy2(target, backup)
            os.replace(tmp, target)
            done.append((target, backup))
    except BaseException as exc:  # noqa: B036 - roll back, even on Ctrl-C
        for target, backup in reversed(done):
            try:
                if backup is not None:
                    os.replace(backup, target)
                else:
                    target.unlink()
            except OSError:
                pass
        for tmp, _ in staged:
            if tmp.exists():
                tmp.unlink()
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write to {out_dir}: {exc.strerror or exc}; the "
                              "previous files are left as they were") from None
        raise
    finally:
        for backup in backups:
            if backup.exists():
                backup.unlink()
