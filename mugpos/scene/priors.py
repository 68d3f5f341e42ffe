"""What common desk objects look like in 3D: the size priors that carry scale into the plane fit.

Each kind is a small set of 3D points in the object's own frame (cm, origin at the centre of its
footprint on the table, x right, y away from the camera, z up), facing the camera. Projected by
the camera, their bounding box is the detector box the object should produce; the footprint is
`w` x `d`. `spread` is the natural 1-sigma variation of real objects' size (log scale), which
includes how much the box varies with the object's turn on the desk: a phone or a fork lies at any
angle, a keyboard almost always faces the user.

Sizes (retail and manufacturer spec sheets): an 11 oz mug is 8.2 cm across and 9.5 cm tall, its
handle adds ~3 cm to the side; 13-15.6" laptops are 30-36 cm wide and 21-25 cm deep, the screen
~21 cm tall tilted back ~15 degrees; full-size keyboards 44 x 14 cm, tenkeyless 36 cm; mice
6.5 x 11 cm; phones 7.3 x 15 cm; books 15 x 22 cm (paperback to hardcover) lying flat; 0.5 l
bottles 7 cm across and 21-25 cm tall; wine glasses 8 x 20 cm; cereal bowls 15 cm across, 6 cm
tall; remotes 5 x 18 cm. Kinds not listed (vases, plants, TVs, people) have no prior: they get a
footprint from where they touch the table, but never set the scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import numpy as np

from mugpos.scene.camera import F


@dataclass(frozen=True)
class Prior:
    w: float  # footprint width, cm (x)
    d: float  # footprint depth, cm (y)
    h: float  # height, cm (z)
    spread: float  # 1-sigma of log size between real objects (and their turn on the desk)
    shape: str  # "box", "cylinder" or "laptop"
    note: str = field(default="", compare=False)
    # 1-sigma of log(width/depth) of the footprint's bounding box against the prior's: how far a
    # turn on the desk (or the camera's, against the desk) or a mug's handle pointing sideways or
    # toward the camera reshapes it. A box alone cannot tell these from the view's foreshortening.
    stretch: float = 0.10


PRIORS: dict[str, Prior] = {
    "cup": Prior(9.5, 8.6, 9.5, 0.14, "cylinder", "11 oz mug 8.2 cm + handle, 9.5 cm tall", stretch=0.18),
    "laptop": Prior(33.0, 23.0, 21.0, 0.10, "laptop", "13-15.6 inch laptop, open", stretch=0.08),
    "keyboard": Prior(42.0, 14.0, 3.0, 0.13, "box", "full-size 44 cm, tenkeyless 36 cm", stretch=0.25),
    "mouse": Prior(6.5, 11.0, 4.0, 0.15, "box", "computer mouse", stretch=0.2),
    "cell phone": Prior(7.3, 15.0, 0.9, 0.30, "box", "phone lying flat, any turn", stretch=0.5),
    "book": Prior(15.0, 22.0, 3.0, 0.25, "box", "paperback to hardcover, lying flat", stretch=0.3),
    "bottle": Prior(7.0, 7.0, 23.0, 0.18, "cylinder", "0.5 l bottle 21 cm, wine 30 cm", stretch=0.03),
    "wine glass": Prior(8.0, 8.0, 20.0, 0.15, "cylinder", "wine glass 18-22 cm tall", stretch=0.03),
    "bowl": Prior(15.0, 15.0, 6.0, 0.25, "cylinder", "cereal bowl 14-16 cm", stretch=0.03),
    "remote": Prior(5.0, 18.0, 2.0, 0.30, "box", "TV remote, any turn", stretch=0.5),
    "scissors": Prior(8.0, 20.0, 1.0, 0.35, "box", "office scissors, any turn", stretch=0.5),
    "fork": Prior(2.5, 19.5, 1.0, 0.40, "box", "dinner fork, any turn", stretch=0.6),
    "knife": Prior(2.0, 22.5, 1.0, 0.40, "box", "table knife, any turn", stretch=0.6),
    "spoon": Prior(4.0, 18.0, 1.0, 0.40, "box", "tablespoon, any turn", stretch=0.6),
}

GENERIC = Prior(10.0, 10.0, 10.0, 0.8, "box", "unknown kind: a footprint only, no scale", stretch=0.5)


def prior_for(label: str) -> Prior | None:
    return PRIORS.get(label)


@cache
def template(prior: Prior) -> F:
    """The object's 3D points (n x 3), in cm, facing the camera."""
    w, d, h = prior.w, prior.d, prior.h
    if prior.shape == "cylinder":
        a = np.linspace(0, 2 * np.pi, 16, endpoint=False)  # silhouette within 2 % of the radius
        ring = np.stack([w / 2 * np.cos(a), d / 2 * np.sin(a)], axis=1)
        bottom = np.column_stack([ring, np.zeros(len(a))])
        top = np.column_stack([ring, np.full(len(a), h)])
        return np.vstack([bottom, top])
    xs, ys = (-w / 2, w / 2), (-d / 2, d / 2)
    pts = [(x, y, z) for x in xs for y in ys for z in (0.0, 1.8 if prior.shape == "laptop" else h)]
    if prior.shape == "laptop":  # the screen rises from the back edge, tilted back 15 degrees
        tilt = np.radians(15)
        pts += [(x, d / 2 + h * np.sin(tilt), h * np.cos(tilt)) for x in xs]
    return np.asarray(pts, dtype=float)
