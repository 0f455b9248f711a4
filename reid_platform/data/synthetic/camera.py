"""What one camera does to every image it takes: light, colour, optics, framing and its scene.

Each camera is sampled once from its own seeded generator. What varies between cameras:

- illumination gain, a per-channel colour cast, gamma and contrast (indoor/outdoor, white balance);
- optical blur, sensor noise and JPEG quality;
- framing: how much of the crop height the person fills (scale) and a horizontal offset bias;
- viewpoint: each camera sees people mostly from some directions (front, back, left or right
  side), which changes which accessories and prints are visible;
- its scene: wall and floor colours, horizon height, how cluttered the background is and which
  colours the clutter has (often the same colours as clothing);
- how often a person is partly occluded (by a bench or car at the bottom, a pole, or another
  passer-by at the side).

`finish_image` applies the photometric part to a rendered float image and returns uint8 pixels.
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from reid_platform.data.synthetic.draw import Colour, FloatArray, gaussian_blur
from reid_platform.data.synthetic.identity import CLOTHING_PALETTE

View = Literal["front", "back", "left", "right"]
VIEWS: tuple[View, ...] = ("front", "back", "left", "right")


@dataclass(frozen=True, slots=True)
class CameraConditions:
    """One camera's fixed conditions; per-image jitter is added around them when rendering."""

    gain: float  # overall illumination multiplier
    cast: Colour  # per-channel colour multipliers (white balance)
    gamma: float
    contrast: float
    blur: float  # Gaussian sigma in pixels at 128 rows (scaled with the image height)
    noise: float  # standard deviation of additive noise, in [0, 1] units
    jpeg_quality: int
    scale: float  # fraction of the crop height a person of stature 1 fills
    shift: float  # mean horizontal offset of the person, fraction of the width
    view_weights: tuple[float, float, float, float]  # front, back, left, right
    wall: Colour
    floor: Colour
    horizon: float  # floor starts at this fraction of the height
    clutter: int  # number of background objects per image
    clutter_colours: tuple[Colour, ...]
    occlusion: float  # probability that an image is occluded


def _colour(rng: np.random.Generator, low: float, high: float) -> Colour:
    r, g, b = rng.uniform(low, high) * np.exp(rng.normal(0.0, 0.15, size=3))
    return (float(min(r, 1.0)), float(min(g, 1.0)), float(min(b, 1.0)))


def sample_camera(rng: np.random.Generator) -> CameraConditions:
    """Draw one camera's conditions from `rng`."""
    cast = np.exp(rng.normal(0.0, 0.12, size=3))
    cast /= cast.mean()
    views = rng.dirichlet(np.full(4, 0.7)) + 0.02
    w = views / views.sum()
    palette = [colour for colour, _ in CLOTHING_PALETTE]
    chosen = rng.choice(len(palette), size=4, replace=False)
    return CameraConditions(
        gain=float(rng.uniform(0.6, 1.3)),
        cast=(float(cast[0]), float(cast[1]), float(cast[2])),
        gamma=float(rng.uniform(0.8, 1.25)),
        contrast=float(rng.uniform(0.7, 1.1)),
        blur=float(rng.uniform(0.0, 1.4)),
        noise=float(rng.uniform(0.01, 0.04)),
        jpeg_quality=int(rng.integers(70, 96)),
        scale=float(rng.uniform(0.8, 0.95)),
        shift=float(rng.normal(0.0, 0.05)),
        view_weights=(float(w[0]), float(w[1]), float(w[2]), float(w[3])),
        wall=_colour(rng, 0.25, 0.75),
        floor=_colour(rng, 0.2, 0.6),
        horizon=float(rng.uniform(0.45, 0.8)),
        clutter=int(rng.integers(2, 8)),
        clutter_colours=(*(palette[int(i)] for i in chosen), _colour(rng, 0.2, 0.8)),
        occlusion=float(rng.uniform(0.05, 0.35)),
    )


def sample_view(rng: np.random.Generator, camera: CameraConditions) -> View:
    """The direction a person is seen from in one image of this camera."""
    return VIEWS[int(rng.choice(4, p=np.asarray(camera.view_weights)))]


def finish_image(
    image: FloatArray, camera: CameraConditions, rng: np.random.Generator
) -> NDArray[np.uint8]:
    """Apply illumination, colour cast, gamma, contrast, blur and noise; `(H, W, 3)` uint8 out.

    The camera's values get a small per-image jitter (clouds, auto-exposure).
    """
    height = image.shape[0]
    gain = camera.gain * rng.uniform(0.88, 1.12)
    cast = np.asarray(camera.cast, dtype=np.float32) * np.exp(rng.normal(0.0, 0.03, size=3))
    out = np.clip(image * (gain * cast).astype(np.float32), 0.0, 1.0)
    out **= np.float32(camera.gamma)
    out = (out - 0.5) * np.float32(camera.contrast) + 0.5
    out = gaussian_blur(out, camera.blur * height / 128.0 * rng.uniform(0.8, 1.2))
    noise = rng.normal(0.0, camera.noise, size=out.shape).astype(np.float32)
    out += noise
    return np.clip(out * 255.0 + 0.5, 0.0, 255.0).astype(np.uint8)
