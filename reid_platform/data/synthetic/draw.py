"""Anti-aliased coverage masks and compositing on float RGB canvases, in plain numpy.

Every shape function returns a coverage mask `(H, W)` in [0, 1] computed from a pixel-centre
grid: 1 inside, 0 outside, a one-pixel linear ramp across the edge (an approximate signed
distance), which keeps thin limbs and stripes from aliasing at 128x64. Canvases are float32
`(H, W, 3)` with values in [0, 1].
"""

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float32]
Colour = tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class Grid:
    """Pixel-centre coordinates of an `(H, W)` canvas: `ys` is `(H, 1)`, `xs` is `(1, W)`."""

    ys: FloatArray
    xs: FloatArray

    @property
    def shape(self) -> tuple[int, int]:
        return (self.ys.shape[0], self.xs.shape[1])


@lru_cache(maxsize=8)
def grid(height: int, width: int) -> Grid:
    """The (cached, read-only) coordinate grid of a `height x width` canvas."""
    ys = (np.arange(height, dtype=np.float32) + 0.5).reshape(-1, 1)
    xs = (np.arange(width, dtype=np.float32) + 0.5).reshape(1, -1)
    ys.setflags(write=False)
    xs.setflags(write=False)
    return Grid(ys=ys, xs=xs)


def _ramp(signed_distance: NDArray[np.floating[Any]]) -> FloatArray:
    """Coverage from a signed distance in pixels (positive inside)."""
    return np.clip(signed_distance + 0.5, 0.0, 1.0).astype(np.float32, copy=False)


def ellipse(g: Grid, cy: float, cx: float, ry: float, rx: float) -> FloatArray:
    """Axis-aligned ellipse centred at `(cy, cx)` with radii `ry`, `rx` (pixels)."""
    ry, rx = max(ry, 0.5), max(rx, 0.5)
    d = np.sqrt(((g.ys - cy) / ry) ** 2 + ((g.xs - cx) / rx) ** 2)
    return _ramp((1.0 - d) * min(ry, rx))


def capsule(g: Grid, y0: float, x0: float, y1: float, x1: float, radius: float) -> FloatArray:
    """A segment from `(y0, x0)` to `(y1, x1)` thickened by `radius` (a limb, strap or pole)."""
    dy, dx = y1 - y0, x1 - x0
    length2 = max(dy * dy + dx * dx, 1e-6)
    t = np.clip(((g.ys - y0) * dy + (g.xs - x0) * dx) / length2, 0.0, 1.0)
    dist = np.sqrt((g.ys - (y0 + t * dy)) ** 2 + (g.xs - (x0 + t * dx)) ** 2)
    return _ramp(radius - dist)


def box(g: Grid, y0: float, y1: float, x0: float, x1: float) -> FloatArray:
    """Axis-aligned rectangle `[y0, y1] x [x0, x1]`."""
    inside_y = np.minimum(g.ys - y0, y1 - g.ys)
    inside_x = np.minimum(g.xs - x0, x1 - g.xs)
    return _ramp(np.minimum(inside_y, inside_x))


def trapezoid(
    g: Grid, y0: float, y1: float, cx0: float, half0: float, cx1: float, half1: float
) -> FloatArray:
    """Rows `y0..y1` whose centre and half-width go linearly from `(cx0, half0)` to `(cx1, half1)`.

    The torso, a skirt and a backpack are trapezoids.
    """
    t = np.clip((g.ys - y0) / max(y1 - y0, 1e-3), 0.0, 1.0)
    centre = cx0 + t * (cx1 - cx0)
    half = half0 + t * (half1 - half0)
    inside_y = np.minimum(g.ys - y0, y1 - g.ys)
    inside_x = half - np.abs(g.xs - centre)
    return _ramp(np.minimum(inside_y, inside_x))


def paint(
    canvas: FloatArray, alpha: FloatArray | None, mask: FloatArray, colour: Colour | FloatArray
) -> None:
    """Composite `colour` (an RGB triple or an `(H, W, 3)` field) over `canvas` where `mask` covers.

    When `alpha` (the canvas's own coverage, `(H, W)`) is given it accumulates the mask, so a
    layer drawn on a transparent canvas can later be composited over a background.
    """
    m = mask[..., None]
    paint_colour = np.asarray(colour, dtype=np.float32)
    canvas *= 1.0 - m
    canvas += m * paint_colour
    if alpha is not None:
        np.maximum(alpha, mask, out=alpha)


def stripes(g: Grid, origin: float, period: float, axis: int, sharpness: float = 3.0) -> FloatArray:
    """A soft square wave in [0, 1] along rows (`axis=0`) or columns (`axis=1`)."""
    coord = g.ys if axis == 0 else g.xs
    wave = np.sin((coord - origin) * (2.0 * np.pi / max(period, 1.0)))
    return np.clip(0.5 + sharpness * wave, 0.0, 1.0).astype(np.float32, copy=False)


def gaussian_blur(image: FloatArray, sigma: float) -> FloatArray:
    """Separable Gaussian blur of an `(H, W, 3)` image, edge-padded, radius 3 sigma (at most 4)."""
    if sigma < 0.2:
        return image
    radius = min(4, max(1, int(np.ceil(3.0 * sigma))))
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    weights = (weights / weights.sum()).astype(np.float32)
    height, width = image.shape[:2]
    padded = np.pad(image, ((radius, radius), (0, 0), (0, 0)), mode="edge")
    rows = np.zeros_like(image)
    for weight, start in zip(weights, offsets + radius, strict=True):
        rows += weight * padded[start : start + height]
    padded = np.pad(rows, ((0, 0), (radius, radius), (0, 0)), mode="edge")
    out = np.zeros_like(image)
    for weight, start in zip(weights, offsets + radius, strict=True):
        out += weight * padded[:, start : start + width]
    return out
