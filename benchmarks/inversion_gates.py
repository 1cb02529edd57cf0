"""The inversion gates of a bundle (not a test: run it and read the numbers).

On fresh renders of held-out identities (speaker seeds no ``sserd synth`` run and no ``sserd eval synthetic``
benchmark uses), every emotion at intensity >= 0.5, with random speech, pose and light, each face rendered as
a frame of its own. Every crop handed to the oracle is aligned in the oracle's own framing (unzoomed), as the
benchmark does: the bundle reconstructs its own crop (its resolution and zoom), the result is pasted back into
the frame through the feathered face mask of ``sserd edit``, and the frame is then re-aligned for the oracle.

- G0, the resolution: the oracle's emotion accuracy on the originals, and on the originals brought down to the
  bundle's crop and pasted back unchanged (below 0.95 the bundle's resolution or framing loses the expression
  before any network does).
- G1, the inversion G(E(x)): emotion accuracy (and its ratio to the originals'), mouth-opening MAE against the
  rendered mouth opening, identity cosine against the original (the benchmark's centred cosine of the oracle's
  identity reading), PSNR and SSIM of the bundle-resolution crop against the original crop.

Targets (issue 14): G0 >= 0.95; G1 accuracy >= 0.90 x the originals', mouth MAE <= 0.07, identity cosine
>= 0.93, PSNR >= 28 dB.

- G2, the directions (``--directions``, a ``sserd build-pairs`` bundle): the plain direction edit
  w_s + beta * d_e used as an editor on held-out neutral talking clips, scored exactly as ``sserd eval
  synthetic`` scores it, but on speakers of another benchmark seed (``--g2-seed``, default 1; the benchmark
  uses 0), so tuning the directions on this gate does not tune them to the benchmark's clips. Targets
  (issue 15): emotion accuracy >= 0.85 for each of the six emotions on its own, mouth-opening MAE <= 0.08,
  identity cosine >= 0.90. ``--beta-scale`` multiplies every beta of the bundle (probes stronger or weaker
  steps without rebuilding the pairs).

    python benchmarks/inversion_gates.py --model sserd-synthetic
    python benchmarks/inversion_gates.py --model runs/ae/bundle --model runs/ae2/bundle --json gates.json
    python benchmarks/inversion_gates.py --model runs/ae/bundle --sheet docs/figures/inversion.png
    python benchmarks/inversion_gates.py --run runs/ae          # a run's latest checkpoint, while it trains
    python benchmarks/inversion_gates.py --directions runs/pairs/bundle --beta-scale 1 --beta-scale 1.5
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from sserd_cli.bundles import load_bundle
from sserd_cli.data.synth.dataset import CROP_MARGIN, crop_frame_size
from sserd_cli.data.synth.params import FaceState, Light, Pose, Speech, emotion_expression
from sserd_cli.data.synth.render import render_portrait
from sserd_cli.data.synth.video import make_background, speaker_identity
from sserd_cli.emotions import EMOTIONS
from sserd_cli.faces.align import estimate_alignment, warp_to_crop
from sserd_cli.faces.mask import face_mask
from sserd_cli.faces.paste import paste_back
from sserd_cli.metrics.benchmark import HELDOUT_SEED_BASE
from sserd_cli.metrics.oracle import Oracle
from sserd_cli.metrics.synthetic import centred_cosine, psnr_ssim
from sserd_cli.pipeline.models import ReconstructionModel

# the benchmark's held-out speakers are HELDOUT_SEED_BASE + 1000 * seed + k for small seeds; these lie beyond
GATE_SEED_BASE = HELDOUT_SEED_BASE + 500_000
ORACLE_CROP = 256  # the benchmark's crop side for the oracle (the oracle resizes it to its own input)


def render_faces(per_emotion: int, render_size: int, seed: int):
    """Frames, their 5-point landmarks and labels of ``per_emotion`` held-out faces for each emotion."""
    frames, landmarks, emotion, mouth = [], [], [], []
    for k in range(per_emotion * len(EMOTIONS)):
        rng = np.random.default_rng([seed, k, 14])
        name = EMOTIONS[k % len(EMOTIONS)]
        identity = speaker_identity(GATE_SEED_BASE + 1000 * seed + k)
        intensity = 1.0 if name == "neutral" else float(rng.uniform(0.5, 1.0))
        opening = 0.0 if rng.random() < 0.25 else float(rng.uniform(0, 1))
        speech = Speech(mouth_open=opening, lip_round=float(rng.uniform(0, 1)) if rng.random() < 0.6 else 0.0)
        pose = Pose(yaw=float(rng.uniform(-10, 10)), pitch=float(rng.uniform(-8, 8)), roll=float(rng.uniform(-6, 6)),
                    gaze_x=float(rng.uniform(-0.5, 0.5)), gaze_y=float(rng.uniform(-0.4, 0.4)))
        state = FaceState(identity, emotion_expression(name, intensity), speech, pose, Light.random(rng))
        side = crop_frame_size(render_size)
        r = render_portrait(state, render_size, background=make_background(side, side, rng), margin=CROP_MARGIN)
        frames.append(r.image)
        landmarks.append(r.align_landmarks)
        emotion.append(EMOTIONS.index(name))
        mouth.append(opening)
    return frames, landmarks, np.array(emotion), np.array(mouth)


def oracle_crops(frames, landmarks) -> np.ndarray:
    return np.stack([warp_to_crop(f, estimate_alignment(lm, ORACLE_CROP), ORACLE_CROP) for f, lm in zip(frames, landmarks)])


def through_bundle(frames, landmarks, resolution: int, zoom: float, model=None):
    """(bundle-framing crops, their reconstructions or None, frames with the result pasted back)."""
    ms = [estimate_alignment(lm, resolution, zoom=zoom) for lm in landmarks]
    crops = np.stack([warp_to_crop(f, m, resolution) for f, m in zip(frames, ms)])
    out = crops if model is None else np.concatenate([model.edit(crops[i:i + 32]) for i in range(0, len(crops), 32)])
    mask = face_mask(resolution, zoom)
    pasted = [paste_back(f, c, m, mask) for f, c, m in zip(frames, out, ms)]
    return crops, (None if model is None else out), pasted


def accuracy_by_emotion(pred: np.ndarray, truth: np.ndarray) -> dict:
    return {name: float((pred[truth == i] == i).mean()) for i, name in enumerate(EMOTIONS)}


def gates(bundle_path: str, oracle: Oracle, faces, device: str) -> dict:
    frames, landmarks, emotion, mouth = faces
    bundle = load_bundle(bundle_path)
    resolution = int(bundle.resolution)
    zoom = float(bundle.card.get("framing", {}).get("zoom", 1.0))
    original = oracle.read(oracle_crops(frames, landmarks))
    _, _, down = through_bundle(frames, landmarks, resolution, zoom)
    downsampled = oracle.read(oracle_crops(down, landmarks))
    model = ReconstructionModel(bundle, device=device)
    model.set_target(None)
    start = time.perf_counter()
    crops, recon, pasted = through_bundle(frames, landmarks, resolution, zoom, model)
    seconds = time.perf_counter() - start
    inverted = oracle.read(oracle_crops(pasted, landmarks))
    psnr, ssim = psnr_ssim(recon, crops)
    acc_orig = float((original.emotion == emotion).mean())
    acc_inv = float((inverted.emotion == emotion).mean())
    return {
        "bundle": str(bundle_path), "resolution": resolution, "zoom": zoom, "faces": int(len(frames)),
        "G0": {"original_accuracy": acc_orig, "downsampled_accuracy": float((downsampled.emotion == emotion).mean()),
               "original_mouth_mae": float(np.abs(original.speech[:, 0] - mouth).mean())},
        "G1": {"accuracy": acc_inv, "accuracy_ratio": acc_inv / max(acc_orig, 1e-9),
               "mouth_mae": float(np.abs(inverted.speech[:, 0] - mouth).mean()),
               "identity_cosine": centred_cosine(inverted.identity, original.identity),
               "psnr": psnr, "ssim": ssim, "per_emotion": accuracy_by_emotion(inverted.emotion, emotion)},
        "original_per_emotion": accuracy_by_emotion(original.emotion, emotion),
        "ms_per_face": 1000 * seconds / len(frames),
        "_images": (crops, recon),
    }


def verdict(r: dict) -> list[tuple[str, str, str, bool]]:
    g0, g1 = r["G0"], r["G1"]
    return [
        ("G0 downsampled accuracy", f"{g0['downsampled_accuracy']:.3f}", ">= 0.95", g0["downsampled_accuracy"] >= 0.95),
        ("G1 accuracy / originals'", f"{g1['accuracy_ratio']:.3f}", ">= 0.90", g1["accuracy_ratio"] >= 0.90),
        ("G1 mouth-opening MAE", f"{g1['mouth_mae']:.3f}", "<= 0.07", g1["mouth_mae"] <= 0.07),
        ("G1 identity cosine", f"{g1['identity_cosine']:.3f}", ">= 0.93", g1["identity_cosine"] >= 0.93),
        ("G1 PSNR (dB)", f"{g1['psnr']:.2f}", ">= 28", g1["psnr"] >= 28.0),
    ]


def write_sheet(path: Path, results: list[dict], labels: np.ndarray, per_row: int = 2) -> None:
    """Originals and each bundle's inversions: per emotion ``per_row`` faces, one row of crops per bundle."""
    import cv2

    picks = [i for e in range(len(EMOTIONS)) for i in np.flatnonzero(labels == e)[:per_row]]
    rows = [np.concatenate([results[0]["_images"][0][i] for i in picks], axis=1)]
    rows += [np.concatenate([r["_images"][1][i] for i in picks], axis=1) for r in results]
    sheet = np.concatenate(rows, axis=0)
    sheet = cv2.resize(sheet, None, fx=3, fy=3, interpolation=cv2.INTER_NEAREST)
    band = np.full((22, sheet.shape[1], 3), 255, np.uint8)
    step = sheet.shape[1] // len(EMOTIONS)
    for e, name in enumerate(EMOTIONS):
        cv2.putText(band, name, (e * step + 6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.concatenate([band, sheet], axis=0)[:, :, ::-1])


G2_TARGETS = {"accuracy": 0.85, "mouth": 0.08, "identity": 0.90}


def direction_gate(bundle_path: str, oracle: Oracle, scale: float, speakers: int, duration: float, seed: int,
                   set_dir: Path, device: str, sheet: Path | None = None) -> dict:
    """G2: the benchmark's direction-edit row for every non-neutral target, on the gate's own held-out clips."""
    from sserd_cli.metrics.benchmark import DIRECTION, BenchmarkConfig, Method, contact_sheet, run_benchmark
    from sserd_cli.metrics.synthetic import SyntheticEvaluator, mean_scores
    from sserd_cli.pipeline.models import DirectionModel

    bundle = load_bundle(bundle_path)
    bundle.require("directions")
    model = DirectionModel(bundle, device=device)
    model.betas = {e: b * scale for e, b in model.betas.items()}
    config = BenchmarkConfig(speakers=speakers, duration=duration, seed=seed, emotions=tuple(EMOTIONS[1:]))
    result = run_benchmark([Method(DIRECTION, model, by_emotion=True)], SyntheticEvaluator(oracle), set_dir, config)
    if sheet is not None:
        import cv2

        sheet.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(sheet), contact_sheet(result, [DIRECTION])[:, :, ::-1])
    row = result.summary()["intra"][DIRECTION]  # the direction edit ignores the reference: intra = cross
    per = row.pop("accuracy_by_emotion")
    cases = result.scores["intra"]
    mouth = {e: mean_scores([c for c in cases if c.emotion == e])["mouth_open_mae"] for e in per}
    return {"bundle": str(bundle_path), "beta_scale": scale, "betas": model.betas, "speakers": speakers,
            "duration": duration, "seed": seed, "summary": row, "per_emotion": per, "mouth_per_emotion": mouth}


def direction_verdict(r: dict) -> list[tuple[str, str, str, bool]]:
    s, t = r["summary"], G2_TARGETS
    worst = min(r["per_emotion"], key=r["per_emotion"].get)
    return [
        ("G2 accuracy, worst emotion", f"{r['per_emotion'][worst]:.3f} ({worst})", f">= {t['accuracy']}",
         r["per_emotion"][worst] >= t["accuracy"]),
        ("G2 mouth-opening MAE", f"{s['mouth_open_mae']:.3f}", f"<= {t['mouth']}", s["mouth_open_mae"] <= t["mouth"]),
        ("G2 identity cosine", f"{s['identity_cosine']:.3f}", f">= {t['identity']}",
         s["identity_cosine"] >= t["identity"]),
    ]


def snapshot(run_dir: Path) -> str:
    """Export the latest checkpoint of a ``train-autoencoder`` run (running or not) as a bundle beside it,
    so a run can be gated while it trains; returns the bundle's path."""
    from sserd_cli.training import distributed
    from sserd_cli.training.autoencoder import AutoencoderCoach
    from sserd_cli.training.config import AutoencoderConfig, from_dict
    from sserd_cli.training.run import RunDir, read_checkpoint

    run, saved = RunDir.open(run_dir, "autoencoder", distributed.DistContext())
    latest = run.latest_checkpoint()
    if latest is None:
        raise SystemExit(f"{run_dir} has no checkpoint yet")
    config = from_dict(AutoencoderConfig, {**saved["config"], "device": "cpu", "workers": 0})
    coach = AutoencoderCoach(config, distributed.setup("cpu"))
    coach.load_state(*read_checkpoint(latest))
    out = Path(run_dir) / f"snapshot_{latest.stem}"
    if not out.exists():
        coach.export(out)
    return str(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=[], help="bundle (folder or shipped name); repeatable")
    parser.add_argument("--run", action="append", default=[], type=Path,
                        help="a train-autoencoder run folder: its latest checkpoint is exported and gated; repeatable")
    parser.add_argument("--per-emotion", type=int, default=24, help="held-out faces per emotion (default 24)")
    parser.add_argument("--render-size", type=int, default=128, help="face crop side in the rendered frame (default "
                        "128, the oracle's own render size)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--directions", action="append", default=[], help="G2: a build-pairs bundle; repeatable")
    parser.add_argument("--beta-scale", action="append", type=float, default=[],
                        help="G2: multiply the bundle's betas (repeatable; default 1)")
    parser.add_argument("--g2-speakers", type=int, default=6, help="G2: held-out clips (default 6)")
    parser.add_argument("--g2-duration", type=float, default=1.0, help="G2: seconds per clip (default 1)")
    parser.add_argument("--g2-seed", type=int, default=1, help="G2: the clips' seed (default 1; the benchmark uses 0)")
    parser.add_argument("--g2-set", type=Path, default=Path("g2-set"),
                        help="G2: folder for the held-out clips (kept and reused; default ./g2-set)")
    parser.add_argument("--g2-sheet", type=Path, help="G2: PNG of the first clip's direction edits (last bundle)")
    parser.add_argument("--json", type=Path, help="write every number here")
    parser.add_argument("--sheet", type=Path, help="PNG: originals, then each bundle's inversions, per emotion")
    args = parser.parse_args(argv)
    args.model += [snapshot(r) for r in args.run]
    if not args.model and not args.directions:
        parser.error("give --model BUNDLE, --run RUN_DIR or --directions BUNDLE")
    oracle = Oracle.load()
    g2 = []
    if args.directions:
        for spec in args.directions:
            for scale in args.beta_scale or [1.0]:
                r = direction_gate(spec, oracle, scale, args.g2_speakers, args.g2_duration, args.g2_seed, args.g2_set,
                                   args.device, args.g2_sheet)
                g2.append(r)
                s = r["summary"]
                print(f"\n{spec}  beta x {scale:g}  ({args.g2_speakers} clips x 6 targets, seed {args.g2_seed})")
                for name, value, target, ok in direction_verdict(r):
                    print(f"  {name:28s} {value:>18s}   target {target:8s} {'met' if ok else 'NOT MET'}")
                print("  G2 accuracy per emotion: " + ", ".join(f"{k} {v:.2f}" for k, v in r["per_emotion"].items()))
                print("  G2 mouth MAE per emotion: " + ", ".join(f"{k} {v:.3f}" for k, v in r["mouth_per_emotion"].items()))
                print(f"  G2 PSNR {s['psnr']:.2f} dB, SSIM {s['ssim']:.3f}, expression MAE {s['expression_mae']:.3f}, "
                      f"p(target) {s['target_probability']:.3f}")
        if args.json and not args.model:
            args.json.write_text(json.dumps({"G2": g2}, indent=2) + "\n")
        if not args.model:
            return 0
    faces = render_faces(args.per_emotion, args.render_size, args.seed)
    results = []
    for spec in args.model:
        r = gates(spec, oracle, faces, args.device)
        results.append(r)
        g0 = r["G0"]
        print(f"\n{spec}  ({r['faces']} held-out faces, {r['resolution']} px, zoom {r['zoom']:g}; "
              f"{r['ms_per_face']:.1f} ms a face)")
        print(f"  G0 oracle accuracy: originals {g0['original_accuracy']:.3f}, through the bundle's crop "
              f"{g0['downsampled_accuracy']:.3f}; originals' mouth MAE {g0['original_mouth_mae']:.3f}")
        for name, value, target, ok in verdict(r):
            print(f"  {name:28s} {value:>8s}   target {target:8s} {'met' if ok else 'NOT MET'}")
        print("  G1 accuracy per emotion: " + ", ".join(f"{k} {v:.2f}" for k, v in r["G1"]["per_emotion"].items()))
    print("\noriginals per emotion: " + ", ".join(f"{k} {v:.2f}" for k, v in results[0]["original_per_emotion"].items()))
    if args.sheet:
        write_sheet(args.sheet, results, faces[2])
        print(f"sheet: {args.sheet} (top row originals, then one row per bundle)")
    if args.json:
        clean = [{k: v for k, v in r.items() if not k.startswith("_")} for r in results]
        g2_rows = {"G2": g2} if g2 else {}  # both gates asked for: one file holds both
        args.json.write_text(json.dumps({"per_emotion": args.per_emotion, "render_size": args.render_size,
                                         "seed": args.seed, "results": clean, **g2_rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
