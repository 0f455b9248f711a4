"""Rendering one benchmark image: the camera's scene, the person, occluders, then the camera.

Within one identity and camera, every image still differs by:

- pose: walking phase (leg spread, arm swing), body lean, the viewpoint drawn from the camera's
  view weights;
- crop jitter: the person's scale (±6 %), vertical placement and horizontal offset, as loose
  detector boxes give;
- the scene: background objects re-placed, horizon height jittered, a ground shadow;
- occlusion, with the camera's probability: a bench/car across the bottom, a pole, or a
  passer-by (another random person) entering from one side;
- a small per-image exposure and white-balance jitter, blur and noise (`camera.finish_image`).

`kind="junk"` draws the failures Market-1501 labels -1: a background-only crop or a crop of
someone's legs.
"""

from typing import Literal

import numpy as np
from numpy.typing import NDArray

from reid_platform.data.synthetic.camera import CameraConditions, finish_image, sample_view
from reid_platform.data.synthetic.draw import Colour, FloatArray, Grid, box, capsule, ellipse, grid
from reid_platform.data.synthetic.identity import IdentityAppearance, sample_identity
from reid_platform.data.synthetic.person import Pose, draw_person

ImageKind = Literal["person", "junk"]


def _jitter(rng: np.random.Generator, colour: Colour, spread: float = 0.1) -> NDArray[np.float32]:
    scaled = np.asarray(colour) * rng.uniform(1.0 - spread, 1.0 + spread, size=3)
    return np.clip(scaled, 0.0, 1.0).astype(np.float32)


def _clutter_colour(rng: np.random.Generator, camera: CameraConditions) -> NDArray[np.float32]:
    return _jitter(rng, camera.clutter_colours[int(rng.integers(len(camera.clutter_colours)))])


def render_background(g: Grid, camera: CameraConditions, rng: np.random.Generator) -> FloatArray:
    """The camera's scene behind the person, re-arranged per image: `(H, W, 3)` in [0, 1]."""
    height, width = g.shape
    horizon = (camera.horizon + rng.normal(0.0, 0.04)) * height
    wall = np.asarray(camera.wall, dtype=np.float32)
    floor = np.asarray(camera.floor, dtype=np.float32)
    light = (1.1 - 0.2 * g.ys / height)[..., None]
    is_floor = np.clip(g.ys - horizon + 0.5, 0.0, 1.0)[..., None]
    canvas = (wall + is_floor * (floor - wall)) * light
    canvas = np.broadcast_to(canvas, (height, width, 3)).astype(np.float32)
    count = max(0, camera.clutter + int(rng.integers(-2, 3)))
    for _ in range(count):
        colour = _clutter_colour(rng, camera)
        colour = 0.5 * (colour + wall)  # muted by distance and haze
        cx, cy = rng.uniform(-0.1, 1.1) * width, rng.uniform(0.0, 1.0) * horizon
        half_w = rng.uniform(0.04, 0.25) * width
        half_h = rng.uniform(0.04, 0.3) * height
        mask = box(g, cy - half_h, cy + half_h, cx - half_w, cx + half_w)
        canvas += mask[..., None] * (colour - canvas)
    texture = rng.normal(0.0, 0.015, size=(height // 4 + 1, width // 4 + 1, 1))
    canvas += np.repeat(np.repeat(texture, 4, axis=0), 4, axis=1)[:height, :width].astype(
        np.float32
    )
    return canvas


def _occlude(
    g: Grid, canvas: FloatArray, camera: CameraConditions, pose: Pose, rng: np.random.Generator
) -> None:
    """Draw one occluder in front of the person (a bench or car, a pole, or a passer-by)."""
    height, width = g.shape
    choice = int(rng.integers(3))
    if choice == 0:
        top = rng.uniform(0.7, 0.88) * height
        x0 = rng.uniform(-0.5, 0.3) * width
        x1 = x0 + rng.uniform(0.6, 1.5) * width
        colour = _clutter_colour(rng, camera)
        mask = box(g, top, height + 2.0, x0, x1)
        canvas += mask[..., None] * (colour - canvas)
    elif choice == 1:
        x = pose.cx + rng.uniform(-0.35, 0.35) * width
        radius = rng.uniform(0.03, 0.07) * width
        colour = _jitter(rng, (0.35, 0.35, 0.37), 0.3)
        mask = capsule(g, -5.0, x, height + 5.0, x, radius)
        canvas += mask[..., None] * (colour - canvas)
    else:
        other = sample_identity(rng)
        side = 1.0 if rng.random() < 0.5 else -1.0
        cx = width * (0.5 + side * rng.uniform(0.55, 0.8))
        passer = Pose(
            cx=cx,
            top=pose.top + rng.uniform(-0.05, 0.08) * pose.body,
            body=pose.body * rng.uniform(0.95, 1.12),
            view=sample_view(rng, camera),
            stride=rng.uniform(-1.0, 1.0),
            lean=0.0,
        )
        layer, alpha = draw_person(g, other, passer, shading=0.25)
        canvas += alpha[..., None] * (layer - canvas)


def _pose(
    who: IdentityAppearance, camera: CameraConditions, g: Grid, rng: np.random.Generator
) -> Pose:
    height, width = g.shape
    body = height * camera.scale * who.stature * rng.uniform(0.94, 1.06)
    return Pose(
        cx=width * (0.5 + camera.shift + rng.normal(0.0, 0.05)),
        top=(height - body) * rng.uniform(0.2, 0.8),
        body=body,
        view=sample_view(rng, camera),
        stride=rng.uniform(-1.0, 1.0),
        lean=rng.normal(0.0, 0.012),
    )


def render_image(
    who: IdentityAppearance,
    camera: CameraConditions,
    rng: np.random.Generator,
    *,
    height: int,
    width: int,
    kind: ImageKind = "person",
) -> NDArray[np.uint8]:
    """One `(height, width, 3)` uint8 image of `who` seen by `camera`; all randomness from `rng`."""
    g = grid(height, width)
    canvas = render_background(g, camera, rng)
    pose = _pose(who, camera, g, rng)
    if kind == "junk":
        if rng.random() < 0.5:
            return finish_image(canvas, camera, rng)
        lift = pose.body * rng.uniform(0.45, 0.6)
        pose = Pose(pose.cx, pose.top - lift, pose.body, pose.view, pose.stride, pose.lean)
    sole_y = pose.top + pose.body
    shadow = ellipse(g, sole_y, pose.cx, 0.025 * pose.body, 0.18 * pose.body)
    canvas *= 1.0 - 0.35 * shadow[..., None]
    layer, alpha = draw_person(g, who, pose, shading=rng.uniform(0.15, 0.35))
    canvas += alpha[..., None] * (layer - canvas)
    if kind == "person" and rng.random() < camera.occlusion:
        _occlude(g, canvas, camera, pose, rng)
    return finish_image(canvas, camera, rng)
