"""rosinality/stylegan2-pytorch checkpoints (``.pt``): ``{"g_ema": state_dict, "latent_avg": [D], ...}``.

Training checkpoints also hold ``g``, ``d``, ``g_optim``, ``d_optim`` and an
``argparse.Namespace`` of the training arguments; the restricted unpickler turns
that Namespace into a plain dict and refuses anything that is not data. The
generator keys are already sserd's (``sserd_cli.nets.stylegan2`` keeps
rosinality's layout), so no renaming is needed.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import SserdError
from .foreign import ForeignGenerator, first_line
from .safe_pickle import load_torch_checkpoint


def _looks_like_generator(obj) -> bool:
    return isinstance(obj, dict) and "style.1.weight" in obj and "input.input" in obj


def read_rosinality(path: Path) -> ForeignGenerator:
    """Read the EMA generator (``g_ema``; else ``g``; else a bare state dict) of a rosinality checkpoint."""
    try:
        obj = load_torch_checkpoint(path, source=path.name)
    except SserdError:  # refusals from the restricted unpickler are already one clear line
        raise
    except Exception as exc:  # torch's zip reader / unpickler: truncated or not a checkpoint
        raise SserdError(f"{path.name} cannot be read as a torch checkpoint ({first_line(exc)}): the file is "
                         "truncated, damaged or in another format") from None
    if not isinstance(obj, dict):
        raise SserdError(f"{path.name} holds a {type(obj).__name__}, not a rosinality checkpoint dict with 'g_ema'")
    args = dict(obj.get("args") or {}) if isinstance(obj.get("args"), dict) else {}
    for entry in ("g_ema", "g"):
        if _looks_like_generator(obj.get(entry)):
            network, state = entry, obj[entry]
            break
    else:
        if _looks_like_generator(obj):
            network, state = "state_dict", obj
        else:
            keys = ", ".join(sorted(str(k) for k in obj)[:8])
            raise SserdError(f"{path.name} holds no StyleGAN2 generator ('g_ema' missing; it has: {keys}): not a "
                             "rosinality stylegan2-pytorch checkpoint")
    tensors = {str(k): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    latent_avg = obj.get("latent_avg")
    if latent_avg is not None and not isinstance(latent_avg, torch.Tensor):
        latent_avg = None
    notes = {"network": network}
    if args:
        notes["training_args"] = {k: v for k, v in args.items() if isinstance(v, (int, float, str, bool, type(None)))}
    if network != "g_ema":
        notes["warning"] = f"no 'g_ema' in the checkpoint: imported '{network}' (not the EMA weights)"
    cm = args.get("channel_multiplier")
    return ForeignGenerator(
        state_dict={k: v.float() for k, v in tensors.items()},
        latent_avg=latent_avg.float().reshape(-1) if latent_avg is not None else None,
        format="rosinality-pt",
        lr_mlp=float(args["lr_mlp"]) if isinstance(args.get("lr_mlp"), (int, float)) else None,
        channel_multiplier=int(cm) if isinstance(cm, int) else None,
        notes=notes,
    )
