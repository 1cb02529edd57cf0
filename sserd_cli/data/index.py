"""The one dataset index format shared by ``sserd prepare`` and ``sserd synth``.

A dataset is a directory holding ``dataset.json`` (metadata: format version,
crop size, where it came from) and ``index.csv`` with one row per aligned crop.
Paths in the index are relative to the dataset directory so datasets can move.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable, Iterable

from ..emotions import EMOTIONS
from ..errors import SserdError

INDEX_FILE = "index.csv"
META_FILE = "dataset.json"
FORMAT_NAME = "sserd-dataset"
FORMAT_VERSION = 1
SPLITS = ("train", "test")
KINDS = ("real", "synthetic")


@dataclass(frozen=True)
class IndexRow:
    """One aligned face crop."""

    path: str  # image file, relative to the dataset directory
    speaker: str
    emotion: str  # one of EMOTIONS
    intensity: float  # 0..1 (MEAD levels 1-3 -> 1/3, 2/3, 1; RAVDESS normal/strong -> 0.5/1)
    clip: str  # clip identifier, unique within the dataset
    frame: int  # frame number inside the clip
    split: str  # train | test
    kind: str = "real"  # real | synthetic (the indicator of eq. 14)


COLUMNS = tuple(f.name for f in fields(IndexRow))


def write_via_temp(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` into ``path.tmp``, then rename it onto ``path``. Whatever stops it on the way (an error,
    Ctrl-C, SIGTERM) removes the temporary file: the folder holds the old file or the new, never a part."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_index(root: Path, rows: Iterable[IndexRow], meta: dict) -> Path:
    """Write ``index.csv`` and ``dataset.json`` into ``root`` (atomically, file by file)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)

    def write_rows(tmp: Path) -> None:
        with tmp.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            for row in rows:
                writer.writerow(asdict(row))

    write_via_temp(root / INDEX_FILE, write_rows)
    full_meta = {"format": FORMAT_NAME, "version": FORMAT_VERSION, **meta}
    write_via_temp(root / META_FILE, lambda tmp: tmp.write_text(json.dumps(full_meta, indent=2, sort_keys=True) + "\n"))
    return root / INDEX_FILE


def read_meta(root: Path) -> dict:
    meta_path = Path(root) / META_FILE
    if not meta_path.is_file():
        raise SserdError(f"{root} is not an sserd dataset (no {META_FILE}): create one with 'sserd prepare' or 'sserd synth'")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise SserdError(f"{meta_path} is not valid JSON ({exc.msg}): re-run 'sserd prepare' or 'sserd synth'") from None
    if meta.get("format") != FORMAT_NAME:
        raise SserdError(f"{meta_path} is not an sserd dataset description")
    return meta


def read_index(root: Path) -> list[IndexRow]:
    """Read and validate every row of ``root/index.csv``."""
    root = Path(root)
    read_meta(root)
    index_path = root / INDEX_FILE
    if not index_path.is_file():
        raise SserdError(f"{root} has no {INDEX_FILE}: the dataset is incomplete, re-run the command that made it")
    rows = []
    with index_path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = set(COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise SserdError(f"{index_path} lacks columns {sorted(missing)}")
        for line, raw in enumerate(reader, start=2):
            try:
                row = IndexRow(
                    path=raw["path"], speaker=raw["speaker"], emotion=raw["emotion"],
                    intensity=float(raw["intensity"]), clip=raw["clip"], frame=int(raw["frame"]),
                    split=raw["split"], kind=raw["kind"],
                )
            except ValueError as exc:
                raise SserdError(f"{index_path}:{line}: bad value ({exc})") from None
            if row.emotion not in EMOTIONS or row.split not in SPLITS or row.kind not in KINDS:
                raise SserdError(f"{index_path}:{line}: emotion/split/kind must be one of {EMOTIONS}/{SPLITS}/{KINDS}")
            rows.append(row)
    return rows
