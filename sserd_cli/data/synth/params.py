"""Parameters of the synthetic talking-face world, in independent groups.

* :class:`Identity`: who the person is (face shape, skin, hair, eyes, nose, lips); fixed per speaker.
* :class:`Expression`: action-unit-like controls (FACS names in comments); the seven emotions are
  presets on them, scaled by an intensity (:func:`emotion_expression`).
* :class:`Speech`: mouth opening and lip rounding, driven by the audio track.
* :class:`Pose`, :class:`Light`: head pose and lighting, jittered per frame.

Speech and emotion both move the mouth, but through different controls (speech: opening and
rounding; emotion: lip corners, stretch, press, upper-lip raise, a little jaw drop), so keeping the
speech while changing the emotion is a real task. Every group is a flat dataclass of floats so it
round-trips through JSON (:func:`to_dict` / ``Cls(**d)``) and packs into vectors for the oracle.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import numpy as np

from ...emotions import EMOTIONS, emotion_index


@dataclass(frozen=True)
class Identity:
    """Who the person is; every field in [0, 1] (mapped to geometry/colours by the renderer)."""

    face_width: float = 0.5  # head width relative to height
    face_length: float = 0.5  # head height
    jaw_width: float = 0.5  # 0 = pointed chin, 1 = square jaw
    skin_tone: float = 0.5  # 0 = very light .. 1 = very dark
    skin_warmth: float = 0.5  # pink .. olive/yellow undertone
    hair_color: float = 0.5  # palette position: black, dark brown, brown, auburn, blond, grey
    hair_style: float = 0.5  # 0 = very short .. 1 = long
    hair_fringe: float = 0.5  # how far the hair comes down the forehead, and which side it parts
    eye_spacing: float = 0.5
    eye_size: float = 0.5
    iris_color: float = 0.5  # dark brown, brown, hazel, green, blue, grey
    brow_thickness: float = 0.5
    nose_length: float = 0.5
    nose_width: float = 0.5
    mouth_width: float = 0.5
    lip_thickness: float = 0.5
    lip_color: float = 0.5
    age_lines: float = 0.5  # depth of folds and wrinkles
    clothes_hue: float = 0.5  # colour of the shirt

    @staticmethod
    def random(rng: np.random.Generator) -> "Identity":
        values = rng.uniform(0.0, 1.0, size=len(fields(Identity)))
        return Identity(*[float(v) for v in values])


@dataclass(frozen=True)
class Expression:
    """Action-unit-like controls in [0, 1] (lid_open in [-1, 1]); all zero is the neutral face."""

    brow_raise: float = 0.0  # AU1+2: whole brow up
    brow_inner_raise: float = 0.0  # AU1: inner ends up (oblique "sad" brows)
    brow_lower: float = 0.0  # AU4: brows down and together
    lid_open: float = 0.0  # AU5 (+) upper lid raised / (-) drooping upper lid
    lid_tighten: float = 0.0  # AU7: lower lid raised
    cheek_raise: float = 0.0  # AU6
    nose_wrinkle: float = 0.0  # AU9
    upper_lip_raise: float = 0.0  # AU10
    lip_corner_up: float = 0.0  # AU12
    lip_corner_down: float = 0.0  # AU15
    lip_stretch: float = 0.0  # AU20
    lip_press: float = 0.0  # AU24
    jaw_drop: float = 0.0  # AU26 (the emotion's part of mouth opening)


@dataclass(frozen=True)
class Speech:
    """The speech controls: what the audio track moves."""

    mouth_open: float = 0.0  # 0 closed .. 1 wide open (as for "a")
    lip_round: float = 0.0  # 0 spread .. 1 rounded and protruded (as for "u")


@dataclass(frozen=True)
class Pose:
    """Head pose: rotations in degrees, translation as a fraction of the face size, relative scale."""

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    tx: float = 0.0
    ty: float = 0.0
    scale: float = 1.0
    blink: float = 0.0  # 0 open .. 1 closed: a non-emotional lid movement of talking faces
    gaze_x: float = 0.0  # iris offset, -1..1
    gaze_y: float = 0.0


@dataclass(frozen=True)
class Light:
    """Directional light (azimuth/elevation in degrees) plus ambient, intensity and colour temperature."""

    azimuth: float = 20.0
    elevation: float = 25.0
    ambient: float = 0.45
    intensity: float = 0.65
    warmth: float = 0.5  # 0 cool/blue .. 1 warm/orange

    @staticmethod
    def random(rng: np.random.Generator) -> "Light":
        return Light(azimuth=float(rng.uniform(-45, 45)), elevation=float(rng.uniform(0, 45)),
                     ambient=float(rng.uniform(0.35, 0.55)), intensity=float(rng.uniform(0.5, 0.75)),
                     warmth=float(rng.uniform(0.2, 0.8)))


# FACS-based prototypes (Ekman & Friesen's EMFACS emotion predictions), at full intensity.
EMOTION_PRESETS: dict[str, Expression] = {
    "neutral": Expression(),
    "happy": Expression(cheek_raise=0.9, lip_corner_up=1.0, lid_tighten=0.35, lip_stretch=0.25, upper_lip_raise=0.25),
    "angry": Expression(brow_lower=1.0, lid_open=0.35, lid_tighten=0.6, lip_press=0.9, nose_wrinkle=0.2,
                        lip_corner_down=0.25),
    "surprised": Expression(brow_raise=1.0, lid_open=1.0, jaw_drop=0.7),
    "fear": Expression(brow_raise=0.6, brow_inner_raise=0.8, brow_lower=0.45, lid_open=0.9, lip_stretch=1.0,
                       jaw_drop=0.3),
    "sad": Expression(brow_inner_raise=1.0, brow_lower=0.3, lid_open=-0.55, lip_corner_down=1.0, cheek_raise=0.1),
    "disgusted": Expression(nose_wrinkle=1.0, upper_lip_raise=0.9, brow_lower=0.55, lip_corner_down=0.45,
                            lid_tighten=0.45, cheek_raise=0.35),
}
assert tuple(EMOTION_PRESETS) == EMOTIONS


def emotion_expression(emotion: str, intensity: float = 1.0) -> Expression:
    """The preset of ``emotion`` scaled by ``intensity`` (0 = neutral face, 1 = full prototype)."""
    preset = EMOTION_PRESETS[EMOTIONS[emotion_index(emotion)]]
    return Expression(*[getattr(preset, f.name) * float(intensity) for f in fields(Expression)])


def field_names(cls) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def to_vector(obj) -> np.ndarray:
    return np.array([getattr(obj, f.name) for f in fields(obj)], dtype=np.float64)  # exact round trip


def from_vector(cls, vector) -> object:
    return cls(*[float(v) for v in vector])


def to_dict(obj) -> dict:
    return {k: float(v) for k, v in asdict(obj).items()}


@dataclass(frozen=True)
class FaceState:
    """Everything the renderer needs for one face image (the background is separate)."""

    identity: Identity
    expression: Expression = Expression()
    speech: Speech = Speech()
    pose: Pose = Pose()
    light: Light = Light()

    def with_expression(self, expression: Expression) -> "FaceState":
        return replace(self, expression=expression)

    def to_dict(self) -> dict:
        return {"identity": to_dict(self.identity), "expression": to_dict(self.expression),
                "speech": to_dict(self.speech), "pose": to_dict(self.pose), "light": to_dict(self.light)}

    @staticmethod
    def from_dict(d: dict) -> "FaceState":
        return FaceState(identity=Identity(**d["identity"]), expression=Expression(**d["expression"]),
                         speech=Speech(**d["speech"]), pose=Pose(**d["pose"]), light=Light(**d["light"]))
