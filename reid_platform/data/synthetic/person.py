"""Drawing one person in one pose and viewpoint onto a transparent layer.

The body is built from anti-aliased primitives (`draw.py`): an elliptical head, a trapezoid
torso, capsule limbs, and garment / accessory shapes over them, painted back to front in an
order that depends on the viewpoint:

- front: face and chest logo visible, a backpack shows only as two straps, the shoulder bag
  hangs on the image side opposite the carrying hand;
- back: hair covers the head, a backpack covers the upper back, a back print shows if the
  identity has one, the bag hangs on the carrying side;
- left / right: a narrow torso, limbs swinging along the walking direction, the backpack sticks
  out behind, the bag is in front of the body only when carried on the near side.
"""

from dataclasses import dataclass

import numpy as np

from reid_platform.data.synthetic.camera import View
from reid_platform.data.synthetic.draw import (
    Colour,
    FloatArray,
    Grid,
    capsule,
    ellipse,
    paint,
    stripes,
    trapezoid,
)
from reid_platform.data.synthetic.identity import IdentityAppearance


@dataclass(frozen=True, slots=True)
class Pose:
    """Where and how a person stands in one image (pixels, except the unit-free swings)."""

    cx: float  # horizontal centre of the hips
    top: float  # top of the head
    body: float  # body height in pixels (head top to soles)
    view: View
    stride: float  # walking phase in [-1, 1]: leg spread and arm swing
    lean: float  # head offset relative to the hips, fraction of body height


@dataclass(frozen=True, slots=True)
class _Body:
    """Key points of the skeleton derived from a pose and an identity's proportions."""

    head_y: float
    head_x: float
    head_ry: float
    head_rx: float
    shoulder_y: float
    hip_y: float
    sole_y: float
    shoulder: float
    hip: float
    arm: float  # arm radius
    leg: float  # leg radius
    facing: int  # +1 facing image right, -1 left, 0 front/back


def _darker(colour: Colour, factor: float = 0.7) -> Colour:
    return (colour[0] * factor, colour[1] * factor, colour[2] * factor)


def _skeleton(who: IdentityAppearance, pose: Pose) -> _Body:
    b = pose.body
    side = pose.view in ("left", "right")
    squeeze = 0.55 if side else 1.0
    head_ry = who.head * b
    return _Body(
        head_y=pose.top + head_ry,
        head_x=pose.cx + pose.lean * b,
        head_ry=head_ry,
        head_rx=head_ry * (0.85 if side else 0.8),
        shoulder_y=pose.top + 2.0 * head_ry + 0.02 * b,
        hip_y=pose.top + b * (1.0 - who.leg),
        sole_y=pose.top + b,
        shoulder=who.shoulder * b * squeeze,
        hip=who.hip * b * squeeze,
        arm=0.03 * b * who.limb,
        leg=0.042 * b * who.limb,
        facing={"left": -1, "right": 1}.get(pose.view, 0),
    )


def _upper_field(g: Grid, who: IdentityAppearance, body: _Body, pose: Pose) -> FloatArray:
    """The upper garment's colour at every pixel: plain, striped or checked."""
    base = np.broadcast_to(np.asarray(who.upper, dtype=np.float32), (*g.shape, 3))
    if who.upper_pattern not in ("stripes", "checks"):
        return base
    period = who.pattern_period * pose.body
    weight = stripes(g, body.shoulder_y, period, axis=0)
    if who.upper_pattern == "checks":
        across = stripes(g, pose.cx, period, axis=1)
        weight = np.abs(weight - across)
    second = np.asarray(who.upper_second, dtype=np.float32)
    return base + weight[..., None] * (second - base)


class _Painter:
    """Paints the parts of one person onto a transparent layer, back to front."""

    def __init__(self, g: Grid, who: IdentityAppearance, pose: Pose) -> None:
        self.g, self.who, self.pose = g, who, pose
        self.b = _skeleton(who, pose)
        self.field = _upper_field(g, who, self.b, pose)
        self.canvas = np.zeros((*g.shape, 3), dtype=np.float32)
        self.alpha = np.zeros(g.shape, dtype=np.float32)

    def fill(self, mask: FloatArray, colour: Colour | FloatArray) -> None:
        paint(self.canvas, self.alpha, mask, colour)

    def legs(self) -> None:
        g, who, b, pose = self.g, self.who, self.b, self.pose
        knee_y = (b.hip_y + b.sole_y) / 2.0
        colour = who.lower if who.lower_kind == "trousers" else who.skin
        spread = pose.stride * 0.16 * pose.body if b.facing else 0.0
        order = (1, -1) if b.facing else (-1, 1)
        for k in order:
            hip_x = pose.cx + (0.0 if b.facing else k * b.hip * 0.5)
            foot_x = hip_x + k * spread + (0.0 if b.facing else k * 0.01 * pose.body)
            lift = (max(0.0, k * pose.stride) * 0.03 * pose.body) if not b.facing else 0.0
            foot_y = b.sole_y - b.leg * 0.6 - lift
            self.fill(capsule(g, b.hip_y, hip_x, foot_y, foot_x, b.leg), colour)
            if who.lower_kind == "shorts":
                knee_x = (hip_x + foot_x) / 2.0
                self.fill(capsule(g, b.hip_y, hip_x, knee_y, knee_x, b.leg * 1.2), who.lower)
            toe = b.facing * b.leg * 0.7
            shoe = ellipse(g, foot_y + b.leg * 0.3, foot_x + toe, b.leg * 0.55, b.leg * 1.15)
            self.fill(shoe, who.shoes)
        pelvis = trapezoid(
            g,
            b.hip_y - 0.03 * pose.body,
            b.hip_y + 0.05 * pose.body,
            pose.cx,
            b.hip,
            pose.cx,
            b.hip * 1.05,
        )
        self.fill(pelvis, who.lower)
        if who.lower_kind == "skirt":
            skirt = trapezoid(
                g,
                b.hip_y - 0.03 * pose.body,
                knee_y + 0.03 * pose.body,
                pose.cx,
                b.hip,
                pose.cx,
                b.hip * 1.6,
            )
            self.fill(skirt, who.lower)

    def arm(self, k: int) -> None:
        """One arm: `k` is its image side (-1 / +1) seen from front or back, its swing sign in
        a side view (-1 the far arm, drawn first)."""
        g, who, b, pose = self.g, self.who, self.b, self.pose
        length = 0.36 * pose.body
        y0 = b.shoulder_y + b.arm
        if b.facing:
            x0 = pose.cx + b.facing * 0.01 * pose.body
            x1 = x0 + k * pose.stride * 0.45 * length
            y1 = y0 + length * (1.0 - 0.1 * abs(pose.stride))
        else:
            x0 = pose.cx + k * (b.shoulder - b.arm * 0.5)
            x1 = x0 + k * (0.06 + 0.03 * pose.stride * k) * length
            y1 = y0 + length * (1.0 - 0.06 * abs(pose.stride))
        sleeve = self.field if who.long_sleeves else who.skin
        self.fill(capsule(g, y0, x0, y1, x1, b.arm), sleeve)
        if not who.long_sleeves:
            ym, xm = y0 + (y1 - y0) * 0.35, x0 + (x1 - x0) * 0.35
            self.fill(capsule(g, y0, x0, ym, xm, b.arm * 1.15), self.field)
        self.fill(ellipse(g, y1 + b.arm, x1, b.arm * 1.1, b.arm), who.skin)

    def torso(self) -> None:
        g, who, b, pose = self.g, self.who, self.b, self.pose
        cx_top = pose.cx + pose.lean * pose.body * 0.5
        shape = trapezoid(
            g, b.shoulder_y, b.hip_y + 0.02 * pose.body, cx_top, b.shoulder, pose.cx, b.hip * 1.05
        )
        self.fill(shape, self.field)
        shows_print = pose.view == "front" or (pose.view == "back" and who.back_print)
        if who.upper_pattern == "logo" and shows_print:
            size = 0.05 * pose.body
            logo_y = b.shoulder_y + 0.11 * pose.body
            self.fill(ellipse(g, logo_y, cx_top, size, size * 1.15), who.upper_second)

    def backpack(self) -> None:
        g, who, b, pose = self.g, self.who, self.b, self.pose
        if who.backpack is None:
            return
        colour = who.backpack.colour
        top, bottom = b.shoulder_y + 0.02 * pose.body, b.hip_y - 0.02 * pose.body
        if pose.view == "front":
            for k in (-1, 1):
                x = pose.cx + k * b.shoulder * 0.55
                self.fill(capsule(g, top, x, top + 0.2 * pose.body, x, b.arm * 0.45), colour)
        elif pose.view == "back":
            pack = trapezoid(g, top, bottom, pose.cx, b.shoulder * 0.62, pose.cx, b.shoulder * 0.7)
            self.fill(pack, colour)
            self.fill(
                trapezoid(
                    g,
                    (top + bottom) / 2,
                    bottom - 0.02 * pose.body,
                    pose.cx,
                    b.shoulder * 0.45,
                    pose.cx,
                    b.shoulder * 0.5,
                ),
                _darker(colour),
            )
        else:
            x = pose.cx - b.facing * (b.shoulder + 0.035 * pose.body)
            pack = trapezoid(g, top, bottom, x, 0.045 * pose.body, x, 0.05 * pose.body)
            self.fill(pack, colour)

    def bag(self) -> None:
        g, who, b, pose = self.g, self.who, self.b, self.pose
        if who.bag is None:
            return
        if b.facing:
            x = pose.cx + b.facing * 0.02 * pose.body
        else:
            image_side = -who.bag.side if pose.view == "front" else who.bag.side
            x = pose.cx + image_side * (b.hip + 0.03 * pose.body)
        strap_x = pose.cx - (x - pose.cx) * 0.6
        self.fill(capsule(g, b.shoulder_y, strap_x, b.hip_y, x, b.arm * 0.35), who.bag.colour)
        size = 0.065 * pose.body
        self.fill(
            trapezoid(
                g, b.hip_y - size * 0.4, b.hip_y + size * 1.1, x, size * 0.75, x, size * 0.85
            ),
            who.bag.colour,
        )

    def head(self) -> None:
        g, who, b, pose = self.g, self.who, self.b, self.pose
        neck_y = b.head_y + b.head_ry
        self.fill(
            capsule(g, neck_y - 1.0, b.head_x, b.shoulder_y + 1.0, b.head_x, b.head_rx * 0.45),
            who.skin,
        )
        if who.long_hair and pose.view != "front":
            hair = trapezoid(
                g,
                b.head_y,
                b.shoulder_y + 0.07 * pose.body,
                b.head_x - b.facing * b.head_rx * 0.4,
                b.head_rx * 0.9,
                b.head_x - b.facing * b.head_rx * 0.5,
                b.head_rx * 1.0,
            )
            self.fill(hair, who.hair)
        head = ellipse(g, b.head_y, b.head_x, b.head_ry, b.head_rx)
        self.fill(head, who.hair if pose.view == "back" else who.skin)
        if pose.view == "front":
            cap = ellipse(
                g, b.head_y - b.head_ry * 0.45, b.head_x, b.head_ry * 0.65, b.head_rx * 1.06
            )
            self.fill(cap, who.hair)
            if who.long_hair:
                for k in (-1, 1):
                    x = b.head_x + k * b.head_rx * 0.95
                    self.fill(
                        capsule(
                            g,
                            b.head_y - b.head_ry * 0.3,
                            x,
                            b.shoulder_y + 0.04 * pose.body,
                            x,
                            b.head_rx * 0.3,
                        ),
                        who.hair,
                    )
        elif b.facing:
            back = ellipse(
                g,
                b.head_y - b.head_ry * 0.25,
                b.head_x - b.facing * b.head_rx * 0.35,
                b.head_ry * 0.85,
                b.head_rx * 0.8,
            )
            self.fill(back, who.hair)
        if who.hat is not None:
            crown = ellipse(
                g, b.head_y - b.head_ry * 0.55, b.head_x, b.head_ry * 0.6, b.head_rx * 1.12
            )
            self.fill(crown, who.hat.colour)
            brim_x = b.head_x + b.facing * b.head_rx * 0.9
            brim = ellipse(
                g,
                b.head_y - b.head_ry * 0.2,
                brim_x,
                b.head_ry * 0.16,
                b.head_rx * (0.9 if b.facing else 1.2),
            )
            self.fill(brim, who.hat.colour)


def draw_person(
    g: Grid, who: IdentityAppearance, pose: Pose, shading: float
) -> tuple[FloatArray, FloatArray]:
    """Draw `who` in `pose`; returns `(rgb (H, W, 3), alpha (H, W))` of the person layer.

    `shading` in [0, 1) darkens the body towards its silhouette edges (round-body lighting).
    """
    p = _Painter(g, who, pose)
    facing = p.b.facing
    if facing:
        near_bag = who.bag is not None and who.bag.side == -facing
        p.arm(-1)
        if not near_bag:
            p.bag()
        p.legs()
        p.backpack()
        p.torso()
        p.arm(1)
        if near_bag:
            p.bag()
    else:
        p.legs()
        p.torso()
        if pose.view == "front":
            p.backpack()
        p.arm(-1)
        p.arm(1)
        if pose.view == "back":
            p.backpack()
        p.bag()
    p.head()
    width = max(p.b.shoulder * 1.4, 1.0)
    p.canvas *= 1.0 - shading * np.clip(((g.xs - pose.cx) / width) ** 2, 0.0, 1.0)[..., None]
    return p.canvas, p.alpha
