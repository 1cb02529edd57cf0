"""Schedule clips over worker processes, resume finished ones, merge the index, report broken videos."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ... import interrupts
from ..index import IndexRow, write_index
from .clips import ClipSource, assign_splits
from .crops import ClipReport, CropConfig, config_dict, prepare_clip


@dataclass
class PrepareSummary:
    """Totals of one ``sserd prepare`` run."""

    done: int = 0
    skipped: int = 0
    broken: list[tuple[str, str, str]] = field(default_factory=list)  # (clip, path, why)
    no_face: list[str] = field(default_factory=list)
    crops: int = 0
    rows: int = 0
    splits: Counter = field(default_factory=Counter)


def run_prepare(clips: list[ClipSource], out_root: Path, config: CropConfig, *, workers: int = 1,
                test_fraction: float = 0.1, seed: int = 0, source: str = "", meta_extra: dict | None = None,
                on_clip: Callable[[ClipReport], None] | None = None) -> PrepareSummary:
    """Prepare every clip (in ``workers`` processes), then write ``index.csv`` + ``dataset.json``.

    The index holds the rows of every finished clip of this selection; a clip
    whose crops and part file exist is not redone, so an interrupted run picks
    up where it stopped. The train/test split is drawn at the end among the
    clips that gave crops (a broken video takes no test slot); the part files
    hold no split, so a resumed run may change --seed/--test-fraction freely.
    """
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    reports: dict[str, ClipReport] = {}

    def record(report: ClipReport) -> None:
        reports[report.clip] = report
        if on_clip is not None:
            on_clip(report)

    if workers <= 1:
        for clip in clips:
            record(prepare_clip(clip, out_root, config))
    else:
        # spawn, not fork: the parent may hold torch/rich threads that fork would copy mid-state
        context = multiprocessing.get_context("spawn")
        # workers end on SIGTERM/SIGHUP as on Ctrl-C, through their own clean-up (see sserd_cli.interrupts)
        with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=interrupts.install) as pool:
            pending = {pool.submit(prepare_clip, clip, out_root, config) for clip in clips}
            try:
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        record(future.result())
            except BaseException:
                # interrupted (or a worker failed): the clips not started must not run on while the
                # pool shuts down; the ones running finish their files, and a resumed run skips them
                pool.shutdown(wait=True, cancel_futures=True)
                raise

    summary = PrepareSummary()
    rows: list[IndexRow] = []
    clip_meta = {}
    usable = [clip for clip in clips if reports[clip.clip].status != "broken" and reports[clip.clip].rows]
    split_of = {clip.clip: clip.split for clip in assign_splits(usable, test_fraction, seed)}
    for clip in clips:
        report = reports[clip.clip]
        if report.status == "broken":
            summary.broken.append((clip.clip, str(clip.path), report.message))
            continue
        summary.done += report.status == "done"
        summary.skipped += report.status == "skipped"
        if not report.rows:
            summary.no_face.append(clip.clip)
        for raw in report.rows:
            rows.append(IndexRow(**{**raw, "split": split_of[clip.clip]}))
        summary.crops += len(report.rows)
        clip_meta[clip.clip] = {"speaker": clip.speaker, "emotion": clip.emotion, "split": split_of.get(clip.clip),
                                "fps": report.fps, "frames": report.frames, "audio": report.audio,
                                "source": str(clip.path)}
    rows.sort(key=lambda r: (r.speaker, r.clip, r.frame))
    summary.rows = len(rows)
    summary.splits = Counter(r.split for r in rows)
    meta = {"kind": "real", "source": source, "crop": config_dict(config), "framing": config.framing(),
            "clips": clip_meta, "broken": [{"clip": c, "path": p, "why": w} for c, p, w in summary.broken],
            **(meta_extra or {})}
    write_index(out_root, rows, meta)
    return summary
