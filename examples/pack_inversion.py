"""Pack a run of examples/train_inversion.sh into the shipped generator + encoder ``models/synthetic-inversion``.

The autoencoder's bundle (or a snapshot of one of its checkpoints) is re-saved in float16 with a card that says
what it was trained on, how (the recipe of every stage, steps and step times, the machine), how well it inverts
(the JSON of ``benchmarks/inversion_gates.py``) and what its reconstruction error is on held-out faces of its
domain (``card["domain"]``, measured here when the bundle predates it). It holds no CELCL or directions: the
next stages (``build-pairs``, ``train``) start from it.

    python examples/pack_inversion.py runs/inversion --gates runs/inversion/gates.json
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import torch

from pack_default import machine, stage_times  # examples/ is the script's folder, on sys.path
from sserd_cli.bundles import load_bundle, save_bundle
from sserd_cli.training.domain_stats import held_out_statistics

ROOT = Path(__file__).resolve().parent.parent
NAME = "synthetic-inversion"
STAGES = {"features": "features", "ae": "autoencoder"}


def pack(run: Path, bundle_path: Path, gates: Path | None, out: Path) -> Path:
    bundle = load_bundle(bundle_path)
    card = json.loads(json.dumps(bundle.card))
    for key in ("format", "version", "parts", "dtype", "created", "sserd_version"):
        card.pop(key, None)  # written afresh by save_bundle
    card["name"] = NAME
    card["description"] = ("Generator + encoder trained together by examples/train_inversion.sh on the synthetic "
                           "world only, so that G(E(x)) keeps the expression, the mouth and the identity. The start "
                           "of the next stages (build-pairs, train), not an editor by itself.")
    card.setdefault("provenance", {})["domain"] = "synthetic"
    stages = stage_times(run, STAGES)
    snap = re.fullmatch(r"snapshot_iter_(\d+)", bundle_path.name)
    if snap:  # a checkpoint's snapshot: its own step count (the run's summary is that of its last export)
        auto = stages["autoencoder"]
        auto["iterations"] = int(snap.group(1))
        auto["hours"] = round(auto["iterations"] * auto["sec_per_step"] / 3600, 2)
    card["training"] = {"script": "examples/train_inversion.sh", "stages": stages, "machine": machine(),
                        "data": json.loads((run / "data" / "dataset.json").read_text()).get("config")}
    G, E = bundle.generator().eval(), bundle.encoder().eval()
    if "domain" not in card:
        step = card["recipe"][-1]["config"]
        card["domain"] = held_out_statistics(G, E, str(run / "data"), step["size"], step["load_size"] or step["size"],
                                             card["framing"]["zoom"], torch.device("cpu"))
    if gates is not None:
        result = json.loads(gates.read_text())
        card.setdefault("metrics", {})["inversion_gates"] = {k: v for k, v in result.items() if k != "results"}
        mine = [r for r in result["results"] if Path(r["bundle"]).resolve() in (out.resolve(), bundle_path.resolve())]
        if not mine:
            raise SystemExit(f"{gates} has no row for {out} or {bundle_path}: run the gates on the bundle you pack")
        card["metrics"]["inversion_gates"]["result"] = mine[0]
    save_bundle(out, card, generator=G, encoder=E,
                discriminator=bundle.discriminator() if bundle.has("discriminator") else None,
                latent_avg=bundle.latent_avg(), half=True, overwrite=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="the WORK folder of examples/train_inversion.sh")
    parser.add_argument("--bundle", type=Path, help="the bundle to pack (default: WORK/ae/bundle)")
    parser.add_argument("--gates", type=Path, help="JSON written by benchmarks/inversion_gates.py --json for it")
    parser.add_argument("--out", type=Path, default=ROOT / "models" / NAME)
    args = parser.parse_args()
    print(pack(args.run, args.bundle or args.run / "ae" / "bundle", args.gates, args.out))


if __name__ == "__main__":
    main()
