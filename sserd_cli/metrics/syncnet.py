"""SyncNet (Chung & Zisserman, "Out of time", ACCV-W 2016) and the LSE-D / LSE-C protocol.

The network matches the public syncnet_python model (``S`` with the towers
``netcnnaud``/``netfcaud`` for audio and ``netcnnlip``/``netfclip`` for video),
module for module, so the published ``syncnet_v2.model`` state dict loads by
name. The protocol follows syncnet_python as used by Prajwal et al. (Wav2Lip)
for LSE-D/LSE-C: video at 25 fps as 224x224 BGR face crops in [0, 255],
5-frame windows against 20 MFCC frames (0.2 s), distances for audio offsets
of -15..+15 frames (out-of-range positions compared with zero features),
LSE-D = min over offsets of the mean distance, LSE-C = median - min.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import SserdError
from .mfcc import SAMPLE_RATE, mfcc

VIDEO_FPS = 25
WINDOW = 5  # video frames per sample (0.2 s at 25 fps)
MFCC_PER_FRAME = 4  # 100 Hz MFCC / 25 fps
SAMPLES_PER_FRAME = SAMPLE_RATE // VIDEO_FPS  # 640
INPUT_SIZE = 224
WEIGHT_FILE = "syncnet_v2.model"


def _bn_relu2d(channels: int, inplace: bool = True) -> list[nn.Module]:
    return [nn.BatchNorm2d(channels), nn.ReLU(inplace=inplace)]


def _bn_relu3d(channels: int) -> list[nn.Module]:
    return [nn.BatchNorm3d(channels), nn.ReLU(inplace=True)]


def _head(out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, out_dim))


class SyncNet(nn.Module):
    """Audio tower: MFCC [B,1,13,20] -> [B,1024]; lip tower: frames [B,3,5,224,224] -> [B,1024]."""

    def __init__(self, embed_dim: int = 1024):
        super().__init__()
        # indices of the Sequential entries must stay as they are: the weight file names them
        self.netcnnaud = nn.Sequential(
            nn.Conv2d(1, 64, 3, 1, 1), *_bn_relu2d(64), nn.MaxPool2d(1, 1),
            nn.Conv2d(64, 192, 3, 1, 1), *_bn_relu2d(192), nn.MaxPool2d(3, (1, 2)),
            nn.Conv2d(192, 384, 3, padding=1), *_bn_relu2d(384),
            nn.Conv2d(384, 256, 3, padding=1), *_bn_relu2d(256),
            nn.Conv2d(256, 256, 3, padding=1), *_bn_relu2d(256), nn.MaxPool2d(3, 2),
            nn.Conv2d(256, 512, (5, 4), padding=0), *_bn_relu2d(512, inplace=False),
        )
        self.netfcaud = _head(embed_dim)
        self.netfclip = _head(embed_dim)
        self.netcnnlip = nn.Sequential(
            nn.Conv3d(3, 96, (5, 7, 7), (1, 2, 2), 0), *_bn_relu3d(96), nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
            nn.Conv3d(96, 256, (1, 5, 5), (1, 2, 2), (0, 1, 1)), *_bn_relu3d(256),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), *_bn_relu3d(256),
            nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), *_bn_relu3d(256),
            nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), *_bn_relu3d(256), nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
            nn.Conv3d(256, 512, (1, 6, 6), padding=0), *_bn_relu3d(512),
        )

    def forward_aud(self, mfcc_windows: torch.Tensor) -> torch.Tensor:
        return self.netfcaud(self.netcnnaud(mfcc_windows).flatten(1))

    def forward_lip(self, frame_windows: torch.Tensor) -> torch.Tensor:
        return self.netfclip(self.netcnnlip(frame_windows).flatten(1))


def load_syncnet(path: str | Path | None, device: str | torch.device = "cpu") -> SyncNet:
    """SyncNet with the weights of ``syncnet_v2.model`` (a torch-pickled state dict, read with weights_only)."""
    if path is None:
        raise SserdError(f"LSE-D/LSE-C need the SyncNet weight file {WEIGHT_FILE}: pass it with --syncnet "
                         "(from the public syncnet_python release)")
    path = Path(path)
    if not path.is_file():
        raise SserdError(f"SyncNet weight file {path} not found (LSE-D/LSE-C need {WEIGHT_FILE}): check --syncnet")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # the restricted unpickler refuses code; report, never retry unrestricted
        raise SserdError(f"{path} is not a plain SyncNet state dict ({type(exc).__name__}): "
                         f"give the public {WEIGHT_FILE} file") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise SserdError(f"{path} does not hold a state dict: give the public {WEIGHT_FILE} file")
    state = {key.removeprefix("module.").removeprefix("__S__."): value for key, value in state.items()}
    net = SyncNet()
    expected = net.state_dict()
    # files saved by old PyTorch lack BatchNorm's num_batches_tracked counters (unused at eval)
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise SserdError(f"{path} is not a SyncNet state dict (missing {missing[:3]}, unexpected {unexpected[:3]}): "
                         f"give the public {WEIGHT_FILE} file")
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise SserdError(f"{path}: {key} has shape {tuple(value.shape)}, SyncNet needs {tuple(expected[key].shape)}")
    net.load_state_dict(state, strict=False)
    return net.eval().to(device)


@dataclass
class SyncResult:
    """LSE-D (lower is better), LSE-C (higher is better) and the best audio offset in frames."""

    lse_d: float
    lse_c: float
    offset: int
    n_windows: int


def sync_distances(video_feats: torch.Tensor, audio_feats: torch.Tensor, vshift: int = 15) -> torch.Tensor:
    """[N, 2*vshift+1] distances of video window i to audio window i+s-vshift (zero features outside)."""
    padded = nn.functional.pad(audio_feats, (0, 0, vshift, vshift))
    span = 2 * vshift + 1
    rows = [nn.functional.pairwise_distance(video_feats[i:i + 1].expand(span, -1), padded[i:i + span])
            for i in range(video_feats.shape[0])]
    return torch.stack(rows)


def sync_scores(video_feats: torch.Tensor, audio_feats: torch.Tensor, vshift: int = 15) -> SyncResult:
    """The syncnet_python scores from per-window features."""
    dists = sync_distances(video_feats, audio_feats, vshift)
    mean_dist = dists.mean(dim=0)
    min_dist, min_index = torch.min(mean_dist, dim=0)
    return SyncResult(lse_d=float(min_dist), lse_c=float(torch.median(mean_dist) - min_dist),
                      offset=int(vshift - int(min_index)), n_windows=int(dists.shape[0]))


def mfcc_windows(audio_16k: np.ndarray, n_windows: int) -> torch.Tensor:
    """[n_windows, 1, 13, 20]: 0.2 s of MFCC starting at each video frame."""
    cep = mfcc(audio_16k).T.astype(np.float32)  # [13, T]
    cep = torch.from_numpy(cep)
    return torch.stack([cep[:, i * MFCC_PER_FRAME: i * MFCC_PER_FRAME + 4 * WINDOW] for i in range(n_windows)])[:, None]


def frame_windows(frames_bgr: np.ndarray, n_windows: int) -> torch.Tensor:
    """[n_windows, 3, 5, 224, 224] float in [0, 255] from frames [T, 224, 224, 3] BGR uint8."""
    video = torch.from_numpy(np.ascontiguousarray(frames_bgr)).permute(3, 0, 1, 2).float()  # [3, T, H, W]
    return torch.stack([video[:, i:i + WINDOW] for i in range(n_windows)])


@torch.no_grad()
def evaluate_sync(net: SyncNet, frames_bgr: np.ndarray, audio_16k: np.ndarray, vshift: int = 15,
                  batch_size: int = 20) -> SyncResult:
    """LSE-D/LSE-C of a 25 fps face-crop sequence [T,224,224,3] (BGR uint8) against 16 kHz mono audio."""
    if frames_bgr.ndim != 4 or frames_bgr.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
        raise ValueError(f"SyncNet needs frames [T,{INPUT_SIZE},{INPUT_SIZE},3], got {frames_bgr.shape}")
    length = min(len(frames_bgr), len(audio_16k) // SAMPLES_PER_FRAME)
    n_windows = length - WINDOW
    if n_windows < 1:
        raise SserdError(f"clip too short for SyncNet: {length} frames at 25 fps, need more than {WINDOW}")
    device = next(net.parameters()).device
    audio_windows = mfcc_windows(audio_16k, n_windows)
    video_out, audio_out = [], []
    for start in range(0, n_windows, batch_size):
        stop = min(start + batch_size, n_windows)
        video_out.append(net.forward_lip(frame_windows(frames_bgr[start:stop + WINDOW - 1], stop - start).to(device)).cpu())
        audio_out.append(net.forward_aud(audio_windows[start:stop].to(device)).cpu())
    return sync_scores(torch.cat(video_out), torch.cat(audio_out), vshift)


# syncnet_python crops the S3FD face box with a crop scale of 0.4: a square of side 2*bs*(1.4) whose
# top is the box top (so it reaches below the chin), padded with grey 110, resized to 224. Our
# crops carry no detector box, so the box is placed from the 5 points: side 2.2 eye-to-mouth
# distances, top 0.77 of them above the eyes (a frontal face box from brows to chin).
FACE_BOX_SIDE = 2.2
FACE_BOX_TOP = 0.77
CROP_SCALE = 0.4
PAD_VALUE = 110


def syncnet_view_transform(landmarks: np.ndarray) -> np.ndarray:
    """Affine [2, 3] from an image with these 5 points to SyncNet's 224x224 input."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    eyes = landmarks[:2].mean(axis=0)
    mouth = landmarks[3:5].mean(axis=0)
    em = float(np.hypot(*(mouth - eyes)))
    bs = FACE_BOX_SIDE * em / 2.0
    top = eyes[1] - FACE_BOX_TOP * em
    side = 2.0 * bs * (1.0 + CROP_SCALE)
    x0, y0 = (eyes[0] + mouth[0]) / 2.0 - side / 2.0, top
    scale = INPUT_SIZE / side
    return np.array([[scale, 0.0, -x0 * scale], [0.0, scale, -y0 * scale]])


def syncnet_views(crops_rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """SyncNet inputs [N, 224, 224, 3] BGR uint8 from aligned RGB crops whose 5 points are ``landmarks``."""
    import cv2

    m = syncnet_view_transform(landmarks)
    return np.stack([cv2.warpAffine(np.ascontiguousarray(c[:, :, ::-1]), m, (INPUT_SIZE, INPUT_SIZE),
                                    flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                    borderValue=(PAD_VALUE,) * 3) for c in crops_rgb])


def resample_to_25fps(frame_numbers: list[int], fps: float, n_frames: int) -> list[int]:
    """For each 25 fps tick, the source frame shown at that time (what ffmpeg -r 25 does), as list positions.

    ``frame_numbers`` are the frames that have a crop; a tick whose frame has
    none takes the nearest frame that has one.
    """
    if fps <= 0 or not frame_numbers:
        return []
    have = np.asarray(sorted(frame_numbers))
    duration = n_frames / fps
    ticks = int(np.floor(duration * VIDEO_FPS + 1e-6))
    positions = []
    for k in range(ticks):
        source = min(int(np.floor(k / VIDEO_FPS * fps + 1e-6)), n_frames - 1)
        positions.append(int(np.argmin(np.abs(have - source))))
    return positions
