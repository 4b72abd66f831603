"""File I/O with guarantees: atomic writes, and reads bounded by a size limit.

A reader of an atomic write sees the old file or the new one, never half of either;
a bounded read never holds more than one byte past its limit in memory.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from broker.errors import ConfigError, TooLargeError

__all__ = ["atomic_write", "read_bounded"]


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically: temp file, fsync, rename, fsync the directory.

    Args:
        path: the file to (re)place.
        data: its new content.
        mode: permission bits of the new file (e.g. ``0o600`` for private keys); set
            before any byte is written, so a secret is never readable by others.
    """
    directory = path.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            Path(tmp).unlink()
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_bounded(path: Path, limit: int, what: str) -> bytes:
    """Read a file of at most ``limit`` bytes.

    Args:
        path: the file.
        limit: the largest size accepted.
        what: what the file is, for the error message (``"the trust directory"``).

    Raises:
        ConfigError: the file cannot be read.
        TooLargeError: it is larger than ``limit``.
    """
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise TooLargeError(f"{what} {path} is over {limit} bytes")
    return data
