"""Files the product reads while they may change: atomic writes (a reader sees the old file or
the new one, never half of one: imported CMS quarters, the index pointer) and the signature of a
folder's files that caches compare to notice an edit (the reference data, the corpus).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: str | bytes, *, sync_dir: bool = False) -> None:
    """Write `data` to a temporary file beside `path`, fsync it, then rename it over `path`.

    `sync_dir` also fsyncs the directory, so the rename itself survives a power cut (the index
    pointer needs that; a re-importable reference file does not)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if isinstance(data, bytes):
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        else:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if sync_dir:
        dir_fd = os.open(path.parent, os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def files_signature(folder: Path, suffixes: tuple[str, ...] = (), depth: int = 1) -> tuple:
    """(path, mtime, size) of the files in `folder` and its sub-folders down to `depth` levels,
    sorted; only names ending in `suffixes` when given. One stat per file, no parsing: cheap
    enough to call on every look-up."""
    out: list[tuple[str, int, int]] = []

    def scan(path: str, level: int) -> None:
        try:
            entries = list(os.scandir(path))
        except OSError:
            return
        for e in entries:
            try:
                if e.is_dir():
                    if level < depth:
                        scan(e.path, level + 1)
                elif (not suffixes or e.name.endswith(suffixes)) and e.is_file():
                    st = e.stat()
                    out.append((e.path, st.st_mtime_ns, st.st_size))
            except OSError:
                continue

    scan(str(folder), 0)
    return tuple(sorted(out))
