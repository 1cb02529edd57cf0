"""Atomic outputs: write to a hidden temporary file beside the target, rename when complete.

An interrupted or failed run (exception, Ctrl-C) removes the temporary file, so the target is either
the complete new file or untouched.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import SserdError

TEMP_MARK = ".sserd-partial"


def check_output(target: str | Path, overwrite: bool = False, sources: tuple[Path, ...] = ()) -> Path:
    """Validate that ``target`` may be written: not one of ``sources``, not existing unless ``overwrite``,
    in an existing writable folder."""
    target = Path(target)
    for source in sources:
        if _same_file(source, target):
            raise SserdError(f"{target}: the output would overwrite the source; choose another output name")
    if target.is_dir():
        raise SserdError(f"{target}: is a folder; give a file name (or several sources for a folder output)")
    if target.exists() and not overwrite:
        raise SserdError(f"{target}: already exists; pass --overwrite to replace it")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise SserdError(f"{folder}: output folder does not exist; create it first")
    if not can_write_in(folder):
        raise SserdError(f"{folder}: output folder is not writable")
    return target


def can_write_in(folder: Path) -> bool:
    """Whether a file can be created in ``folder``, found by creating (and removing) one: permission bits
    do not tell for root, nor for read-only mounts (os.access says yes to root on /sys)."""
    try:
        handle, name = tempfile.mkstemp(prefix=".sserd-write-check-", dir=folder)
    except OSError:
        return False
    os.close(handle)
    os.unlink(name)
    return True


def check_output_folder(target: str | Path) -> Path:
    """Validate that the folder ``target`` (a run, bundle or dataset folder) can be created or written:
    it, or else the nearest folder above it that exists, must be a writable folder (the line is the one
    :func:`check_output` gives for files)."""
    target = Path(target)
    place = target
    while not place.exists() and place != place.parent:
        place = place.parent
    if place.exists() and not place.is_dir():
        raise SserdError(f"cannot create {target}: {place} is a file, not a folder; choose another output")
    if not can_write_in(place):
        raise SserdError(f"{place}: output folder is not writable")
    return target


def temp_path_for(target: Path) -> Path:
    """A hidden sibling of ``target`` with the same suffix (so the container format is the same)."""
    return target.with_name(f".{target.stem}.{secrets.token_hex(4)}{TEMP_MARK}{target.suffix}")


@contextmanager
def atomic_output(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it onto ``target``, else delete it."""
    target = Path(target)
    temp = temp_path_for(target)
    try:
        open(temp, "xb").close()  # claim the name now: an unwritable folder fails here, before any work
    except OSError as exc:
        folder = target.parent if str(target.parent) else Path(".")
        raise SserdError(f"{folder}: output folder is not writable ({exc.strerror or exc})") from None
    try:
        yield temp
        if not temp.exists():
            raise SserdError(f"{target}: nothing was written")
        os.replace(temp, target)
    except BaseException:
        try:
            temp.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            pass  # best effort: never hide the original error
        raise


def _same_file(a: Path, b: Path) -> bool:
    try:
        if b.exists():
            return os.path.samefile(a, b)
    except OSError:
        return False
    return Path(os.path.abspath(a)) == Path(os.path.abspath(b))
