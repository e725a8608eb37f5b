"""Writing generated files: all or nothing, never over a hand edit, `--check` diffs.

Every file is first written to a temporary file in its directory, and only when all of
them are written are they renamed into place (a rename is atomic), so an error never
leaves a half-written file, and two concurrent compiles leave one consistent set.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from pathlib import Path

from .emit.common import edited_by_hand
from .errors import OutputError


def diff(out_dir: Path, files: dict[str, str]) -> str:
    """Unified diff from what is in `out_dir` to `files`; '' when they agree."""
    chunks = []
    for rel in sorted(files):
        path = out_dir / rel
        old = path.read_text(encoding="utf-8") if path.is_file() else None
        if old == files[rel]:
            continue
        chunks.extend(difflib.unified_diff(
            [] if old is None else old.splitlines(keepends=True),
            files[rel].splitlines(keepends=True),
            fromfile=f"{out_dir}/{rel}" if old is not None else "/dev/null",
            tofile=f"{out_dir}/{rel} (generated)"))
    return "".join(chunks)


def write_all(out_dir: Path, files: dict, force: bool = False) -> list[Path]:
    """Write `files` (relative path -> text or bytes) under `out_dir` atomically."""
    if not force:
        for rel in sorted(files):
            path = out_dir / rel
            if isinstance(files[rel], str) and path.is_file() \
                    and edited_by_hand(path.read_text(encoding="utf-8", errors="replace")):
                raise OutputError(f"{path} was edited by hand (its bpgen-hash no longer "
                                  "matches); use --force to overwrite it")
    staged: list[tuple[str, Path]] = []
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for rel in sorted(files):
            target = out_dir / rel
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                       dir=target.parent)
            staged.append((tmp, target))
            data = files[rel]
            with os.fdopen(fd, "wb") as f:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
            os.chmod(tmp, 0o644)
        for tmp, target in staged:
            os.replace(tmp, target)
    except OSError as exc:
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise OutputError(f"cannot write to {out_dir}: {exc.strerror or exc}") from None
    return [target for _, target in staged]
