"""What makes one synthetic person look like themself: body shape, clothing and accessories.

An identity is sampled once from its own seeded generator and then drawn in every image of it.
What varies between identities:

- body shape: stature, shoulder and hip width, head size, leg length (fractions of body height);
- skin tone, hair colour and length;
- upper body: colour, long or short sleeves, a pattern (plain, horizontal stripes, checks, or a
  chest logo that may also be printed on the back) in a second colour;
- lower body: colour, trousers / shorts / skirt; shoe colour;
- accessories: backpack (seen whole from behind, as straps from the front), shoulder bag (on
  one side, so it swaps sides between front and back views), hat or cap.

Colours are drawn from one shared clothing palette weighted like real street clothing (black,
grey, navy, denim and white dominate) with a small per-identity tint, so many identities share
their main colours and a colour histogram alone cannot tell them apart; the fine cues (pattern,
accessories, proportions) must be used, and some of them only show from some viewpoints.
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np

from reid_platform.data.synthetic.draw import Colour

UpperPattern = Literal["plain", "stripes", "checks", "logo"]
LowerKind = Literal["trousers", "shorts", "skirt"]

# (RGB in [0, 1], weight): street clothing, dominated by dark and neutral colours.
CLOTHING_PALETTE: tuple[tuple[Colour, float], ...] = (
    ((0.08, 0.08, 0.09), 0.17),  # black
    ((0.30, 0.30, 0.32), 0.10),  # dark grey
    ((0.62, 0.62, 0.62), 0.07),  # light grey
    ((0.88, 0.88, 0.85), 0.10),  # white
    ((0.12, 0.15, 0.34), 0.09),  # navy
    ((0.26, 0.36, 0.55), 0.10),  # denim
    ((0.68, 0.13, 0.13), 0.06),  # red
    ((0.20, 0.42, 0.24), 0.05),  # green
    ((0.63, 0.56, 0.40), 0.06),  # khaki
    ((0.40, 0.27, 0.17), 0.05),  # brown
    ((0.84, 0.74, 0.22), 0.04),  # yellow
    ((0.88, 0.55, 0.64), 0.04),  # pink
    ((0.40, 0.22, 0.50), 0.03),  # purple
    ((0.88, 0.48, 0.15), 0.04),  # orange
)
# Lower-body garments favour dark, denim and khaki.
LOWER_WEIGHTS: tuple[float, ...] = (0.26, 0.1, 0.04, 0.02, 0.12, 0.24, 0.02, 0.02, 0.1, 0.05)
LOWER_WEIGHTS += (0.01, 0.01, 0.005, 0.005)
SKIN_TONES: tuple[Colour, ...] = (
    (0.93, 0.78, 0.66),
    (0.85, 0.66, 0.52),
    (0.72, 0.52, 0.38),
    (0.55, 0.38, 0.26),
    (0.38, 0.26, 0.18),
)
HAIR_COLOURS: tuple[Colour, ...] = (
    (0.06, 0.05, 0.05),
    (0.20, 0.13, 0.08),
    (0.42, 0.30, 0.18),
    (0.78, 0.66, 0.42),
    (0.55, 0.55, 0.55),
)
SHOE_COLOURS: tuple[Colour, ...] = (
    (0.07, 0.07, 0.07),
    (0.90, 0.90, 0.90),
    (0.35, 0.24, 0.15),
    (0.45, 0.45, 0.47),
)


@dataclass(frozen=True, slots=True)
class Accessory:
    """A carried or worn item with its colour; `side` is -1 (left) or +1 (right) for a bag."""

    colour: Colour
    side: int = 1


@dataclass(frozen=True, slots=True)
class IdentityAppearance:
    """Everything fixed about one identity; lengths are fractions of the drawn body height."""

    stature: float  # body height relative to the camera's nominal person height
    shoulder: float  # shoulder half-width
    hip: float  # hip half-width
    head: float  # head vertical radius
    leg: float  # hip-to-sole length
    limb: float  # limb thickness multiplier
    skin: Colour
    hair: Colour
    long_hair: bool
    upper: Colour
    upper_second: Colour
    upper_pattern: UpperPattern
    pattern_period: float  # stripe / check period
    back_print: bool  # the logo is also printed on the back
    long_sleeves: bool
    lower: Colour
    lower_kind: LowerKind
    shoes: Colour
    backpack: Accessory | None
    bag: Accessory | None
    hat: Accessory | None


def _pick(rng: np.random.Generator, weights: tuple[float, ...]) -> int:
    p = np.asarray(weights, dtype=np.float64)
    return int(rng.choice(len(p), p=p / p.sum()))


def _tint(rng: np.random.Generator, colour: Colour, spread: float = 0.05) -> Colour:
    """The colour with a small per-identity brightness and hue shift, clipped to [0, 1]."""
    scale = rng.uniform(0.88, 1.12) * np.exp(rng.normal(0.0, spread, size=3))
    r, g, b = np.clip(np.asarray(colour) * scale, 0.0, 1.0)
    return (float(r), float(g), float(b))


def _clothing(rng: np.random.Generator, weights: tuple[float, ...] | None = None) -> Colour:
    """A tinted palette colour, drawn with the palette's weights unless others are given."""
    weights = weights or tuple(weight for _, weight in CLOTHING_PALETTE)
    return _tint(rng, CLOTHING_PALETTE[_pick(rng, weights)][0])


def _second_colour(rng: np.random.Generator, first: Colour) -> Colour:
    """A pattern colour that visibly differs from the garment colour."""
    for _ in range(8):
        colour = _clothing(rng)
        if float(np.abs(np.subtract(colour, first)).sum()) > 0.45:
            return colour
    return _tint(rng, (0.9, 0.9, 0.88) if sum(first) < 1.2 else (0.08, 0.08, 0.09))


def _accessory(rng: np.random.Generator, probability: float) -> Accessory | None:
    if rng.random() >= probability:
        return None
    return Accessory(colour=_clothing(rng), side=1 if rng.random() < 0.5 else -1)


def sample_identity(rng: np.random.Generator) -> IdentityAppearance:
    """Draw one identity's appearance from `rng` (the same generator state, the same person)."""
    width = rng.uniform(0.85, 1.2)
    upper = _clothing(rng)
    pattern: UpperPattern = ("plain", "stripes", "checks", "logo")[_pick(rng, (45, 20, 15, 20))]
    lower_kind: LowerKind = ("trousers", "shorts", "skirt")[_pick(rng, (70, 17, 13))]
    return IdentityAppearance(
        stature=rng.uniform(0.9, 1.0),
        shoulder=rng.uniform(0.125, 0.16) * width,
        hip=rng.uniform(0.1, 0.13) * width,
        head=rng.uniform(0.058, 0.075),
        leg=rng.uniform(0.45, 0.52),
        limb=width * rng.uniform(0.9, 1.1),
        skin=_tint(rng, SKIN_TONES[int(rng.integers(len(SKIN_TONES)))], 0.03),
        hair=_tint(rng, HAIR_COLOURS[_pick(rng, (40, 25, 15, 10, 10))], 0.03),
        long_hair=bool(rng.random() < 0.3),
        upper=upper,
        upper_second=_second_colour(rng, upper),
        upper_pattern=pattern,
        pattern_period=rng.uniform(0.035, 0.08),
        back_print=bool(rng.random() < 0.35),
        long_sleeves=bool(rng.random() < 0.6),
        lower=_clothing(rng, LOWER_WEIGHTS),
        lower_kind=lower_kind,
        shoes=_tint(rng, SHOE_COLOURS[_pick(rng, (45, 30, 15, 10))], 0.03),
        backpack=_accessory(rng, 0.3),
        bag=_accessory(rng, 0.25),
        hat=_accessory(rng, 0.18),
    )
