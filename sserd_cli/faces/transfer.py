"""Edit transfer: carry what the model's edit does onto the source's own face, at the frame's resolution.

Pasting the generator's render G(w_s + w_e) replaces the face by the model's picture of it: at 64 px a soft
face, and on a face outside the model's world another person. Transfer shows instead what the edit *does*:

1. **motion**: the dense flow F from the edited render back to the plain render G(w_s) (optical flow, DIS,
   computed on both renders upsampled to ``work_size``), so that ``edit(x) ~ recon(x + F(x))``. F is smoothed,
   bounded and faded out with the face mask, so the warp ends where the mask ends and no seam can form;
2. **warp**: every frame pixel under the face is read from the source frame itself at ``p + L^-1 F(m p)``
   (``m`` the frame -> crop alignment, ``L`` its linear part): one resampling of the original pixels
   (Lanczos), never a round trip through a crop, so the face keeps its sharpness. Pixels the field does not
   move keep the source's exact values;
3. **residual**: what no motion explains (new shading, a blush, the dark of a deeper crease) is
   ``edit - recon(x + F(x))``. It is the render's content, so it is carried low-pass (blurred), bounded per
   pixel (luminance and chroma separately, chroma tighter: a hue a warp cannot explain is most often the
   render's own colour error, the teal streaks of the first probe), and kept out of the eyes, where a
   misaligned lid would draw a line. On the mouth and the skin around it the render's content is the model's
   own mouth, which follows the speech of its reconstruction, not necessarily the source's: there the residual
   is kept only as far as the reconstruction matches the source locally (a face of the model's world keeps
   its new teeth; on a real speaker the residual there cut the mouth-opening correlation with the source from
   0.96 to 0.86-0.87, while the motion alone keeps the corners' lift and fall).

Everything here is plain numpy / OpenCV on one face at a time; :class:`MotionEstimator` works in the model's
crop space, :func:`apply_motion` in frame space.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .align import CANONICAL_5, invert_affine
from .mask import eye_mask, face_mask, mouth_region
from .paste import paste_region


_DIS_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


@dataclass(frozen=True)
class TransferSettings:
    """How an edit is carried onto the source (see the module docstring). Lengths in model pixels (the side of
    the model's crop) unless said otherwise."""

    work_size: int = 256          # crop side at which the flow is computed (the renders are upsampled to it)
    flow_preset: str = "medium"   # OpenCV DIS preset: ultrafast, fast or medium
    flow_smooth: float = 1.5      # Gaussian sigma of the flow: the renders' own texture noise out
    max_flow: float = 0.5         # largest displacement, in eye distances (a bound no real edit comes near)
    shrink: float = 0.06          # taken off every displacement: the flow's noise floor moves nothing
    residual: bool = True         # carry what the motion cannot explain
    residual_blur: float = 1.0    # Gaussian sigma of the residual
    residual_luma: float = 28.0   # per-pixel bound of the residual's luminance, grey levels
    residual_chroma: float = 10.0  # ... and of its colour part (each channel's difference from the luminance)
    eye_guard: bool = True        # no residual on the eyes themselves
    trust_from: float = 4.0       # grey levels of local reconstruction error up to which the residual is trusted
    trust_to: float = 12.0        # ... and from which it is dropped, on the mouth (see the module docstring)
    still: float = 0.02           # frame pixels: a smaller displacement is no motion (exact source pixels)

    def __post_init__(self):
        if not 32 <= self.work_size <= 1024:
            raise ValueError(f"work_size must be 32..1024, got {self.work_size}")
        if self.flow_preset not in _DIS_PRESETS:
            raise ValueError(f"flow_preset must be one of {', '.join(_DIS_PRESETS)}, got {self.flow_preset!r}")
        if self.max_flow <= 0:
            raise ValueError(f"max_flow must be positive, got {self.max_flow}")


@dataclass
class Motion:
    """An edit as motion + residual in the model's crop space (``size`` x ``size``): ``flow`` float32 [S, S, 2]
    (x, y displacement in crop pixels, where each output pixel reads the source), ``residual`` float32
    [S, S, 3] RGB grey levels (or None). Both are smooth fields: sampled anywhere between their pixels."""

    flow: np.ndarray
    residual: np.ndarray | None

    def magnitude(self) -> float:
        """The largest displacement, in crop pixels."""
        return float(np.sqrt((self.flow ** 2).sum(axis=2)).max()) if self.flow.size else 0.0

    def fold_fraction(self) -> float:
        """Share of the field's pixels where the warp folds over (the map x -> x + F(x) is not one-to-one
        there: its Jacobian determinant is <= 0)."""
        gx = np.gradient(self.flow[..., 0])
        gy = np.gradient(self.flow[..., 1])
        det = (1.0 + gx[1]) * (1.0 + gy[0]) - gx[0] * gy[1]
        return float((det <= 0).mean())


class MotionEstimator:
    """Turns (plain render, edited render) pairs of one model into :class:`Motion` fields. One per thread:
    it holds an OpenCV DIS flow object and the masks of the model's crop framing.

    The flow is found on the renders upsampled to ``work_size`` (DIS's patches then see a brow's shape, not
    a few pixels of it) and averaged back to the model's side, where the smoothing, the bounds and the residual
    are cheap: both fields are smooth at that scale, and :func:`apply_motion` samples them anywhere."""

    def __init__(self, model_size: int, zoom: float = 1.0, settings: TransferSettings = TransferSettings()):
        self.settings = settings
        size = self.model_size = int(model_size)
        self.zoom = float(zoom)
        self.scale = settings.work_size / size
        self.dis = cv2.DISOpticalFlow_create(_DIS_PRESETS[settings.flow_preset])
        self.mask = face_mask(size, zoom)
        self.eye_distance = float(CANONICAL_5[1, 0] - CANONICAL_5[0, 0]) * zoom * size
        self.keep_residual = self.mask * (1.0 - eye_mask(size, zoom)) if settings.eye_guard else self.mask
        self.mouth = mouth_region(size, zoom)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        self.grid = np.stack([xx, yy], axis=2)

    def motion(self, recon: np.ndarray, edited: np.ndarray, strength: float = 1.0,
               source: np.ndarray | None = None) -> Motion:
        """The edit from ``recon`` (G(w_s)) to ``edited`` (G(w_s + w_e)), uint8 [S, S, 3] crops of the model,
        scaled by ``strength`` (a span's fade: 0 is no edit). ``source``, the aligned source crop the model
        read (same size), says whether its picture of the mouth can be trusted with the residual; without it
        the mouth gets none."""
        s = self.settings
        size = self.model_size
        grey_r = cv2.cvtColor(_upsample(recon, s.work_size), cv2.COLOR_RGB2GRAY)
        grey_e = cv2.cvtColor(_upsample(edited, s.work_size), cv2.COLOR_RGB2GRAY)
        # DIS(I0, I1) gives F with I0(x) ~ I1(x + F(x)): the edit read from the plain render
        flow = self.dis.calc(grey_e, grey_r, None)
        if s.work_size != size:
            flow = cv2.resize(flow, (size, size), interpolation=cv2.INTER_AREA) / self.scale
        if s.flow_smooth > 0:
            flow = cv2.GaussianBlur(flow, (0, 0), s.flow_smooth)
        flow = _bound(flow, s.max_flow * self.eye_distance, s.shrink)
        flow *= self.mask[..., None]
        residual = None
        if s.residual:
            warped = cv2.remap(recon, self.grid + flow, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            residual = edited.astype(np.float32) - warped.astype(np.float32)
            if s.residual_blur > 0:
                residual = cv2.GaussianBlur(residual, (0, 0), s.residual_blur)
            residual = bound_residual(residual, s.residual_luma, s.residual_chroma)
            residual *= (self.keep_residual * self._trust(recon, source))[..., None]
        if strength != 1.0:
            flow = flow * float(strength)
            residual = None if residual is None else residual * float(strength)
        return Motion(flow.astype(np.float32), residual)

    def _trust(self, recon: np.ndarray, source: np.ndarray | None) -> np.ndarray:
        """The residual's weight: 1 off the mouth; on the mouth region, which speaks, only as far as the model's
        reconstruction matches the source there (local error, blurred, mean over channels: trusted up to
        ``trust_from`` grey levels, not from ``trust_to``), and 0 without a source to compare with."""
        s = self.settings
        if source is None:
            return 1.0 - self.mouth
        error = np.abs(recon.astype(np.float32) - source.astype(np.float32)).mean(axis=2)
        error = cv2.GaussianBlur(error, (0, 0), 1.5)
        trust = np.clip((s.trust_to - error) / max(s.trust_to - s.trust_from, 1e-6), 0.0, 1.0)
        return 1.0 - self.mouth * (1.0 - trust)


def bound_residual(residual: np.ndarray, luma: float, chroma: float) -> np.ndarray:
    """``residual`` [.., 3] RGB split into its luminance (the channels' mean), clamped to +-``luma``, and its
    colour part (each channel minus it), shortened so that no channel's exceeds ``chroma`` (the hue is kept,
    and the colour part still sums to 0, so it cannot shift the luminance); put back together."""
    y = residual.mean(axis=2, keepdims=True)
    colour = residual - y
    largest = np.abs(colour).max(axis=2, keepdims=True)
    return np.clip(y, -luma, luma) + colour * np.minimum(1.0, chroma / np.maximum(largest, 1e-6))


def _bound(flow: np.ndarray, limit: float, shrink: float = 0.0) -> np.ndarray:
    """Displacements shortened by ``shrink`` (to 0 at most) and then to ``limit`` at most, direction kept."""
    length = np.sqrt((flow ** 2).sum(axis=2, keepdims=True))
    kept = np.minimum(np.maximum(length - shrink, 0.0), limit)
    return flow * (kept / np.maximum(length, 1e-6))


def _upsample(crop: np.ndarray, size: int) -> np.ndarray:
    if crop.shape[0] == size:
        return crop
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_CUBIC)


def apply_motion(frame: np.ndarray, motion: Motion, m: np.ndarray, still: float = 0.02,
                 interpolation: int = cv2.INTER_LANCZOS4) -> np.ndarray:
    """``frame`` with ``motion`` applied (see :func:`move_pixels`): a new frame."""
    out = frame.copy()
    move_pixels(out, motion, m, still, interpolation)
    return out


def move_pixels(frame: np.ndarray, motion: Motion, m: np.ndarray, still: float = 0.02,
                interpolation: int = cv2.INTER_LANCZOS4) -> tuple[int, int, int, int] | None:
    """``frame`` (uint8 [H, W, 3]) with ``motion`` applied through the frame -> crop transform ``m`` (of the
    model's crop side), in place; returns the rectangle (x0, y0, x1, y1) outside which no pixel changed (None:
    none did). Each pixel p under the field reads the frame at p + L^-1 F(m p) (Lanczos:
    bicubic kept 0.97 of the face's sharpness on the synthetic benchmark, Lanczos 0.99, for about 1 ms more on a
    face of 128 px) and gets the residual at m p; pixels the field moves by
    less than ``still`` frame pixels and that get no residual keep their exact values, and only the frame
    rectangle under the field's support is touched."""
    support = np.abs(motion.flow).max(axis=2)
    if motion.residual is not None:
        support = np.maximum(support, np.abs(motion.residual).max(axis=2))
    region = paste_region(frame.shape, m, support)
    if region is None:
        return None
    x0, y0, x1, y1 = region
    m = np.asarray(m, dtype=np.float64)
    # each region pixel's crop position c = m p, as maps for cv2.remap
    xs = np.arange(x0, x1, dtype=np.float32)[None, :]
    ys = np.arange(y0, y1, dtype=np.float32)[:, None]
    cx = (m[0, 0] * xs + m[0, 1] * ys + m[0, 2]).astype(np.float32)
    cy = (m[1, 0] * xs + m[1, 1] * ys + m[1, 2]).astype(np.float32)
    flow = cv2.remap(motion.flow, cx, cy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    # a crop displacement d reads the frame at p + L^-1 d
    inv = invert_affine(m)[:, :2].astype(np.float32)
    dx = inv[0, 0] * flow[..., 0] + inv[0, 1] * flow[..., 1]
    dy = inv[1, 0] * flow[..., 0] + inv[1, 1] * flow[..., 1]
    touched = (dx * dx + dy * dy) >= still * still
    window = frame[y0:y1, x0:x1]
    # whole-window passes and one masked write: boolean indexing of a colour window cost more than the warp
    if touched.any():  # read before anything is written: the frame is both source and result
        warped = cv2.remap(frame, xs + dx, ys + dy, interpolation, borderMode=cv2.BORDER_REFLECT_101)
        result = np.where(touched[..., None], warped, window)
    else:
        result = window
    if motion.residual is not None:
        residual = cv2.remap(motion.residual, cx, cy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        result = result + residual
        size = np.abs(residual)  # the largest channel, as two pairwise maxima (a reduction over axis 2 cost 5x)
        touched |= np.maximum(np.maximum(size[..., 0], size[..., 1]), size[..., 2]) >= 0.5 / 255.0
        result = np.clip(np.rint(result, out=result), 0, 255, out=result).astype(np.uint8)
    np.copyto(window, result, where=touched[..., None])
    return region


__all__ = ["TransferSettings", "Motion", "MotionEstimator", "apply_motion", "move_pixels", "bound_residual"]
