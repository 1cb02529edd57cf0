"""Pack a trained run of examples/train_default.sh into the shipped bundle ``models/sserd-synthetic``.

The run's final SSERD bundle is re-saved in float16 under the default name, with a card that says what it
was trained on (the synthetic world only), how (the recipe of every stage, steps and step times, the
machine) and how well it does (the summary of ``sserd eval synthetic --model ... --json-out``).

    python examples/pack_default.py runs/default --benchmark runs/default/benchmark.json

``--stages-from CARD [CARD ...]`` fills in the steps and times of stages whose run folders are gone (the
model.json of earlier bundles that recorded them, the first card naming a stage wins); the card says which
stages came from there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

from sserd_cli.bundles import load_bundle, save_bundle
from sserd_cli.pipeline.models import DEFAULT_MODEL
from sserd_cli.training.domain_stats import held_out_statistics

ROOT = Path(__file__).resolve().parent.parent
STAGES = {"gan": "stylegan", "enc": "encoder", "inversion/features": "features", "inversion/ae": "autoencoder",
          "sserd": "sserd"}


def stage_times(run: Path, stages: dict = STAGES, earlier: dict | None = None) -> dict:
    """Steps, seconds per step and hours of each training stage (run folder -> stage name), from its summary.json;
    a stage whose folder is gone is taken from ``earlier`` (the stages of an earlier card), marked so."""
    out = {}
    for folder, stage in stages.items():
        if not (run / folder / "summary.json").is_file():
            if earlier and stage in earlier:
                out[stage] = {**earlier[stage], "from": "an earlier card (run folder gone)"}
                continue
            raise SystemExit(f"error: {run / folder} has no summary.json: train that stage, or give --stages-from")
        summary = json.loads((run / folder / "summary.json").read_text())
        steps, sec = int(summary["iterations"]), float(summary["sec_per_step"])
        out[stage] = {"iterations": steps, "sec_per_step": round(sec, 4), "hours": round(steps * sec / 3600, 2),
                      "device": summary.get("device"), "world_size": summary.get("world_size")}
    return out


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()}"


def domain_statistics(bundle, data: Path) -> dict:
    """G(E(x))'s error on the held-out faces of ``data`` (see sserd_cli.training.domain_stats), which
    ``sserd edit``'s domain check compares each clip with; measured with the bundle's own G and E."""
    card = bundle.card
    stats = held_out_statistics(bundle.generator().eval(), bundle.encoder().eval(), str(data), int(card["resolution"]),
                                int(card["resolution"]), float(card.get("framing", {}).get("zoom", 1.0)), "cpu")
    stats["source"] = f"examples/pack_default.py on the {stats['split']} split of the training data ({data.name})"
    return stats


def pack(run: Path, benchmark: Path | None, out: Path, stages_from: tuple = ()) -> Path:
    bundle = load_bundle(run / "sserd" / "bundle")
    card = json.loads(json.dumps(bundle.card))
    for key in ("format", "version", "parts", "dtype", "created", "sserd_version"):
        card.pop(key, None)  # written afresh by save_bundle
    card["name"] = DEFAULT_MODEL
    card["description"] = ("The default SSERD bundle: trained by examples/train_default.sh on the synthetic world "
                           "only (sserd synth). It knows synthetic faces; for real faces train or import one.")
    card.setdefault("provenance", {})["domain"] = "synthetic"
    earlier: dict = {}
    for card_path in stages_from:
        for stage, times in json.loads(Path(card_path).read_text())["training"]["stages"].items():
            earlier.setdefault(stage, times)
    data = {name: json.loads((run / folder / "dataset.json").read_text()).get("config")
            for name, folder in (("stylegan+encoder", "data"), ("inversion+sserd", "inversion/data"))
            if (run / folder / "dataset.json").is_file()}
    card["training"] = {"script": "examples/train_default.sh", "stages": stage_times(run, earlier=earlier),
                        "machine": machine(), "data": data}
    if not isinstance(card.get("domain"), dict):  # a run from before the stages wrote it: measure it here
        card["domain"] = domain_statistics(bundle, run / "inversion" / "data")
    if benchmark is not None:
        result = json.loads(benchmark.read_text())
        card.setdefault("metrics", {})["synthetic_benchmark"] = {"config": result["config"],
                                                                 "summary": result["summary"]}
    save_bundle(out, card, generator=bundle.generator(), encoder=bundle.encoder(), celcl=bundle.celcl(),
                discriminator=bundle.discriminator() if bundle.has("discriminator") else None,  # for fine-tuning
                directions=bundle.directions(), mean_codes=bundle.mean_codes(), latent_avg=bundle.latent_avg(),
                half=True, overwrite=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="the WORK folder of examples/train_default.sh")
    parser.add_argument("--benchmark", type=Path, help="JSON written by 'sserd eval synthetic --json-out'")
    parser.add_argument("--out", type=Path, default=ROOT / "models" / DEFAULT_MODEL)
    parser.add_argument("--stages-from", type=Path, nargs="+", default=(),
                        help="model.json of earlier bundles, for stages whose run folder is gone")
    args = parser.parse_args()
    print(pack(args.run, args.benchmark, args.out, tuple(args.stages_from)))


if __name__ == "__main__":
    main()
