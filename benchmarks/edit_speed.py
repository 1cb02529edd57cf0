"""Speed and memory of `sserd edit` (not a test: run it and read the numbers); the identity model by default.

For a 640x360, a 1280x720 and a 1920x1080 clip: edit fps, and the ratio of the edit's time to a plain PyAV
decode + encode of the same clip with the same encoder settings (the floor any editor pays). Runs
alternate and the best of ``--repeats`` is kept, since other work on the machine slows either side at
random; the CPU-time ratio (user + system, all threads) is printed too, as it depends less on that load.
Run it with nothing else on the machine (no training in the background). Per clip: each pipeline thread's
busy time and its waits on the pipes between threads, and (from one more run, :class:`PartProfile`) the
time of each part: decode, colour conversions, detection, landmarks, tracking, alignment warp, E, CELCL, G,
mouth probes, transfer flow and warp, paste-back, encode. Then peak RSS of an edit of a 10 s and of a 60 s clip, each in a fresh subprocess (VmHWM): a
streaming pipeline's memory must not grow with the video's length.

    python benchmarks/edit_speed.py                  # a few minutes on 2 CPU cores
    python benchmarks/edit_speed.py --seconds 4 --skip-memory
    python benchmarks/edit_speed.py --model sserd-synthetic   # the shipped bundle (encoder + CELCL + G)
    python benchmarks/edit_speed.py --model sserd-synthetic --device cuda
    python benchmarks/edit_speed.py --model sserd-synthetic --smooth 0   # codes of each frame alone
    python benchmarks/edit_speed.py --model sserd-synthetic --precision bfloat16   # G in bfloat16
    python benchmarks/edit_speed.py --model sserd-synthetic --render generate   # the render pasted
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `sserd edit` sets it, before torch loads

import av
import cv2
import torch

ROOT = Path(__file__).resolve().parents[1]
SIZES = ((640, 360), (1280, 720), (1920, 1080))


def clip_maker():
    spec = importlib.util.spec_from_file_location("make_astronaut_clip", ROOT / "examples" / "make_astronaut_clip.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(fn) -> tuple[float, float]:
    """(wall, cpu) seconds of ``fn()``."""
    c0, t0 = cpu_seconds(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, cpu_seconds() - c0


def plain_transcode(src: Path, dst: Path, crf: int, preset: str) -> float:
    """Decode every frame and encode it again (libx264, same settings as the edit), copying audio packets."""
    t0 = time.perf_counter()
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"
        vout = out.add_stream("libx264", rate=vin.average_rate)
        vout.width, vout.height, vout.pix_fmt = vin.width, vin.height, "yuv420p"
        vout.time_base = vin.time_base
        vout.options = {"crf": str(crf), "preset": preset}
        vout.thread_type = "AUTO"
        ain = inp.streams.audio[0] if inp.streams.audio else None
        aout = out.add_stream_from_template(ain) if ain is not None else None
        streams = [vin] + ([ain] if ain is not None else [])
        for packet in inp.demux(*streams):
            if packet.stream is vin:
                for frame in packet.decode():
                    out.mux(vout.encode(frame))
            elif packet.size:
                packet.stream = aout
                out.mux(packet)
        out.mux(vout.encode(None))
    return time.perf_counter() - t0


def sserd_edit(src: Path, dst: Path, crf: int, preset: str, model_name: str = "identity",
               device: str = "cpu", smooth: int | None = None, render: str = "transfer",
               stages: dict | None = None, precision: str = "auto") -> tuple[float, int, int]:
    from sserd_cli.media.encode import EncodeSettings
    from sserd_cli.pipeline.edit import EditOptions, edit_path
    from sserd_cli.pipeline.models import Target, load_model
    from sserd_cli.pipeline.temporal import SmoothSettings

    model = load_model(model_name, device, precision=precision)
    model.set_target(Target(emotion="happy"))
    t0 = time.perf_counter()
    # force: the speed clip is a real face, which a synthetic-only bundle's domain check refuses; the check
    # still runs (and counts) on the first crops, and every frame then goes through the networks
    smoothing = SmoothSettings() if smooth is None else SmoothSettings(radius=smooth)
    report = edit_path(src, dst, model, EditOptions(encode=EncodeSettings(crf=crf, preset=preset), force=True,
                                                    smooth=smoothing, render=render), overwrite=True)
    if stages is not None:
        stages.update(report.stages)  # seconds each pipeline thread worked (see sserd_cli.pipeline.stages)
        stages.update({f"waits: {name}": seconds for name, seconds in report.waits.items()})
    return time.perf_counter() - t0, report.frames, report.edited


class PartProfile:
    """Seconds spent in each part of an edit, by wrapping the functions that do it for the duration of a
    ``with`` block (benchmark-only instrumentation: the product code carries no timers). A part's time is
    summed over the threads that call it; a call nested in another timed part is counted in both (only the
    mouth probes render through the generator that way, and the shipped card spares them)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._lock = threading.Lock()
        self._patches = []

    def _targets(self):
        from sserd_cli.faces.detect import DlibDetector
        from sserd_cli.faces.track import FaceTracker
        from sserd_cli.faces.transfer import MotionEstimator
        from sserd_cli.media.encode import VideoWriter
        from sserd_cli.media.frames import FrameConverter
        from sserd_cli.pipeline import edit, faces, models, temporal

        return [
            ("colour to RGB", FrameConverter, "to_rgb"),
            ("detection (HOG + its landmarks)", DlibDetector, "detect"),
            ("landmarks between detections", faces.LandmarkFollower, "follow"),
            ("tracking and smoothing", FaceTracker, "push"),
            ("alignment warp (crops)", temporal, "aligned_crops"),
            ("alignment warp (crops)", faces, "aligned_crops"),
            ("encoder E", models.LatentModel, "encode"),
            ("CELCL", models.SserdModel, "codes"),
            ("generator G", models.LatentModel, "render"),
            ("identity model", models.IdentityModel, "edit"),
            ("identity model", models.IdentityModel, "edit_pair"),
            ("mouth probes", temporal, "mouth_changes"),
            ("transfer: flow", MotionEstimator, "motion"),
            ("transfer: warp onto the frame", faces, "move_pixels"),
            ("paste-back (generate)", faces, "paste_back"),
            ("colour back (face rectangle)", edit, "_output_frame"),
            ("encode (libx264 + mux)", VideoWriter, "write"),
        ]

    def __enter__(self):
        from sserd_cli.pipeline import edit

        for label, owner, name in self._targets():
            if name in vars(owner):
                original = vars(owner)[name]
                self._patches.append((owner, name, original))
                setattr(owner, name, self._timed(label, original))
        decode = edit.decode_frames
        self._patches.append((edit, "decode_frames", decode))
        edit.decode_frames = self._timed_generator("decode", decode)
        return self

    def __exit__(self, *exc):
        for owner, name, original in reversed(self._patches):
            setattr(owner, name, original)
        self._patches.clear()

    def _add(self, label: str, seconds: float) -> None:
        with self._lock:
            self.seconds[label] = self.seconds.get(label, 0.0) + seconds

    def _timed(self, label, fn):
        def timed_call(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._add(label, time.perf_counter() - t0)
        return timed_call

    def _timed_generator(self, label, fn):
        def timed_frames(*args, **kwargs):
            frames = iter(fn(*args, **kwargs))
            while True:
                t0 = time.perf_counter()
                try:
                    frame = next(frames)
                except StopIteration:
                    self._add(label, time.perf_counter() - t0)
                    return
                self._add(label, time.perf_counter() - t0)
                yield frame
        return timed_frames


def peak_rss_mib() -> float:
    """This process's peak resident memory. VmHWM belongs to the current program image; ru_maxrss
    would also count the parent's peak, which Linux carries into a child across fork + exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_peak_rss(src: Path, dst: Path, model_name: str, device: str) -> dict:
    """Run one edit in a fresh interpreter and return its peak RSS (MiB) and frame count."""
    code = (
        "import json, sys; sys.path.insert(0, %r)\n"
        "from edit_speed import peak_rss_mib, sserd_edit\n"
        "from pathlib import Path\n"
        "t, n, e = sserd_edit(Path(%r), Path(%r), 18, 'medium', %r, %r)\n"
        "print(json.dumps({'seconds': t, 'frames': n, 'edited': e, 'peak_rss_mib': peak_rss_mib()}))"
    ) % (str(Path(__file__).parent), str(src), str(dst), model_name, device)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="length of the speed clips")
    parser.add_argument("--crf", type=int, default=18)
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs per clip; the fastest counts")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--model", default="identity", help="identity, a bundle path or a shipped bundle's name")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto: where the networks run")
    parser.add_argument("--smooth", type=int, default=None, help="sserd edit's --smooth (default: its default)")
    parser.add_argument("--render", default="transfer", help="sserd edit's --render: transfer (default) or generate")
    parser.add_argument("--precision", default="auto", help="sserd edit's --precision: auto, float32 or bfloat16")
    parser.add_argument("--sizes", type=int, default=3, help="how many of 640x360, 1280x720, 1920x1080 to run")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    make = clip_maker()
    from sserd_cli.runtime import cpu_runs_bfloat16

    report = {"model": args.model, "device": args.device, "smooth": args.smooth, "render": args.render,
              "precision": args.precision, "cpu_runs_bfloat16": cpu_runs_bfloat16(),
              "crf": args.crf, "preset": args.preset, "seconds": args.seconds, "cpus": os.cpu_count(),
              "torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
              "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "opencv_threads": cv2.getNumThreads(),
              "torch": torch.__version__, "speed": {}, "memory": {}}
    with tempfile.TemporaryDirectory(prefix="sserd-bench-") as tmp:
        tmp = Path(tmp)
        print(f"speed ({args.model} model on {args.device}, --precision {args.precision}, --smooth {args.smooth}, --render {args.render}, libx264 crf {args.crf} preset {args.preset}, {args.seconds:g} s clips)")
        for w, h in SIZES[:args.sizes]:
            src = make.write_clip(tmp / f"clip{w}.mp4", seconds=args.seconds, size=(w, h), fps=25)
            plain, edit, frames, edited, profiles = [], [], 0, 0, []
            for _ in range(args.repeats):
                plain.append(timed(lambda: plain_transcode(src, tmp / "plain.mp4", args.crf, args.preset)))
                result, stages = {}, {}
                edit.append(timed(lambda: result.update(zip(("t", "n", "e"), sserd_edit(src, tmp / "edit.mp4", args.crf, args.preset, args.model, args.device, args.smooth, args.render, stages, args.precision)))))
                frames, edited = result["n"], result["e"]
                profiles.append(stages)
            (pw, pc), (ew, ec) = min(plain), min(edit)
            best = profiles[edit.index(min(edit))]
            # one more run with every part timed (the wrappers cost a little: not the run that is timed above)
            with PartProfile() as parts:
                sserd_edit(src, tmp / "edit.mp4", args.crf, args.preset, args.model, args.device, args.smooth, args.render,
                           precision=args.precision)
            ms = {k: 1000 * v / max(frames, 1) for k, v in parts.seconds.items()}
            print(f"  {w}x{h}: edit {frames / ew:6.1f} fps ({edited}/{frames} frames edited), "
                  f"plain decode+encode {frames / pw:6.1f} fps, ratio {ew / pw:4.2f} (CPU time ratio {ec / pc:4.2f})")
            print("    busy ms a frame per pipeline thread: "
                  + ", ".join(f"{name} {1000 * s / max(frames, 1):.1f}" for name, s in best.items()))
            print("    ms a frame per part (summed over threads): "
                  + ", ".join(f"{name} {v:.2f}" for name, v in sorted(ms.items(), key=lambda kv: -kv[1])))
            report["speed"][f"{w}x{h}"] = {"edit_fps": frames / ew, "plain_fps": frames / pw, "ratio": ew / pw,
                                           "cpu_ratio": ec / pc, "frames": frames, "edited": edited,
                                           "stage_ms_per_frame": {k: 1000 * v / max(frames, 1) for k, v in best.items()},
                                           "part_ms_per_frame": ms}
        if args.skip_memory:
            if args.json:
                args.json.write_text(json.dumps(report, indent=1) + "\n")
            return
        print("peak RSS (640x360, each edit in a fresh process)")
        rows = {}
        for seconds in (10, 60):
            src = make.write_clip(tmp / f"long{seconds}.mp4", seconds=seconds, size=(640, 360), fps=25)
            rows[seconds] = child_peak_rss(src, tmp / f"long{seconds}-out.mp4", args.model, args.device)
            r = rows[seconds]
            print(f"  {seconds:2d} s clip: {r['frames']} frames in {r['seconds']:.1f} s, peak RSS {r['peak_rss_mib']:.0f} MiB")
        growth = rows[60]["peak_rss_mib"] / rows[10]["peak_rss_mib"] - 1
        print(f"  60 s vs 10 s: {100 * growth:+.1f} %")
        report["memory"] = {f"{s}s": r for s, r in rows.items()}
        if args.json:
            args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
