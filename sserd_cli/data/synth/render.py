"""The face renderer: numpy + OpenCV, anti-aliased, deterministic, any resolution.

How a frame is made:

1. A *canonical* frontal face is painted in face units (head half-width ~1, y down) at the pixel
   density the output needs times the supersampling factor: albedo layers (hair, ears, neck,
   skin, eyes, brows, nose, mouth, folds) drawn as anti-aliased polygons, plus a depth map of
   the head (ellipsoid + nose, brow ridge, cheeks, lips, chin).
2. The depth map gives normals; a directional light (in camera space, turned into head space by
   the head rotation) shades everything (Lambert + ambient + a little specular).
3. The canonical image is warped into the frame: orthographic projection of the rotated height
   field (yaw/pitch/roll), scale and translation; the inverse map is solved per pixel by a few
   fixed-point steps, so parallax (the nose moving more than the cheeks) is real.
4. Composited over the background at ``supersample`` x the output size, then reduced with
   INTER_AREA, which is what makes the edges smooth.

Landmarks are exact: the 5 points are canonical points pushed through the same projection.
``align_landmarks`` keeps the eyes and nose but puts the mouth corners where the neutral, closed
mouth has them (fixed to the skull), as the dlib-based detector of ``sserd edit`` does; crops
aligned on them do not move when the expression or the speech changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .params import Expression, FaceState, Identity, Pose, Speech

# Bumped whenever the pixels for the same parameters change: true answers are only exact when the
# clip and its answer come from the same renderer version.
RENDERER_VERSION = 3  # 3: hair crown sampled by angle
SHIFT = 4  # fixed-point bits for sub-pixel polygon vertices
ONE = 1 << SHIFT
# canonical extent in face units: x in [-X_EXT, X_EXT], y in [Y_TOP, Y_BOT]
X_EXT, Y_TOP, Y_BOT = 2.3, -2.0, 3.9

SKIN = np.array([[0.97, 0.82, 0.72], [0.90, 0.70, 0.57], [0.76, 0.55, 0.40], [0.58, 0.40, 0.28],
                 [0.42, 0.28, 0.19]], np.float32)
HAIR = np.array([[0.05, 0.04, 0.04], [0.16, 0.10, 0.06], [0.33, 0.21, 0.12], [0.50, 0.22, 0.10],
                 [0.80, 0.64, 0.40], [0.62, 0.61, 0.60]], np.float32)
IRIS = np.array([[0.18, 0.10, 0.05], [0.36, 0.22, 0.10], [0.45, 0.38, 0.18], [0.28, 0.44, 0.28],
                 [0.28, 0.45, 0.68], [0.44, 0.50, 0.56]], np.float32)


def _palette(table: np.ndarray, t: float) -> np.ndarray:
    pos = float(np.clip(t, 0.0, 1.0)) * (len(table) - 1)
    i = min(int(pos), len(table) - 2)
    f = pos - i
    return table[i] * (1 - f) + table[i + 1] * f


def _hsv_color(h: float, s: float, v: float) -> np.ndarray:
    rgb = cv2.cvtColor(np.array([[[h * 179.0, s * 255.0, v * 255.0]]], np.float32).astype(np.uint8), cv2.COLOR_HSV2RGB)
    return rgb[0, 0].astype(np.float32) / 255.0


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


@dataclass
class Rendered:
    """One rendered frame and its exact geometry (output pixels, pixel centres at integers)."""

    image: np.ndarray  # [H, W, 3] uint8 RGB
    landmarks: np.ndarray  # [5, 2] float32: left eye, right eye, nose tip, left/right mouth corner
    align_landmarks: np.ndarray  # [5, 2] float32: same, mouth corners fixed to the skull
    box: np.ndarray  # [4] float32 (x0, y0, x1, y1): forehead-to-chin, ear-to-ear box


class _Geometry:
    """Where every facial feature sits, in canonical face units, for one face state."""

    def __init__(self, ident: Identity, ex: Expression, sp: Speech, pose: Pose):
        self.a = 0.82 + 0.12 * ident.face_width  # head half-width
        self.eye_y = -0.08
        self.eye_x = 0.335 + 0.07 * ident.eye_spacing
        self.eye_w = 0.165 + 0.04 * ident.eye_size
        self.nose_tip = 0.25 + 0.09 * ident.nose_length
        self.nose_w = 0.12 + 0.05 * ident.nose_width
        self.mouth_y = self.nose_tip + 0.30
        self.mouth_w0 = 0.24 + 0.07 * ident.mouth_width
        self.chin = self.mouth_y + 0.46 + 0.10 * ident.face_length
        self.top = -1.30 - 0.10 * ident.face_length
        self.yc = 0.5 * (self.chin + self.top)
        self.b = 0.5 * (self.chin - self.top)
        self.jaw = ident.jaw_width
        # mouth: speech and emotion meet here through different controls
        open_total = min(sp.mouth_open + 0.85 * ex.jaw_drop, 1.4)
        rnd = sp.lip_round
        self.mouth_w = self.mouth_w0 * (1 + 0.16 * ex.lip_stretch + 0.10 * ex.lip_corner_up - 0.30 * rnd
                                        - 0.06 * open_total + 0.03 * ex.lip_corner_down)
        self.gap = 0.20 * open_total * (1 + 0.15 * rnd)
        self.round = rnd
        self.corner_dy = -0.075 * ex.lip_corner_up + 0.07 * ex.lip_corner_down - 0.012 * ex.upper_lip_raise
        lip_scale = 0.75 + 0.5 * ident.lip_thickness
        self.thick_u = 0.050 * lip_scale * (1 - 0.55 * ex.lip_press) * (1 + 0.3 * rnd) * (1 - 0.12 * ex.lip_corner_up)
        self.thick_l = 0.070 * lip_scale * (1 - 0.50 * ex.lip_press) * (1 + 0.2 * rnd) * (1 - 0.10 * ex.lip_stretch)
        self.upper_raise = ex.upper_lip_raise
        self.ex, self.ident, self.pose = ex, ident, pose

    def half_width(self, y: np.ndarray) -> np.ndarray:
        """Head silhouette half-width at height y (ellipse narrowed towards the chin by the jaw)."""
        r = np.clip((y - self.yc) / self.b, -1.0, 1.0)
        ell = self.a * np.sqrt(np.clip(1 - r**2, 0, 1))
        taper_start = self.eye_y + 0.25
        f = np.clip((y - taper_start) / (self.chin - taper_start), 0, 1)
        return ell * (1 - (0.30 - 0.22 * self.jaw) * f**1.5)

    def head_outline(self, n: int = 90) -> np.ndarray:
        ys = self.yc - self.b * np.cos(np.linspace(0, np.pi, n))
        xs = self.half_width(ys)
        return np.concatenate([np.stack([xs, ys], 1), np.stack([-xs[::-1], ys[::-1]], 1)])

    def lips(self, n: int = 33):
        """Inner upper, inner lower, outer upper, outer lower lip contours, x from -w to +w."""
        t = np.linspace(-1, 1, n)
        x = t * self.mouth_w
        p = 0.75 - 0.35 * self.round
        shape = np.clip(1 - t**2, 0, 1) ** p
        corner = self.corner_dy * np.abs(t) ** 2.5
        raise_u = 0.045 * self.upper_raise * np.exp(-((np.abs(t) - 0.45) / 0.28) ** 2)
        y_iu = self.mouth_y + corner - 0.40 * self.gap * shape - raise_u
        y_il = self.mouth_y + corner + 0.60 * self.gap * shape
        bow = 1 + 0.18 * np.exp(-((np.abs(t) - 0.24) / 0.11) ** 2) - 0.22 * np.exp(-(t / 0.09) ** 2)
        y_ou = y_iu - self.thick_u * np.clip(1 - t**2, 0, 1) ** 0.55 * bow
        y_ol = y_il + self.thick_l * np.clip(1 - t**2, 0, 1) ** 0.6
        return (np.stack([x, y_iu], 1), np.stack([x, y_il], 1), np.stack([x, y_ou], 1), np.stack([x, y_ol], 1))

    def corners(self) -> np.ndarray:
        y = self.mouth_y + self.corner_dy
        return np.array([[-self.mouth_w, y], [self.mouth_w, y]])

    def neutral_corners(self) -> np.ndarray:
        return np.array([[-self.mouth_w0, self.mouth_y], [self.mouth_w0, self.mouth_y]])


class _Painter:
    """Anti-aliased painting on a float RGB canvas, each operation limited to its bounding box."""

    def __init__(self, k: float, window: tuple[float, float, float, float] = (-X_EXT, Y_TOP, X_EXT, Y_BOT)):
        """``k`` pixels per face unit; ``window`` (x0, y0, x1, y1) the part of the face plane to paint."""
        self.k = k
        self.x0, self.y0 = max(window[0], -X_EXT), max(window[1], Y_TOP)
        x1, y1 = min(window[2], X_EXT), min(window[3], Y_BOT)
        self.w = max(int(math.ceil((x1 - self.x0) * k)) + 1, 2)
        self.h = max(int(math.ceil((y1 - self.y0) * k)) + 1, 2)
        self.rgb = np.zeros((self.h, self.w, 3), np.float32)
        self.alpha = np.zeros((self.h, self.w), np.float32)
        self.depth = np.zeros((self.h, self.w), np.float32)

    def px(self, pts) -> np.ndarray:
        pts = np.asarray(pts, np.float64)
        return np.stack([(pts[..., 0] - self.x0) * self.k, (pts[..., 1] - self.y0) * self.k], -1)

    def grid(self, x0, y0, x1, y1):
        """ROI slices and unit coordinates (X, Y) of its pixels for a unit-space box."""
        c0 = self.px([x0, y0])
        c1 = self.px([x1, y1])
        i0, j0 = max(int(c0[0]), 0), max(int(c0[1]), 0)
        i1, j1 = min(int(math.ceil(c1[0])) + 1, self.w), min(int(math.ceil(c1[1])) + 1, self.h)
        xs = np.arange(i0, i1, dtype=np.float32) / self.k + self.x0
        ys = np.arange(j0, j1, dtype=np.float32) / self.k + self.y0
        X, Y = np.meshgrid(xs, ys)
        return (slice(j0, j1), slice(i0, i1)), X, Y

    def coords(self, roi):
        """Unit coordinates (X, Y) of the pixels of an ROI."""
        xs = np.arange(roi[1].start, roi[1].stop, dtype=np.float32) / self.k + self.x0
        ys = np.arange(roi[0].start, roi[0].stop, dtype=np.float32) / self.k + self.y0
        return np.meshgrid(xs, ys)

    def mask(self, polys, blur: float = 0.0, lines=None, line_width: float = 0.0):
        """(roi, float mask in [0,1]) of filled polygons (and/or polylines), optionally blurred (units)."""
        shapes = [self.px(p) for p in polys] + [self.px(p) for p in (lines or [])]
        allp = np.concatenate(shapes)
        margin = 3 * blur * self.k + line_width * self.k + 3
        i0 = int(max(np.floor(allp[:, 0].min() - margin), 0))
        j0 = int(max(np.floor(allp[:, 1].min() - margin), 0))
        i1 = int(min(np.ceil(allp[:, 0].max() + margin) + 1, self.w))
        j1 = int(min(np.ceil(allp[:, 1].max() + margin) + 1, self.h))
        if i1 <= i0 or j1 <= j0:
            return None, None
        m = np.zeros((j1 - j0, i1 - i0), np.uint8)
        off = np.array([i0, j0])
        if polys:
            cv2.fillPoly(m, [np.round((self.px(p) - off) * ONE).astype(np.int32) for p in polys], 255,
                         cv2.LINE_AA, SHIFT)
        if lines:
            thick = max(1, int(round(line_width * self.k)))
            cv2.polylines(m, [np.round((self.px(p) - off) * ONE).astype(np.int32) for p in lines], False, 255,
                          thick, cv2.LINE_AA, SHIFT)
        mf = m.astype(np.float32) / 255.0
        if blur > 0:
            sigma = blur * self.k
            mf = cv2.GaussianBlur(mf, (0, 0), sigma)
        return (slice(j0, j1), slice(i0, i1)), mf

    def paint(self, polys, color, opacity: float = 1.0, blur: float = 0.0, lines=None, line_width: float = 0.0,
              clip=None, alpha: bool = False):
        roi, m = self.mask(polys, blur, lines, line_width)
        if roi is None or opacity <= 0:
            return roi, m
        m = m * opacity
        if clip is not None:
            m = m * clip[roi]
        self.rgb[roi] = self.rgb[roi] * (1 - m[..., None]) + np.asarray(color, np.float32) * m[..., None]
        if alpha:
            self.alpha[roi] = np.maximum(self.alpha[roi], m)
        return roi, m

    def shade(self, polys, factor: float, blur: float = 0.0, lines=None, line_width: float = 0.0):
        """Multiply the covered pixels by ``factor`` (< 1 darkens), feathered by ``blur``."""
        roi, m = self.mask(polys, blur, lines, line_width)
        if roi is None:
            return
        self.rgb[roi] *= (1 - m * (1 - factor))[..., None]

    def bump(self, cx, cy, sx, sy, amp):
        """Add a Gaussian bump to the depth map."""
        roi, X, Y = self.grid(cx - 3 * sx, cy - 3 * sy, cx + 3 * sx, cy + 3 * sy)
        self.depth[roi] += amp * np.exp(-0.5 * (((X - cx) / sx) ** 2 + ((Y - cy) / sy) ** 2))

    def tint(self, cx, cy, sx, sy, color, amount):
        roi, X, Y = self.grid(cx - 3 * sx, cy - 3 * sy, cx + 3 * sx, cy + 3 * sy)
        m = (amount * np.exp(-0.5 * (((X - cx) / sx) ** 2 + ((Y - cy) / sy) ** 2)))[..., None]
        self.rgb[roi] = self.rgb[roi] * (1 - m) + np.asarray(color, np.float32) * m


def _ellipse(cx, cy, rx, ry, angle=0.0, n=48):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x, y = rx * np.cos(t), ry * np.sin(t)
    ca, sa = math.cos(angle), math.sin(angle)
    return np.stack([cx + ca * x - sa * y, cy + sa * x + ca * y], 1)


def _band(upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    return np.concatenate([upper, lower[::-1]])


def _bezier(p0, p1, p2, n=20):
    t = np.linspace(0, 1, n)[:, None]
    p0, p1, p2 = (np.asarray(p, np.float64) for p in (p0, p1, p2))
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def _paint_canonical(state: FaceState, k: float, g: _Geometry, window) -> _Painter:
    ident, ex, pose = state.identity, state.expression, state.pose
    P = _Painter(k, window)
    skin = _palette(SKIN, ident.skin_tone)
    skin = skin * np.array([1.0 + 0.04 * (0.5 - ident.skin_warmth), 1.0, 1.0 - 0.08 * (ident.skin_warmth - 0.5)],
                           np.float32)
    hair = _palette(HAIR, ident.hair_color)
    long_hair = ident.hair_style
    age = ident.age_lines

    # --- hair behind the head (long styles reach the shoulders)
    vol = 0.07 + 0.10 * ident.hair_style
    back_end = g.eye_y + 0.1 + 2.1 * max(long_hair - 0.25, 0)
    if long_hair > 0.25:
        ys = np.linspace(g.top - vol, back_end, 48)
        ra, rb = g.a + vol, g.b + vol
        top_part = ra * np.sqrt(np.clip(1 - ((ys - g.yc) / rb) ** 2, 0, 1))
        outer = np.where(ys < g.yc, top_part, ra - 0.06 * (ys - g.yc))  # hangs down, a little inwards
        # rounded, slightly irregular ends
        end_f = np.clip((ys - (back_end - 0.25)) / 0.25, 0, 1)
        outer = outer * np.sqrt(np.clip(1 - end_f**2, 0, 1)) ** 0.5
        back = np.concatenate([np.stack([outer, ys], 1), np.stack([-outer[::-1], ys[::-1]], 1)])
        roi, m = P.paint([back], hair * 0.8, alpha=True)
        if roi is not None:  # a rounded mass behind the head, so it shades like one
            X, _ = P.coords(roi)
            z = 0.35 * np.sqrt(np.clip(1 - (X / ra) ** 2, 0, 1)) - 0.2
            P.depth[roi] = np.where(m > 0, z, P.depth[roi])
    # --- neck, shoulders, shirt
    neck_w = 0.40 + 0.08 * ident.jaw_width
    neck = np.array([[-neck_w, g.mouth_y], [neck_w, g.mouth_y], [neck_w * 1.05, g.chin + 0.6],
                     [-neck_w * 1.05, g.chin + 0.6]])
    P.paint([neck], skin * 0.92, alpha=True)
    sh_y = g.chin + 0.42
    shirt_col = _hsv_color(ident.clothes_hue, 0.2 + 0.35 * ident.lip_color, 0.25 + 0.45 * ident.eye_size)
    # shoulders curving down into the upper arms, so the body ends with a natural outline
    left = np.concatenate([_bezier([-neck_w * 1.1, sh_y], [-1.3, sh_y - 0.02], [-1.9, sh_y + 0.45], 16),
                           _bezier([-1.9, sh_y + 0.45], [-2.2, sh_y + 0.8], [-2.15, Y_BOT], 12)[1:]])
    shoulders = np.concatenate([left, (left * np.array([-1, 1]))[::-1]])
    P.paint([shoulders], shirt_col, alpha=True)
    collar = np.array([[-neck_w * 1.1, sh_y], [0, sh_y + 0.55], [neck_w * 1.1, sh_y]])
    P.paint([collar], skin * 0.9, alpha=True)
    body = np.zeros_like(P.alpha)
    for poly in (neck, shoulders, collar):
        roi, m = P.mask([poly])
        if roi is not None:
            body[roi] = np.maximum(body[roi], m)
    roi, X, Y = P.grid(-X_EXT, g.mouth_y, X_EXT, Y_BOT)
    nz = 0.45 * np.sqrt(np.clip(1 - (X / (neck_w * 1.1)) ** 2, 0, 1)) - 0.25
    sh = 0.3 * np.sqrt(np.clip(1 - (X / 2.3) ** 2, 0, 1)) - 0.35
    body_z = np.where(Y > sh_y + 0.3 * np.abs(X) ** 1.5 - 0.05, np.maximum(sh, nz * 0.5), nz)
    P.depth[roi] = P.depth[roi] * (1 - body[roi]) + body_z * body[roi]
    # shadow the neck under the jaw
    roi, X, Y = P.grid(-neck_w * 1.2, g.mouth_y, neck_w * 1.2, g.chin + 0.8)
    P.rgb[roi] *= (0.55 + 0.45 * np.clip((Y - g.chin + 0.05) / 0.45, 0, 1))[..., None]

    # --- ears (the head covers their inner half)
    for s in (-1, 1):
        ex_ = s * (g.half_width(np.array(g.eye_y + 0.1)) - 0.02)
        ear = _ellipse(ex_ + s * 0.05, g.eye_y + 0.12, 0.12, 0.25, angle=s * 0.15)
        P.paint([ear], skin * 0.9, alpha=True)
        P.shade([_ellipse(ex_ + s * 0.07, g.eye_y + 0.12, 0.06, 0.16, angle=s * 0.15)], 0.75, blur=0.02)
        roi, X, Y = P.grid(ex_ - 0.2, g.eye_y - 0.2, ex_ + 0.25, g.eye_y + 0.45)
        P.depth[roi] = np.maximum(P.depth[roi], 0.05 * (P.alpha[roi] > 0))

    # --- head: skin albedo and ellipsoid depth
    head = g.head_outline()
    P.paint([head], skin, alpha=True)
    roi, X, Y = P.grid(-g.a - 0.05, g.top - 0.05, g.a + 0.05, g.chin + 0.05)
    hw = np.maximum(g.half_width(Y), 1e-3)
    r2 = (X / hw) ** 2 * np.clip(1 - ((Y - g.yc) / g.b) ** 2, 0, 1) + ((Y - g.yc) / g.b) ** 2
    zhead = 0.95 * np.sqrt(np.clip(1 - r2, 0, 1))
    inside = r2 < 1
    P.depth[roi] = np.where(inside, np.maximum(zhead, P.depth[roi]), P.depth[roi])

    # relief (depth only; the shading turns it into light and shadow)
    ey, ew = g.eye_y, g.eye_w
    P.bump(0, ey - 0.25, 0.55, 0.08, 0.05)  # brow ridge
    for s in (-1, 1):
        P.bump(s * g.eye_x, ey - 0.02, 0.17, 0.11, -0.12)  # eye sockets
        P.bump(s * g.eye_x, ey + 0.005, ew * 0.75, ew * 0.55, 0.035)  # eyeball
        cheek_y = g.nose_tip - 0.02 - 0.06 * ex.cheek_raise
        P.bump(s * (g.eye_x + 0.06), cheek_y, 0.2, 0.13, 0.04 + 0.05 * ex.cheek_raise)
        P.bump(s * g.nose_w * 0.85, g.nose_tip + 0.01 - 0.02 * ex.nose_wrinkle, 0.055, 0.05, 0.06)  # nose wings
    # nose ridge from between the eyes to the tip
    roi, X, Y = P.grid(-0.3, ey - 0.12, 0.3, g.nose_tip + 0.25)
    frac = np.clip((Y - (ey - 0.08)) / (g.nose_tip - ey + 0.08), 0, None)
    height = np.where(frac <= 1, 0.25 * frac**1.3, 0.25 * np.exp(-((Y - g.nose_tip) / 0.045) ** 2))
    width = 0.045 + 0.045 * np.clip(frac, 0, 1) ** 2 + 0.02 * ident.nose_width
    P.depth[roi] += height * np.exp(-0.5 * (X / width) ** 2)
    P.bump(0, g.mouth_y - 0.01, g.mouth_w * 0.75, 0.07, 0.04 + 0.04 * g.round)  # lips
    P.bump(0, g.chin - 0.13, 0.16, 0.08, 0.035)  # chin
    P.bump(0, g.mouth_y + g.gap * 0.6 + 0.12, 0.14, 0.03, -0.02)  # groove under the lower lip

    # --- cheeks: warm blush, stronger when raised
    blush = skin * np.array([1.05, 0.80, 0.80], np.float32)
    for s in (-1, 1):
        P.tint(s * (g.eye_x + 0.07), g.nose_tip - 0.03 - 0.05 * ex.cheek_raise, 0.13, 0.09, blush,
               0.25 + 0.35 * ex.cheek_raise)

    _paint_eyes(P, g, ident, ex, pose, skin, hair)
    _paint_brows(P, g, ident, ex, skin, hair)
    _paint_nose(P, g, ex, skin, age)
    _paint_mouth(P, g, ident, ex, skin, age)
    # forehead lines (brow raise) and frown lines between the brows (brow lower)
    forehead = max(ex.brow_raise, 0.7 * ex.brow_inner_raise)
    if forehead > 0.02:
        op = min(1.0, forehead * (0.5 + 0.7 * age))
        for y in (ey - 0.50, ey - 0.59, ey - 0.68):
            span = 0.30 if ex.brow_raise >= ex.brow_inner_raise else 0.17
            line = _bezier([-span, y + 0.03], [0, y - 0.03], [span, y + 0.03], 12)
            P.shade([], 1 - 0.28 * op, blur=0.008, lines=[line], line_width=0.012)
    if ex.brow_lower > 0.02:
        for s in (-1, 1):
            line = np.array([[s * 0.045, ey - 0.30], [s * 0.055, ey - 0.17]])
            P.shade([], 1 - 0.35 * ex.brow_lower * (0.6 + 0.6 * age), blur=0.008, lines=[line], line_width=0.014)
    _paint_hair_front(P, g, ident, hair)
    return P


def _paint_eyes(P, g, ident, ex, pose, skin, hair):
    ey, ew = g.eye_y, g.eye_w
    open_up = 1 + 0.55 * max(ex.lid_open, 0) + 0.50 * min(ex.lid_open, 0) - 0.20 * ex.lid_tighten - 0.15 * ex.cheek_raise
    hl = 0.040 * (ew / 0.165) * (1 - 0.45 * ex.lid_tighten - 0.35 * ex.cheek_raise)
    hu = 0.068 * (ew / 0.165) * max(open_up, 0.05)
    hu = hu * (1 - pose.blink) - 0.9 * hl * pose.blink
    iris_col = _palette(IRIS, ident.iris_color)
    lash = np.minimum(hair * 0.5, 0.12) + 0.02
    u = np.linspace(-1, 1, 31)
    for s in (-1, 1):
        cx = s * g.eye_x
        xs = cx + s * ew * u  # u = -1 inner corner, +1 outer corner
        tilt = -0.018 * u  # outer corner a little higher
        y_up = ey + tilt - hu * np.clip(1 - u**2, 0, 1) ** 0.75 * (1 - 0.15 * u)
        y_lo = ey + tilt + hl * np.clip(1 - u**2, 0, 1) ** 0.9 * (1 + 0.2 * u)
        upper = np.stack([xs, y_up], 1)
        lower = np.stack([xs, y_lo], 1)
        eye_poly = _band(upper, lower)
        # lid skin darkens a little around the eye
        P.shade([_band(np.stack([xs, y_up - 0.05 - 0.02 * max(open_up, 0)], 1), lower)], 0.78, blur=0.025)
        roi, eye_mask = P.mask([eye_poly])
        if roi is None:
            continue
        white = np.array([0.93, 0.90, 0.88], np.float32) * (0.85 + 0.15 * skin / skin.max())
        P.rgb[roi] = P.rgb[roi] * (1 - eye_mask[..., None]) + white * eye_mask[..., None]
        # iris and pupil, clipped to the eye opening
        ir = 0.066 * (ew / 0.165)
        icx, icy = cx + 0.045 * pose.gaze_x, ey + 0.004 + 0.025 * pose.gaze_y
        X, Y = P.coords(roi)
        d = np.sqrt((X - icx) ** 2 + (Y - icy) ** 2) / ir
        aa = 1.5 / (P.k * ir)
        iris_m = np.clip((1 - d) / aa + 0.5, 0, 1) * eye_mask
        col = iris_col * (0.6 + 0.5 * np.clip(d, 0, 1))[..., None] * (1 - 0.45 * np.clip((d - 0.8) / 0.2, 0, 1))[..., None]
        P.rgb[roi] = P.rgb[roi] * (1 - iris_m[..., None]) + col * iris_m[..., None]
        pupil_m = np.clip((0.42 - d) / aa + 0.5, 0, 1) * eye_mask
        P.rgb[roi] = P.rgb[roi] * (1 - pupil_m[..., None]) + np.float32(0.03) * pupil_m[..., None]
        dh = np.sqrt((X - icx + 0.35 * ir) ** 2 + (Y - icy + 0.35 * ir) ** 2) / ir
        hi_m = np.clip((0.16 - dh) / aa + 0.5, 0, 1) * eye_mask
        P.rgb[roi] = P.rgb[roi] * (1 - 0.85 * hi_m[..., None]) + np.float32(0.97) * 0.85 * hi_m[..., None]
        # shadow of the upper lid on the eyeball
        sh = np.clip(1 - (Y - np.interp(X * s, xs * s, y_up)) / 0.03, 0, 1) * eye_mask
        P.rgb[roi] *= (1 - 0.35 * sh)[..., None]
        # lash line (thicker towards the outer corner), lid crease, lower lid
        th = 0.014 + 0.012 * (u + 1) / 2
        P.paint([_band(upper, np.stack([xs, y_up - th * np.clip(1 - u**2, 0.25, 1) ** 0.3], 1)[::1])], lash)
        P.paint([], lash, lines=[upper[:: 1]], line_width=0.01)
        crease = np.stack([xs, y_up - (0.045 + 0.02 * max(open_up, 0)) * np.clip(1 - u**2, 0, 1) ** 0.6 - 0.005], 1)
        P.shade([], 0.78, blur=0.008, lines=[crease[3:-3]], line_width=0.012)
        P.shade([], 0.85, blur=0.006, lines=[lower], line_width=0.008)
        under = np.stack([xs, y_lo + 0.035 + 0.01 * u], 1)
        P.shade([], 1 - (0.06 + 0.25 * ex.cheek_raise + 0.15 * ex.lid_tighten) * (0.6 + 0.6 * ident.age_lines),
                blur=0.01, lines=[under[5:-5]], line_width=0.014)


def _paint_brows(P, g, ident, ex, skin, hair):
    brow_col = hair * 0.8 + skin * 0.2 if ident.hair_color < 0.75 else hair * 0.55 + 0.1
    brow_col = np.minimum(brow_col, skin * 0.45)  # brows always darker than the skin around them
    u = np.linspace(0, 1, 24)
    for s in (-1, 1):
        xi = 0.09 - 0.04 * ex.brow_lower
        x = s * (xi + (g.eye_x + g.eye_w + 0.05 - xi) * u)
        y = g.eye_y - 0.20 - 0.055 * np.sin(np.pi * np.clip(u / 0.75, 0, 1) * 0.5) * (1 - 0.4 * np.clip((u - 0.75) / 0.25, 0, 1))
        y = y + 0.04 * np.clip((u - 0.7) / 0.3, 0, 1) ** 2
        y = y - 0.10 * ex.brow_raise * (0.8 + 0.2 * u) - 0.11 * ex.brow_inner_raise * (1 - u) ** 1.6
        y = y + 0.075 * ex.brow_lower * (1 - 0.6 * u) - 0.035 * ex.brow_inner_raise * ex.brow_lower * (1 - u)
        th = (0.035 + 0.035 * ident.brow_thickness) * (1 - 0.5 * u) + 0.01
        top = np.stack([x, y - 0.55 * th], 1)
        bot = np.stack([x, y + 0.45 * th], 1)
        P.paint([_band(top, bot)], brow_col, opacity=0.92, blur=0.008)


def _paint_nose(P, g, ex, skin, age):
    tip, nw = g.nose_tip, g.nose_w
    lift = 0.025 * ex.nose_wrinkle
    dark = skin * 0.3
    for s in (-1, 1):
        nostril = _ellipse(s * nw * 0.45, tip + 0.035 - lift, 0.036, 0.017, angle=-s * 0.35)
        P.paint([nostril], dark, opacity=0.85, blur=0.006)
        wing = _bezier([s * nw * 0.55, tip - 0.07 - lift], [s * nw * 1.25, tip - 0.02 - lift], [s * nw * 0.6, tip + 0.05 - lift], 14)
        P.shade([], 0.72, blur=0.01, lines=[wing], line_width=0.014)
    if ex.nose_wrinkle > 0.02:
        for y in (g.eye_y + 0.07, g.eye_y + 0.11, g.eye_y + 0.15):
            line = _bezier([-0.07, y + 0.01], [0, y - 0.015], [0.07, y + 0.01], 8)
            P.shade([], 1 - 0.4 * ex.nose_wrinkle, blur=0.007, lines=[line], line_width=0.011)


def _paint_mouth(P, g, ident, ex, skin, age):
    iu, il, ou, ol = g.lips()
    lip_col = skin * np.array([0.82, 0.56, 0.56], np.float32) * (0.88 + 0.2 * ident.lip_color)
    lip_col = np.clip(lip_col + np.array([0.06, 0.0, 0.01], np.float32), 0, 1)
    # nasolabial folds: deeper with smiles, cheek raise and disgust
    fold = min(1.0, 0.15 + 0.25 * age + 0.5 * ex.cheek_raise + 0.35 * ex.lip_corner_up + 0.45 * ex.nose_wrinkle
               + 0.3 * ex.upper_lip_raise)
    cn = g.corners()
    for s, c in ((-1, cn[0]), (1, cn[1])):
        start = [s * (g.nose_w + 0.04), g.nose_tip - 0.03 - 0.02 * ex.nose_wrinkle]
        end = [c[0] + s * 0.07, c[1] + 0.05]
        ctrl = [s * (g.nose_w + 0.16 + 0.03 * ex.cheek_raise), (start[1] + end[1]) / 2 - 0.02]
        P.shade([], 1 - 0.35 * fold, blur=0.014, lines=[_bezier(start, ctrl, end, 16)], line_width=0.018)
    # mouth interior: dark cavity, teeth fixed to the skull (upper) and the jaw (lower), tongue
    if g.gap > 0.004:
        cavity = _band(iu, il)
        roi, m = P.mask([cavity])
        if roi is not None:
            P.rgb[roi] = P.rgb[roi] * (1 - m[..., None]) + np.array([0.20, 0.06, 0.06], np.float32) * m[..., None]
            teeth_col = np.array([0.92, 0.89, 0.82], np.float32)
            tw = min(g.mouth_w * 0.85, 0.21)
            t = np.linspace(-1, 1, 17)
            up_edge = g.mouth_y + 0.035 - 0.025 * t**2
            upper_teeth = np.concatenate([np.stack([t * tw, up_edge], 1)[::-1],
                                          [[-tw, g.mouth_y - 0.2], [tw, g.mouth_y - 0.2]]])
            lo_top = g.mouth_y + 0.6 * g.gap - 0.03 + 0.02 * t**2
            lower_teeth = np.concatenate([np.stack([t * tw * 0.9, lo_top], 1), [[tw, g.mouth_y + 0.4], [-tw, g.mouth_y + 0.4]]])
            tongue = _ellipse(0, g.mouth_y + 0.6 * g.gap + 0.01, g.mouth_w * 0.55, 0.06)
            for poly, col, op in ((tongue, np.array([0.62, 0.25, 0.25], np.float32), 0.9), (upper_teeth, teeth_col, 1.0),
                                  (lower_teeth, teeth_col * 0.9, 0.9)):
                r2, m2 = P.mask([poly])
                if r2 is None:
                    continue
                # intersect the two boxes
                j0, j1 = max(roi[0].start, r2[0].start), min(roi[0].stop, r2[0].stop)
                i0, i1 = max(roi[1].start, r2[1].start), min(roi[1].stop, r2[1].stop)
                if j1 <= j0 or i1 <= i0:
                    continue
                mm = (m[j0 - roi[0].start:j1 - roi[0].start, i0 - roi[1].start:i1 - roi[1].start]
                      * m2[j0 - r2[0].start:j1 - r2[0].start, i0 - r2[1].start:i1 - r2[1].start] * op)
                sub = (slice(j0, j1), slice(i0, i1))
                P.rgb[sub] = P.rgb[sub] * (1 - mm[..., None]) + col * mm[..., None]
            # shadow at the top of the cavity (under the upper lip)
            P.shade([], 0.6, blur=0.012, lines=[iu], line_width=0.02)
    # lips
    P.paint([_band(ou, iu)], lip_col, blur=0.004)
    P.paint([_band(il, ol)], lip_col * 1.05, blur=0.004)
    # lip line and corners
    P.shade([], 0.45 if g.gap <= 0.004 else 0.7, blur=0.005, lines=[iu[1:-1]], line_width=0.012)
    for c in cn:
        P.shade([_ellipse(c[0], c[1], 0.018, 0.012)], 0.55, blur=0.01)
    # philtrum: a soft shadow from the nose to the cupid's bow
    P.shade([np.array([[-0.035, g.nose_tip + 0.07], [0.035, g.nose_tip + 0.07], [0.04, ou[len(ou) // 2, 1] - 0.005],
                       [-0.04, ou[len(ou) // 2, 1] - 0.005]])], 0.93, blur=0.015)


def _paint_hair_front(P, g, ident, hair):
    """Scalp hair as one polygon: around the crown, down the sides (over the ears for long styles),
    back up along the face edge and across the forehead along the hairline (or a fringe)."""
    vol = 0.07 + 0.10 * ident.hair_style
    fringe = ident.hair_fringe
    part = -0.25 if fringe < 0.5 else 0.2  # side of the parting
    hairline_y = g.eye_y - 0.62 + 0.30 * max(fringe - 0.6, 0) / 0.4
    temple_y = g.eye_y - 0.15
    long_hair = ident.hair_style > 0.25  # same threshold as the hair behind the head: no seam between them
    end_y = min(g.eye_y + 0.1 + 2.1 * (ident.hair_style - 0.25), g.chin + 0.35) if long_hair else temple_y + 0.12
    # outer contour, right side, from the crown down to the end
    ra, rb = g.a + vol, g.b + vol
    theta = np.linspace(0, np.pi / 2, 36)  # the crown, sampled by angle so the top stays round
    ys_low = np.linspace(g.yc, end_y, 16)[1:] if end_y > g.yc else np.zeros(0)
    x_out = np.concatenate([ra * np.sin(theta), ra - 0.06 * (ys_low - g.yc)])
    y_out = np.concatenate([g.yc - rb * np.cos(theta), ys_low])
    keep = y_out <= end_y
    x_out, y_out = x_out[keep], y_out[keep]
    # inner edge, right side, from the end up to the temple (along the face edge; over the ears)
    yi = np.linspace(end_y, temple_y, 24)
    x_in = np.maximum(g.half_width(np.minimum(yi, g.chin - 0.25)) - (0.08 if long_hair else 0.02), 0.45)
    if not long_hair:
        x_in = np.maximum(x_in, x_out[-1] - 0.2)
    bottom = _bezier([x_out[-1], end_y], [(x_out[-1] + x_in[0]) / 2, end_y + 0.08], [x_in[0], end_y - 0.06], 8)
    yi[0] = end_y - 0.06
    right = np.concatenate([np.stack([x_out, y_out], 1), bottom[1:-1], np.stack([x_in, yi], 1)])
    # hairline across the forehead, right temple -> left temple
    xs = np.linspace(1, -1, 60)
    half = float(x_in[-1])
    x_line = xs * half
    dip = np.exp(-((x_line - part) / 0.35) ** 2)
    y_line = hairline_y + (temple_y - hairline_y) * np.abs(xs) ** 2.5 - 0.06 * dip * (fringe < 0.6)
    if fringe > 0.6:  # a fringe: irregular lower edge
        y_line = y_line + 0.025 * np.sin(xs * 17.0 + 10 * ident.hair_color) * (1 - np.abs(xs))
    hairline = np.stack([x_line, y_line], 1)
    left = right[::-1] * np.array([-1, 1])
    cap = np.concatenate([right, hairline, left])
    P.paint([cap], hair, blur=0.006, alpha=True)
    roi, m = P.mask([cap])
    if roi is None:
        return
    # strands: thin darker and lighter curves from the parting outwards
    rng = np.random.default_rng(int(ident.hair_color * 1e6) ^ int(ident.hair_fringe * 1e6))
    lines_d, lines_l = [], []
    for i in range(40):
        side = 1 if i % 2 else -1
        reach = rng.uniform(0.2, 1.0)
        top = np.array([part + 0.05 * rng.normal(), g.top - vol * 0.6])
        end_x = side * (ra * reach)
        end = np.array([end_x, float(np.interp(abs(end_x), [0, half, ra + 0.1], [hairline_y, temple_y, end_y]))])
        ctrl = np.array([end_x * 1.05, g.top + 0.2])
        (lines_d if i % 3 else lines_l).append(_bezier(top, ctrl, end, 14))
    for lines, factor in ((lines_d, 0.7), (lines_l, 1.3)):
        r2, ml = P.mask([], blur=0.004, lines=lines, line_width=0.008)
        if r2 is None:
            continue
        j0, j1 = max(roi[0].start, r2[0].start), min(roi[0].stop, r2[0].stop)
        i0, i1 = max(roi[1].start, r2[1].start), min(roi[1].stop, r2[1].stop)
        mm = (m[j0 - roi[0].start:j1 - roi[0].start, i0 - roi[1].start:i1 - roi[1].start]
              * ml[j0 - r2[0].start:j1 - r2[0].start, i0 - r2[1].start:i1 - r2[1].start] * 0.5)
        sub = (slice(j0, j1), slice(i0, i1))
        P.rgb[sub] = np.clip(P.rgb[sub] * (1 - mm[..., None] * (1 - factor)), 0, 1)
    # the hair sits a little above the scalp
    P.depth[roi] += 0.06 * cv2.GaussianBlur(m, (0, 0), 0.03 * P.k)


def _shade(P: _Painter, rot: np.ndarray, light) -> None:
    """Lambert + ambient + Blinn specular from the depth map, light given in camera space."""
    ys, xs = np.nonzero(P.alpha.max(axis=1) > 0)[0], np.nonzero(P.alpha.max(axis=0) > 0)[0]
    if len(ys) == 0:
        return
    roi = (slice(ys[0], ys[-1] + 1), slice(xs[0], xs[-1] + 1))
    # smooth the depth so that layer edges (hair over skin, shirt) shade as soft ramps, not lines
    depth = cv2.GaussianBlur(P.depth[roi], (0, 0), max(0.8, 0.012 * P.k)) * np.float32(P.k)
    gx = cv2.Sobel(depth, cv2.CV_32F, 1, 0, ksize=1, scale=0.5)
    gy = cv2.Sobel(depth, cv2.CV_32F, 0, 1, ksize=1, scale=0.5)
    np.clip(gx, -2.5, 2.5, out=gx)
    np.clip(gy, -2.5, 2.5, out=gy)
    inv = 1.0 / np.sqrt(gx * gx + gy * gy + 1.0)  # normal = (-gx, -gy, 1) / |.|
    az, el = math.radians(light.azimuth), math.radians(light.elevation)
    l_cam = np.array([math.sin(az) * math.cos(el), -math.sin(el), math.cos(az) * math.cos(el)])
    l_head = (rot.T @ l_cam).astype(np.float32)
    v_head = rot.T @ np.array([0.0, 0.0, 1.0])
    h = l_head + v_head
    h = (h / np.linalg.norm(h)).astype(np.float32)
    diff = np.maximum((l_head[2] - gx * l_head[0] - gy * l_head[1]) * inv, 0)
    spec = np.maximum((h[2] - gx * h[0] - gy * h[1]) * inv, 0)
    for _ in range(5):  # spec ** 32, a tight highlight
        spec *= spec
    w = light.warmth - 0.5
    light_col = np.array([1 + 0.12 * w, 1.0, 1 - 0.2 * w], np.float32)
    shade = np.float32(light.ambient) + np.float32(light.intensity) * diff
    out = P.rgb[roi] * shade[..., None] + (0.12 * spec)[..., None]
    P.rgb[roi] = np.clip(out * light_col, 0, 1)


def rotation(pose: Pose) -> np.ndarray:
    """Head rotation (camera <- head), y down, z towards the camera: roll @ pitch @ yaw."""
    y, p, r = (math.radians(v) for v in (pose.yaw, pose.pitch, pose.roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


def face_units_to_px(frame_size: tuple[int, int]) -> float:
    """Default head half-width in pixels for a portrait framing of an ``(w, h)`` frame."""
    return 0.25 * min(frame_size)


def render(state: FaceState, frame_size: tuple[int, int], center: tuple[float, float] | None = None,
           unit_px: float | None = None, background: np.ndarray | None = None, supersample: int = 2) -> Rendered:
    """Render ``state`` into a frame of ``frame_size`` = (width, height) pixels.

    ``center``: where the head centre (between the eyes) goes, default the frame centre, moved by
    ``pose.tx/ty`` (fractions of the head width); ``unit_px``: head half-width in pixels (times
    ``pose.scale``); ``background``: [H, W, 3] uint8 image at the frame size, default a plain grey.
    """
    width, height = int(frame_size[0]), int(frame_size[1])
    if width < 16 or height < 16:
        raise ValueError(f"frame size must be at least 16x16, got {width}x{height}")
    ss = int(supersample)
    pose = state.pose
    unit = (unit_px if unit_px is not None else face_units_to_px((width, height))) * pose.scale
    cx = (center[0] if center is not None else (width - 1) / 2) + pose.tx * 2 * unit
    cy = (center[1] if center is not None else (height - 1) / 2) + pose.ty * 2 * unit
    g = _Geometry(state.identity, state.expression, state.speech, pose)
    rot = rotation(pose)
    k = unit * ss * 1.0
    # screen (supersampled) <- canonical: s = c_ss + unit_ss * R[:2] @ (x, y - eye_y, z)
    unit_ss = unit * ss
    c_ss = np.array([(cx + 0.5) * ss - 0.5, (cy + 0.5) * ss - 0.5])
    pivot = np.array([0.0, g.eye_y, 0.0])  # the head turns around the point between the eyes
    # paint only the part of the face plane that can land in the frame (depth parallax < 0.5 units)
    frame_q = (np.array([[0, 0], [width * ss, 0], [0, height * ss], [width * ss, height * ss]]) - c_ss) / unit_ss
    plane = frame_q @ np.linalg.inv(rot[:2, :2]).T + pivot[:2]
    window = (plane[:, 0].min() - 0.5, plane[:, 1].min() - 0.5, plane[:, 0].max() + 0.5, plane[:, 1].max() + 0.5)
    P = _paint_canonical(state, k, g, window)
    _shade(P, rot, state.light)

    def forward(pts_xy: np.ndarray) -> np.ndarray:
        pts_xy = np.asarray(pts_xy, np.float64)
        pxl = P.px(pts_xy).astype(np.float32)
        z = cv2.remap(P.depth, pxl[:, 0].reshape(-1, 1), pxl[:, 1].reshape(-1, 1), cv2.INTER_LINEAR)[:, 0]
        p3 = np.concatenate([pts_xy, z[:, None]], 1) - pivot
        s = (rot @ p3.T).T[:, :2] * unit_ss + c_ss
        return ((s + 0.5) / ss - 0.5).astype(np.float32)

    # region of the frame the face can cover (whole output pixels, so the ss block grid lines up)
    cx0, cy0 = P.x0, P.y0
    cx1, cy1 = P.x0 + (P.w - 1) / P.k, P.y0 + (P.h - 1) / P.k
    corners = np.array([[cx0, cy0, 0], [cx1, cy0, 0], [cx1, cy1, 0], [cx0, cy1, 0]]) - pivot
    corners = np.concatenate([corners + [0, 0, 1.2], corners - [0, 0, 0.5]])
    sc = ((rot @ corners.T).T[:, :2] * unit_ss + c_ss) / ss
    x0, y0 = int(max(np.floor(sc[:, 0].min()), 0)), int(max(np.floor(sc[:, 1].min()), 0))
    x1, y1 = int(min(np.ceil(sc[:, 0].max()) + 1, width)), int(min(np.ceil(sc[:, 1].max()) + 1, height))

    if background is None:
        image = np.full((height, width, 3), 128, np.uint8)
    else:
        if background.shape != (height, width, 3):
            raise ValueError(f"background is {background.shape}, frame is {width}x{height} RGB")
        image = background.copy()
    if x1 > x0 and y1 > y0:
        us, vs = np.meshgrid(np.arange(x0 * ss, x1 * ss, dtype=np.float32), np.arange(y0 * ss, y1 * ss, dtype=np.float32))
        qx = (us - np.float32(c_ss[0])) / np.float32(unit_ss)
        qy = (vs - np.float32(c_ss[1])) / np.float32(unit_ss)
        # solve R[:2] @ (x, y - ey, z(x, y)) = q for (x, y) by damped fixed-point steps on the depth map
        a_inv = np.linalg.inv(rot[:2, :2]).astype(np.float32)
        b = rot[:2, 2].astype(np.float32)
        z = np.zeros_like(qx)

        def canon_px(z):
            rx, ry = qx - z * b[0], qy - z * b[1]
            x = a_inv[0, 0] * rx + a_inv[0, 1] * ry
            y = a_inv[1, 0] * rx + a_inv[1, 1] * ry + np.float32(g.eye_y)
            return (x - np.float32(P.x0)) * np.float32(P.k), (y - np.float32(P.y0)) * np.float32(P.k)

        for _ in range(4):
            mx, my = canon_px(z)
            z = 0.5 * z + 0.5 * cv2.remap(P.depth, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        mx, my = canon_px(z)
        rgba = np.concatenate([P.rgb, P.alpha[..., None]], -1)
        warped = cv2.remap(rgba, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        if ss > 1:
            warped = cv2.resize(warped, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
        alpha = warped[..., 3:4]
        roi = image[y0:y1, x0:x1].astype(np.float32) / 255.0
        out = roi * (1 - alpha) + warped[..., :3] * alpha
        image[y0:y1, x0:x1] = np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)

    # landmarks
    eyes = np.array([[-g.eye_x, g.eye_y], [g.eye_x, g.eye_y]])
    nose = np.array([[0.0, g.nose_tip]])
    lm = forward(np.concatenate([eyes, nose, g.corners()]))
    alm = forward(np.concatenate([eyes, nose, g.neutral_corners()]))
    box_pts = forward(np.array([[-g.a, g.eye_y - 0.55], [g.a, g.eye_y - 0.55], [-g.a * 0.7, g.chin], [g.a * 0.7, g.chin],
                                [-g.a, g.eye_y], [g.a, g.eye_y]]))
    box = np.array([box_pts[:, 0].min(), box_pts[:, 1].min(), box_pts[:, 0].max(), box_pts[:, 1].max()], np.float32)
    return Rendered(image=image, landmarks=lm, align_landmarks=alm, box=box)


def render_portrait(state: FaceState, size: int, background: np.ndarray | None = None,
                    supersample: int = 2, margin: float = 0.0) -> Rendered:
    """A portrait framed like the aligned crop of ``sserd_cli.faces.align``: the frontal 5 points are
    fitted to the crop template, so aligning it is a near-identity warp that keeps it sharp.

    ``margin`` (fraction of ``size``) adds real picture around the crop window on every side, so that
    aligning a turned or rolled head never has to invent pixels at the border; the frame is then
    ``round(size * (1 + 2 * margin))`` square and ``background`` must have that size.
    """
    from ...faces.align import canonical_landmarks, umeyama_similarity

    pad = int(round(size * margin))
    g = _Geometry(state.identity, Expression(), Speech(), Pose())
    pts = np.array([[-g.eye_x, 0.0], [g.eye_x, 0.0], [0.0, g.nose_tip - g.eye_y],
                    [-g.mouth_w0, g.mouth_y - g.eye_y], [g.mouth_w0, g.mouth_y - g.eye_y]])
    m = umeyama_similarity(pts, canonical_landmarks(size) + pad)  # unit face coordinates -> frame pixels
    unit = float(np.hypot(m[0, 0], m[1, 0]))
    return render(state, (size + 2 * pad, size + 2 * pad), center=(float(m[0, 2]), float(m[1, 2])), unit_px=unit,
                  background=background, supersample=supersample)
