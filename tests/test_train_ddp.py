"""Data-parallel training: two CPU processes under torchrun (gloo) write one run and stay in sync."""

import json
import os
import subprocess
import sys

import pytest
from safetensors.torch import load_file

from test_train_fixtures import TINY_GAN, make_dataset

LAUNCHER = "import sys\nfrom sserd_cli.cli import run\nsys.exit(run(sys.argv[1:]))\n"


def torchrun(tmp_path, args, nproc=2, timeout=240):
    launcher = tmp_path / "launch_sserd.py"
    launcher.write_text(LAUNCHER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", str(launcher), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def test_two_ranks_train_stylegan_once_and_in_sync(tmp_path):
    data = make_dataset(tmp_path / "data")
    out = tmp_path / "run"
    proc = torchrun(tmp_path, ["train-stylegan", str(data), "-o", str(out), "--iterations", "2",
                               "--checkpoint-every", "1", "--sample-every", "2", *TINY_GAN])
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert len(summary["rank_checksums"]) == 2 and len(set(summary["rank_checksums"])) == 1
    log = (out / "train.log").read_text()
    assert log.count(" start stylegan") == 1 and log.count(" done:") == 1  # rank 0 alone writes
    assert "batch 2 x 2 ranks" in log
    checkpoints = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert checkpoints == ["iter_00000001.safetensors", "iter_00000002.safetensors"]  # no temp files left
    tensors = load_file(str(out / "checkpoints" / checkpoints[-1]))
    assert "rng/0/torch_cpu" in tensors and "rng/1/torch_cpu" in tensors  # each rank's random streams
    assert not (tensors["rng/0/torch_cpu"] == tensors["rng/1/torch_cpu"]).all()  # ranks draw different latents
    assert (out / "bundle" / "model.json").is_file()
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["iter_00000002.png"]


@pytest.mark.slow
def test_two_ranks_resume_continues(tmp_path):
    data = make_dataset(tmp_path / "data")
    out = tmp_path / "run"
    args = ["train-stylegan", str(data), "-o", str(out), "--checkpoint-every", "1", *TINY_GAN]
    assert torchrun(tmp_path, [*args, "--iterations", "1"]).returncode == 0
    proc = torchrun(tmp_path, [*args, "--iterations", "2", "--resume"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["iterations"] == 2 and len(set(summary["rank_checksums"])) == 1


@pytest.mark.slow
def test_two_ranks_encoder_and_sserd_stages_stay_in_sync(tmp_path):
    """BatchNorm statistics (encoder) and the code cache (contrastive loss) must not drift apart across ranks."""
    from sserd_cli.cli import run

    data = make_dataset(tmp_path / "data", test_clips=1)
    cpu = ["--device", "cpu", "--workers", "0", "--quiet"]
    assert run(["train-stylegan", str(data), "-o", str(tmp_path / "gan"), "--iterations", "1", *TINY_GAN]) == 0
    proc = torchrun(tmp_path, ["train-encoder", str(data), "--model", str(tmp_path / "gan" / "bundle"), "-o",
                               str(tmp_path / "enc"), "--backbone", "small", "--iterations", "2", *cpu])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert run(["build-pairs", str(data), "--model", str(tmp_path / "enc" / "bundle"), "-o", str(tmp_path / "pairs"),
                "--max-sources", "2", *cpu]) == 0
    proc = torchrun(tmp_path, ["train", str(data), str(tmp_path / "pairs"), "-o", str(tmp_path / "sserd"),
                               "--iterations", "2", *cpu])
    assert proc.returncode == 0, proc.stderr[-3000:]
    for stage in ("enc", "sserd"):
        summary = json.loads((tmp_path / stage / "summary.json").read_text())
        assert summary["world_size"] == 2 and len(set(summary["rank_checksums"])) == 1, stage
