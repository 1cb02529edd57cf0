"""`sserd synth images|videos`: the shared index format, labels, determinism, and clear errors."""

import json

import cv2
import pytest

from sserd_cli.cli import run
from sserd_cli.data.index import read_index, read_meta
from sserd_cli.data.synth.dataset import ImageSetConfig, VideoSetConfig, make_image_dataset, make_video_dataset
from sserd_cli.data.synth.params import FaceState
from sserd_cli.emotions import EMOTIONS


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_image_dataset_rows_labels_and_determinism(tmp_path):
    cfg = ImageSetConfig(count=14, size=64, speakers=10, seed=3)
    make_image_dataset(tmp_path / "a", cfg, workers=1, chunk=5)
    make_image_dataset(tmp_path / "b", cfg, workers=2, chunk=5)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")  # same seed, same bytes, whatever the workers
    rows = read_index(tmp_path / "a")
    meta = read_meta(tmp_path / "a")
    assert len(rows) == 14 and meta["crop_size"] == 64
    # the framing of 'sserd prepare': aligned at 1.25 x the crop size (the paper's 320 -> 256), centre kept
    assert meta["framing"] == {"template": "ffhq5", "align_size": 80, "crop_size": 64, "crop_offset": 8, "zoom": 1.25}
    assert {r.emotion for r in rows} == set(EMOTIONS)
    assert {r.kind for r in rows} == {"synthetic"}
    assert all(0.3 <= r.intensity <= 1 for r in rows)
    for r in rows:
        img = cv2.imread(str(tmp_path / "a" / r.path))
        assert img.shape == (64, 64, 3)
    labels = [json.loads(line) for line in (tmp_path / "a" / "labels.jsonl").read_text().splitlines()]
    assert [l["path"] for l in labels] == [r.path for r in rows]
    state = FaceState.from_dict(labels[1]["state"])
    assert labels[1]["emotion"] == rows[1].emotion
    assert state.expression != FaceState.from_dict(labels[0]["state"]).expression
    # speakers of the test split never appear in train
    train = {r.speaker for r in rows if r.split == "train"}
    test = {r.speaker for r in rows if r.split == "test"}
    assert not train & test


def test_video_dataset_writes_clips_truth_and_crops(tmp_path):
    cfg = VideoSetConfig(speakers=1, clips_per_emotion=1, duration=0.2, fps=20, width=128, height=96, crop_size=48,
                         stride=2, seed=1)
    make_video_dataset(tmp_path / "v", cfg, workers=2)
    make_video_dataset(tmp_path / "v1", cfg, workers=1)
    assert _files(tmp_path / "v") == _files(tmp_path / "v1")  # videos, truth and crops: same bytes
    rows = read_index(tmp_path / "v")
    assert len(rows) == 7 * 2  # 4 frames per clip, every 2nd kept
    assert {r.emotion for r in rows} == set(EMOTIONS)
    assert sorted({r.frame for r in rows}) == [0, 2]
    clips = sorted((tmp_path / "v" / "videos").glob("*.mp4"))
    assert len(clips) == 7
    assert all(c.with_name(c.stem + ".truth.npz").is_file() for c in clips)
    crop = cv2.imread(str(tmp_path / "v" / rows[0].path))
    assert crop.shape == (48, 48, 3)
    assert not list(tmp_path.glob(".*partial*"))


@pytest.mark.parametrize("args, words", [
    (["images", "--count", "0"], "--count"),
    (["images", "--size", "8"], "impossible"),
    (["images", "--size", "100000"], "impossible"),
    (["images", "--size", "64", "--resize", "32"], "--resize"),
    (["videos", "--speakers", "0"], "at least 1"),
    (["videos", "--frame-size", "640by360"], "WIDTHxHEIGHT"),
    (["videos", "--frame-size", "641x360"], "even"),
])
def test_bad_input_is_one_clear_line(tmp_path, capsys, args, words):
    code = run(["synth", *args, "-o", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err
    assert code == 2
    assert words in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_unwritable_or_existing_output_is_refused(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert run(["synth", "images", "-o", str(blocker / "sub"), "--count", "1", "--size", "32", "-q"]) == 2
    assert "cannot create" in capsys.readouterr().err
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    assert run(["synth", "images", "-o", str(full), "--count", "1", "--size", "32", "-q"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (full / "keep.txt").read_text() == "mine"
