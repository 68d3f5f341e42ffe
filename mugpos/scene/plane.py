"""The ground-plane model of one photo: how the camera saw the table, fitted from what stands on it.

Single-view metrology after Criminisi, Reid & Zisserman (IJCV 2000) and Hoiem, Efros & Hebert,
"Putting Objects in Perspective" (CVPR 2006): objects of known kind standing on the table at
different depths fix the camera. Each object with a size prior (`mugpos.scene.priors`) is a small 3D
model at an unknown spot (x, y) and size factor s on the plane; projected through a pinhole camera
(elevation, height, focal length; `mugpos.scene.camera`) it must reproduce its detector box. The box
bottom is where it touches the table, its width and height both carry scale, and the spread of
depths fixes the elevation. All unknowns are fitted together with scipy's robust least squares
(soft-L1 loss, so a misread object is discounted rather than obeyed), each size factor pulled
toward 1 by its kind's natural spread.

A side the frame cuts, or a bottom that ends where a nearer object's box begins (`hidden_bottom`:
a mug behind a laptop shows only above the laptop's edge), only says the object reaches at least
that far: its residual is one-sided. The fit starts at a few elevations, each object first placed
on its own box on that start's camera; the best start and the steepest (a top-down reading) are
refined.

Hints win: the caller's `px_per_cm` makes the photo top-down at that scale (no fit: one scale, as
before), `camera` values are held fixed, the EXIF focal length (`image.focal_35mm`) is held nearly
fixed. Without EXIF the focal length has a prior: phones' main cameras are 24-28 mm equivalent and
laptop webcams 26-32 mm (70-80 degrees diagonal), so 27 mm equivalent with a 30 % log spread.

Uncertainty: cameras are drawn around each mode of the fit (its Gauss-Newton covariance, inflated
by the residual spread when the boxes disagree more than a detector's jitter, plus a wider
defensive copy), every object is placed on each drawn camera, and the draws are importance-weighted
by how well the boxes then fit (`_posterior_samples`; a second, adapted round when a few draws
carry the weight). Each object then gets its own box noise on its sample's camera. Every
measurement (`mugpos.scene.measure`) is computed on each sample, and its range is the spread of
those. Deterministic: fixed starts, fixed seeds, so a stored analysis measured again gives the same
numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy.optimize import least_squares

from mugpos.scene.camera import F, focal_from_35mm, ground, horizon_row, project, px_per_cm_at
from mugpos.scene.geometry import behind_the_tables
from mugpos.scene.labels import SURFACE_LABELS
from mugpos.scene.model import Detection, Estimate, Plane, Scene
from mugpos.scene.priors import Prior, prior_for, template

PRIOR_FOCAL_35MM = 27.0  # phones 24-28 mm, laptop webcams 26-32 mm equivalent
PRIOR_FOCAL_SPREAD = 0.30  # log-sigma of the focal prior without EXIF
EXIF_FOCAL_SPREAD = 0.03  # EXIF is right up to crop/zoom rounding
# Desks are photographed from anywhere between 25 and 90 degrees, top-down as often as not: the fit
# favours no elevation between its bounds (a 50 +- 35 degree prior pulled top-down photos whose
# boxes say little, a lone mug with its handle toward the camera say, to 50 degrees). 50 degrees
# remains the typical view assumed when nothing on the table has a known size.
PRIOR_ELEVATION_DEG, PRIOR_ELEVATION_SPREAD_DEG = 50.0, 1000.0
PRIOR_HEIGHT_CM, PRIOR_HEIGHT_SPREAD = 55.0, 1.0  # very weak: a camera 20-150 cm above the desk
BOX_SIGMA_PX, BOX_SIGMA_REL = 1.5, 0.03  # a detector's box jitter: 1.5 px + 3 % of the box side
LOSS = "soft_l1"  # (cauchy was tried: no better on bench_measure, and harder to sample)
ROBUST_SCALE = 2.5  # residuals (in sigmas) beyond this are discounted (soft-L1)
OUTLIER_SIGMAS = 4.0  # an object whose worst residual exceeds this is reported as an outlier
N_SAMPLES = 256
PROPOSAL_WIDTH = 1.5  # the Gaussian draws reach past the linearised covariance; weights pull them back
N_DRAWS = 256  # camera draws (3 dimensions: the objects are placed on each, `_posterior_samples`)
DEFENSIVE_WIDTH = 3.0
ADAPT_ESS = 0.1  # below this effective share of draws, a second, adapted round is drawn
PLACE_ITERS = 3  # Gauss-Newton steps placing the objects on each drawn camera (from the mode's)
# Real objects are not the priors' boxes (a tenkeyless keyboard, a tall mug): the posterior is
# tempered when the boxes disagree more than a detector's jitter (chi2 per degree of freedom), at
# least this much. It was 2 while the posterior was sampled jointly over camera and objects, whose
# weights collapsed onto a few draws and so understated the camera's spread; sampled over the camera
# alone (`_posterior_samples`), 1 gives gap ranges that hold the 3D truth 94-97 % of the time at
# 2 % box jitter on bench_measure (nominal: 95 %), and 2 gave 96-98 % with fewer verdicts.
TEMPER_FLOOR = 1.0
# Given a camera, an object's place comes from its own box: its spread is widened only this much
# (box sides a detector places to 2-5 % of their size, BOX_SIGMA_REL says 3 %).
OBJECT_TEMPER = 2.0
# Samples come with their objects placed on their camera: the re-fit only takes their spread there.
REFIT_ITERS, REFIT_PRIOR_CM = 0, 100.0
START_ITERS = 3  # Gauss-Newton steps placing each object on a start camera
ELEV_MIN, ELEV_MAX = math.radians(8.0), math.pi / 2
# A box side this close to the picture's edge is taken as cut by it (share of that image side).
# Detectors end a cut object's box a little short of the border; for a table, calling an edge
# "seen" when the frame cut it would measure against the photo's border, so tables get a wider band.
BORDER_FRAC, TABLE_BORDER_FRAC, BORDER_MIN_PX = 0.01, 0.03, 2.0
# A box bottom within this many of its box-jitter sigmas of a nearer box's top may be hidden by it.
OCCLUSION_SIGMAS = 3.0
STARTS_DEG = (30.0, 50.0, 70.0, 88.0)
N_REFINED_STARTS = 1
# Optima this far apart are distinct modes; one whose cost exceeds the best's by more than this many
# tempers carries under e^-6 of the weight and is left out of the proposal.
MODE_SEPARATION_RAD, MODE_SEPARATION_LOG, MODE_COST_REACH = math.radians(3.0), 0.05, 6.0
# Per object: x, y, log size, and log stretch (its footprint wider and shallower than the prior's by
# that factor: a mug's handle to the side or toward the camera, a book or keyboard turned on the desk).
NP = 4
MAX_EVALS = 60  # sane desks converge in 10-40; boxes that fit no desk stop here, loudly uncertain


def _rho(r: F) -> F:
    """The robust loss of least_squares (per residual, before the 0.5 f_scale^2 factor)."""
    z = (r / ROBUST_SCALE) ** 2
    if LOSS == "cauchy":
        return np.log1p(z)
    return 2 * (np.sqrt(1 + z) - 1)


def cut_sides(
    box: tuple[float, float, float, float], width: float, height: float, frac: float = BORDER_FRAC
) -> tuple[bool, bool, bool, bool]:
    """Which sides of a box (x1, y1, x2, y2) the picture's frame cuts."""
    tx, ty = max(BORDER_MIN_PX, frac * width), max(BORDER_MIN_PX, frac * height)
    return (box[0] <= tx, box[1] <= ty, box[2] >= width - tx, box[3] >= height - ty)


@dataclass
class PlaneFit:
    """The fitted camera and objects, with samples of both for uncertainty.

    `samples` is (K, 3 + NP n): elevation (rad), log height, log focal, then x, y, log size and log
    stretch per fitted object (`ids`). Row 0 is the best fit itself. `kind="top_down"` has no samples: one exact
    scale `ppc` (pixels per cm) for the whole picture.
    """

    kind: str
    cx: float
    cy: float
    samples: F
    ids: list[str] = field(default_factory=list)
    priors: list[Prior] = field(default_factory=list)
    ppc: float | None = None
    plane: Plane | None = None

    @property
    def theta(self) -> F:
        return self.samples[:, 0]

    @property
    def h(self) -> F:
        return np.exp(self.samples[:, 1])

    @property
    def f(self) -> F:
        return np.exp(self.samples[:, 2])

    def obj(self, i: int) -> tuple[F, F, F]:
        """x, y (footprint centre, cm) and size factor of fitted object i, per sample."""
        k = 3 + NP * i
        return self.samples[:, k], self.samples[:, k + 1], np.exp(self.samples[:, k + 2])

    def stretch(self, i: int) -> F:
        """How much wider (and, by as much, shallower) than its prior object i's footprint is."""
        return np.exp(self.samples[:, 3 + NP * i + 3])

    def ground(self, u: float | F, v: float | F) -> tuple[F, F]:
        """The table point a pixel shows, per sample (top-down: exact, y up the picture)."""
        if self.kind == "top_down":
            assert self.ppc is not None
            uu, vv = np.atleast_1d(np.asarray(u, float)), np.atleast_1d(np.asarray(v, float))
            return uu / self.ppc, (2 * self.cy - vv) / self.ppc
        return ground(u, v, self.theta, self.h, self.f, self.cx, self.cy)


@dataclass
class _Obs:
    ids: list[str]
    priors: list[Prior]
    boxes: F  # (n, 4)
    sigma: F  # (n, 4)
    cut: NDArray_bool  # (n, 4)
    pts: F  # (n, P, 3) template points, padded by repetition


NDArray_bool = np.ndarray


def hidden_bottom(o: Detection, others: list[Detection]) -> bool:
    """Whether a nearer object may hide the bottom of `o`'s box (a mug behind a laptop shows only
    above the laptop's edge): its bottom ends where another box begins, one that reaches lower in
    the picture (so stands nearer) and spans at least half its width. A detector's box of a thing
    partly hidden ends at what hides it; a bottom well inside another box is seen past it (a
    keyboard's box is not all keyboard). Such a bottom only says the object reaches at least that
    far down, like a side the frame cuts."""
    tol = OCCLUSION_SIGMAS * (BOX_SIGMA_PX + BOX_SIGMA_REL * o.height)
    for p in others:
        if p is o or p.box[3] <= o.box[3] + tol:
            continue
        cover = min(o.box[2], p.box[2]) - max(o.box[0], p.box[0])
        if cover >= 0.5 * o.width and abs(o.box[3] - p.box[1]) <= tol:
            return True
    return False


def _observations(scene: Scene) -> _Obs:
    w, h = float(scene.image.width), float(scene.image.height)
    ids: list[str] = []
    priors: list[Prior] = []
    boxes, sig, cut, tpl = [], [], [], []
    standing = [o for o in scene.objects if o.label not in SURFACE_LABELS and not behind_the_tables(scene, o)]
    for o in standing:
        p = prior_for(o.label)
        if p is None:
            continue  # no known size (and things off the table say nothing of it: not `standing`)
        c = cut_sides(o.box, w, h)
        if hidden_bottom(o, standing):
            c = (c[0], c[1], c[2], True)
        if (c[0] and c[2]) or (c[1] and c[3]):
            continue  # cut on both sides: says nothing about its size
        assert o.id is not None
        ids.append(o.id)
        priors.append(p)
        boxes.append(o.box)
        bw, bh = o.width, o.height
        sig.append([BOX_SIGMA_PX + BOX_SIGMA_REL * bw, BOX_SIGMA_PX + BOX_SIGMA_REL * bh] * 2)
        cut.append(c)
        tpl.append(template(p))
    n_pts = max((len(t) for t in tpl), default=1)
    pts = np.zeros((len(tpl), n_pts, 3))
    for i, t in enumerate(tpl):
        pts[i] = np.vstack([t, np.repeat(t[:1], n_pts - len(t), axis=0)])
    return _Obs(ids, priors, np.asarray(boxes, float).reshape(-1, 4), np.asarray(sig, float).reshape(-1, 4),
                np.asarray(cut, bool).reshape(-1, 4), pts)  # fmt: skip


def predicted_boxes(
    theta: F, h: F, f: F, xs: F, ys: F, ss: F, pts: F, cx: float, cy: float, aa: F | None = None
) -> F:
    """Boxes (.., n, 4) of objects at (xs, ys) with size factors ss (and footprint stretches aa:
    width times aa, depth over aa), seen by the camera(s)."""
    a = 1.0 if aa is None else aa[..., None]
    px = xs[..., None] + ss[..., None] * a * pts[..., 0]
    py = ys[..., None] + ss[..., None] / a * pts[..., 1]
    pz = ss[..., None] * pts[..., 2]
    u, v, _ = project(px, py, pz, theta[..., None, None], h[..., None, None], f[..., None, None], cx, cy)
    return np.stack([u.min(-1), v.min(-1), u.max(-1), v.max(-1)], axis=-1)


@dataclass
class _Problem:
    obs: _Obs
    cx: float
    cy: float
    free: NDArray_bool  # which of the 3 camera parameters are fitted
    fixed: F  # values of the camera parameters that are not
    cam_prior: F  # (3, 2): mean, sigma of the camera parameters' priors
    n_cam_res: int = 0

    def full(self, p: F) -> F:
        """Fitted parameters (.., m) -> full rows (.., 3 + NP n), the fixed camera values filled in."""
        p = np.asarray(p)
        nf = int(self.free.sum())
        cam = np.broadcast_to(self.fixed, (*p.shape[:-1], 3)).copy()
        cam[..., self.free] = p[..., :nf]
        return np.concatenate([cam, p[..., nf:]], axis=-1)

    def box_residuals(self, cam: F, xs: F, ys: F, ls: F, las: F) -> F:
        """(.., n, 4) box residuals in sigmas; cam = (.., 3): elevation, log h, log f per row."""
        o = self.obs
        cam = np.asarray(cam)
        pred = predicted_boxes(
            cam[..., 0], np.exp(cam[..., 1]), np.exp(cam[..., 2]), xs, ys, np.exp(ls), o.pts, self.cx,
            self.cy, np.exp(las),
        )  # fmt: skip
        r = (pred - o.boxes) / o.sigma
        # A side the frame cuts only says the object reaches at least that far.
        one_sided = np.where(_LO_SIDE, np.maximum(r, 0.0), np.minimum(r, 0.0))
        return np.where(o.cut, one_sided, r)

    def box_residuals_jac(self, cam: F, xs: F, ys: F, ls: F, las: F) -> tuple[F, F]:
        """`box_residuals` and their derivatives (.., n, 4, NP) in each object's own parameters,
        analytic: a box side is the projection of one of the template's points (the extreme one),
        and a point's pixel moves with x, y, log size and log stretch as the pinhole says. (For
        placing objects on hundreds of sampled cameras: finite differences cost five projections
        of every point; this costs one.)"""
        o = self.obs
        cam = np.asarray(cam)
        th, h, f = cam[..., 0, None, None], np.exp(cam[..., 1, None, None]), np.exp(cam[..., 2, None, None])
        s, a = np.exp(ls)[..., None], np.exp(las)[..., None]
        tx, ty, tz = o.pts[..., 0], o.pts[..., 1], o.pts[..., 2]  # (n, P)
        px, py, pz = xs[..., None] + s * a * tx, ys[..., None] + s / a * ty, s * tz
        st, ct = np.sin(th), np.cos(th)
        xc, yc, zc = px, -py * st - (pz - h) * ct, py * ct - (pz - h) * st
        zs = np.maximum(zc, 1e-3)
        u, v = self.cx + f * xc / zs, self.cy + f * yc / zs
        # the point that makes each side: (.., n, 4) indices into the template's points
        idx = np.stack([np.argmin(u, -1), np.argmin(v, -1), np.argmax(u, -1), np.argmax(v, -1)], -1)

        def at(w: F) -> F:  # (.., n, P) -> (.., n, 4): w at each side's point
            return np.take_along_axis(np.broadcast_to(w, u.shape), idx, -1)

        uu, vv, xcs, ycs, zcs, zss = at(u), at(v), at(xc), at(yc), at(zc), at(zs)
        pred = np.where(_U_SIDE, uu, vv)
        s4, a4 = s, a  # (.., n, 1)
        txs, tys, tzs = at(tx), at(ty), at(tz)
        one, zero = np.ones_like(uu), np.zeros_like(uu)
        moves = (  # d(px, py, pz) of each side's point, per parameter
            (one, zero, zero),
            (zero, one, zero),
            (s4 * a4 * txs, s4 / a4 * tys, s4 * tzs),
            (s4 * a4 * txs, -s4 / a4 * tys, zero),
        )
        live = zcs > 1e-3
        jac = np.empty((*pred.shape, NP))
        for k, (dx, dy, dz) in enumerate(moves):
            dyc, dzc = -dy * st - dz * ct, dy * ct - dz * st
            num = np.where(_U_SIDE, dx * zss - xcs * dzc, dyc * zss - ycs * dzc)
            jac[..., k] = np.where(live, f * num / zss**2, 0.0)
        r = (pred - o.boxes) / o.sigma
        jac = jac / o.sigma[..., None]
        # A side the frame cuts only says the object reaches at least that far.
        slack = np.where(_LO_SIDE, r < 0, r > 0) & o.cut
        return np.where(slack, 0.0, r), np.where(slack[..., None], 0.0, jac)

    def _split(self, p: F) -> tuple[F, F, F, F, F]:
        q = self.full(p)
        return (q[:3], *obj_params(q, len(self.obs.ids)))  # type: ignore[return-value]

    def residuals(self, p: F) -> F:
        cam, xs, ys, ls, las = self._split(p)
        r = self.box_residuals(cam, xs, ys, ls, las)
        prior = (cam - self.cam_prior[:, 0]) / self.cam_prior[:, 1]
        return np.concatenate([r.ravel(), ls / self.spreads, las / self.stretches, prior[self.free]])

    def jacobian(self, p: F) -> F:
        """Forward differences, batched: each object's boxes depend only on the camera and its own
        three parameters, so one evaluation per camera parameter and one per object parameter
        (moving every object at once) gives the whole Jacobian, whatever the number of objects.
        All of them (and the base point) are stacked into one vectorised projection."""
        cam, xs, ys, ls, las = self._split(p)
        n, nc = len(xs), int(self.free.sum())
        ks = np.flatnonzero(self.free)
        steps = (1e-3 * (1 + np.abs(xs)), 1e-3 * (1 + np.abs(ys)), np.full(n, 1e-4), np.full(n, 1e-4))
        b = 1 + nc + NP
        cams = np.tile(cam, (b, 1))
        objs = np.tile(np.stack([xs, ys, ls, las]), (b, 1, 1))  # (b, NP, n)
        for j, k in enumerate(ks):
            cams[1 + j, k] += _STEPS[k]
        for k in range(NP):
            objs[1 + nc + k, k] += steps[k]
        r = self.box_residuals(cams, *(objs[:, k] for k in range(NP)))  # (b, n, 4)
        r0 = r[0]
        jac = np.zeros((6 * n + nc, nc + NP * n))
        rows = np.arange(4 * n)
        for j, k in enumerate(ks):
            jac[: 4 * n, j] = ((r[1 + j] - r0) / _STEPS[k]).ravel()
            jac[6 * n + j, j] = 1.0 / self.cam_prior[k, 1]
        for k in range(NP):
            d = (r[1 + nc + k] - r0) / steps[k][:, None]
            jac[rows, nc + NP * (rows // 4) + k] = d.ravel()
        jac[4 * n + np.arange(n), nc + NP * np.arange(n) + 2] = 1.0 / self.spreads
        jac[5 * n + np.arange(n), nc + NP * np.arange(n) + 3] = 1.0 / self.stretches
        return jac

    def batch_cost(self, q: F) -> F:
        """least_squares' robust cost of many full parameter rows (K, 3 + NP n) at once."""
        xs, ys, ls, las = obj_params(q, len(self.obs.ids))
        r = self.box_residuals(q[:, :3], xs, ys, ls, las)
        prior = ((q[:, :3] - self.cam_prior[:, 0]) / self.cam_prior[:, 1])[:, self.free]
        allr = np.concatenate([r.reshape(len(q), -1), ls / self.spreads, las / self.stretches, prior], axis=1)
        return 0.5 * ROBUST_SCALE**2 * np.sum(_rho(allr), axis=1)

    @cached_property
    def spreads(self) -> F:
        return np.array([pr.spread for pr in self.obs.priors])

    @cached_property
    def stretches(self) -> F:
        return np.array([pr.stretch for pr in self.obs.priors])


def obj_params(q: F, n: int) -> tuple[F, F, F, F]:
    """Full rows (.., 3 + NP n) -> x, y, log size, log stretch (.., n) of the n objects."""
    return tuple(q[..., 3 + k :: NP][..., :n] for k in range(NP))  # type: ignore[return-value]


_LO_SIDE = np.array([True, True, False, False])
_U_SIDE = np.array([True, False, True, False])  # x1, x2 are columns (u); y1, y2 rows (v)
_STEPS = (1e-4, 1e-4, 1e-4)


def _start(prob: _Problem, theta: float) -> F | None:
    """A first guess at elevation `theta` (a full row): each object where its box bottom meets
    the plane."""
    o = prob.obs
    th = theta if prob.free[0] else prob.fixed[0]
    f = math.exp(prob.fixed[2]) if not prob.free[2] else math.exp(prob.cam_prior[2, 0])
    ucen = (o.boxes[:, 0] + o.boxes[:, 2]) / 2
    gx, gy = ground(ucen, o.boxes[:, 3], th, 1.0, f, prob.cx, prob.cy)
    ok = np.isfinite(gy)
    if not ok.any():
        return None
    depth = gy * math.cos(th) + math.sin(th)
    widths = np.array([p.w for p in o.priors])
    hs = f * widths / (np.maximum(o.boxes[:, 2] - o.boxes[:, 0], 1.0) * np.maximum(depth, 1e-3))
    h = float(np.median(hs[ok])) if prob.free[1] else math.exp(prob.fixed[1])
    far = float(np.nanmax(np.where(ok, gy, np.nan))) * h
    xs = np.where(ok, gx * h, 0.0)
    ys = np.where(ok, gy * h, far) + np.array([p.d for p in o.priors]) / 2
    cam = np.array([th, math.log(max(h, 1.0)), math.log(f)])
    objs = np.column_stack([xs, ys, np.zeros(len(xs)), np.zeros(len(xs))])
    return np.concatenate([cam, objs.ravel()])


def _starts(prob: _Problem, thetas: list[float]) -> list[tuple[float, F]]:
    """First guesses (elevation, fitted parameters) at each start elevation. Each object is fitted
    to its own box on the start's camera (all starts in one batch): the solver then mostly moves
    the camera, in fewer steps than from the bare contact points."""
    rows = [(t, q) for t in thetas if (q := _start(prob, t)) is not None]
    if not rows:
        return []
    q = np.stack([r for _, r in rows])
    n = len(prob.obs.ids)
    objs = np.stack(obj_params(q, n), axis=-1)  # (S, n, NP)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        placed, _, ok = _place_objects(prob, q[:, :3], objs, START_ITERS)
    good = ok & np.all(np.isfinite(placed), axis=-1)
    objs = np.where(good[..., None], placed, objs)
    return [(t, np.concatenate([q[i, :3][prob.free], objs[i].ravel()])) for i, (t, _) in enumerate(rows)]


def _bounds(prob: _Problem, n: int) -> tuple[F, F]:
    lo_cam = np.array([ELEV_MIN, math.log(2.0), math.log(50.0)])
    hi_cam = np.array([ELEV_MAX, math.log(5000.0), math.log(1e6)])
    lo_obj = np.tile([-1e5, -1e5, -1.5, -1.0], n)
    hi_obj = np.tile([1e5, 1e5, 1.5, 1.0], n)
    return (np.concatenate([lo_cam[prob.free], lo_obj]), np.concatenate([hi_cam[prob.free], hi_obj]))


def _camera_setup(scene: Scene) -> tuple[NDArray_bool, F, F, str]:
    """Which camera parameters to fit, the fixed values of the others, the priors, the focal source."""
    w, h = scene.image.width, scene.image.height
    hint = scene.camera
    free = np.array([True, True, True])
    fixed = np.zeros(3)
    f0 = focal_from_35mm(PRIOR_FOCAL_35MM, w, h)
    prior = np.array(
        [
            [math.radians(PRIOR_ELEVATION_DEG), math.radians(PRIOR_ELEVATION_SPREAD_DEG)],
            [math.log(PRIOR_HEIGHT_CM), PRIOR_HEIGHT_SPREAD],
            [math.log(f0), PRIOR_FOCAL_SPREAD],
        ]
    )
    focal_source = "assumed"
    if scene.image.focal_35mm is not None:
        prior[2] = [math.log(focal_from_35mm(scene.image.focal_35mm, w, h)), EXIF_FOCAL_SPREAD]
        focal_source = "exif"
    if hint is not None:
        for k, val in enumerate((hint.elevation_deg, hint.height_cm, hint.focal_px)):
            if val is not None:
                free[k] = False
                fixed[k] = math.radians(val) if k == 0 else math.log(val)
        if hint.focal_px is not None:
            focal_source = "given"
    return free, fixed, prior, focal_source


def fit_plane(scene: Scene) -> PlaneFit:
    """The plane of `scene`: top-down at the caller's scale, else fitted, else assumed."""
    w, h = float(scene.image.width), float(scene.image.height)
    cx, cy = w / 2, h / 2
    if scene.px_per_cm is not None:
        return _top_down(scene, scene.px_per_cm)
    obs = _observations(scene)
    free, fixed, prior, focal_source = _camera_setup(scene)
    prob = _Problem(obs, cx, cy, free, fixed, prior)
    n = len(obs.ids)
    if n == 0:
        return _assumed(scene, prob, focal_source)
    starts = STARTS_DEG if free[0] else (math.degrees(fixed[0]),)
    lo, hi = _bounds(prob, n)
    # The fit is multimodal in the elevation (a turned book or a hidden box bottom explains a
    # top-down photo at 50 degrees nearly as well), and the posterior is sampled over every mode
    # that explains the boxes about as well as the best (`_posterior_samples`). Every start is
    # scored by its first guess; the best one is refined, and the steepest one too, so that a
    # top-down reading is always among the candidates (each refinement is most of the cost). The
    # second-best start was refined too until bench_measure showed it converging to the best's
    # optimum, or to one the steepest start also finds, on all but a handful of desks.
    guesses = []
    for th0, x0 in _starts(prob, [math.radians(d) for d in starts]):
        x0 = np.clip(x0, lo + 1e-9, hi - 1e-9)
        guesses.append((float(np.sum(_rho(prob.residuals(x0)))), math.degrees(th0), x0))
    guesses.sort(key=lambda g: g[:2])
    steepest = max(guesses, key=lambda g: g[1], default=None)
    chosen = guesses[:N_REFINED_STARTS] + (
        [steepest] if steepest and steepest not in guesses[:N_REFINED_STARTS] else []
    )
    # x_scale 1 (the parameters are radians, logs and cm: alike enough): scaled by the Jacobian,
    # the solver stalled in the flat valley of elevation against stretch short of the optimum
    # (a noise-free desk at 55 degrees read at 53).
    results = [
        least_squares(
            prob.residuals, x0, bounds=(lo, hi), loss=LOSS, f_scale=ROBUST_SCALE,
            jac=prob.jacobian, x_scale=1.0, max_nfev=MAX_EVALS, ftol=1e-7, xtol=1e-7,
        )
        for _, _, x0 in chosen
    ]  # fmt: skip
    if not results:
        return _assumed(scene, prob, focal_source)
    results.sort(key=lambda r: float(r.cost))
    return _finish(scene, prob, results, focal_source)


def _modes(prob: _Problem, results: list, temper: float) -> list:  # type: ignore[type-arg]
    """The distinct optima (elevation or scale apart) whose cost is within reach of the best."""
    best = float(results[0].cost)
    out: list = []  # type: ignore[type-arg]
    for r in results:
        if float(r.cost) - best > MODE_COST_REACH * temper:
            continue
        cam = prob.full(np.asarray(r.x))[:3]
        if all(
            abs(cam[0] - prob.full(np.asarray(o.x))[0]) > MODE_SEPARATION_RAD
            or abs(cam[1] - prob.full(np.asarray(o.x))[1]) > MODE_SEPARATION_LOG
            for o in out
        ):
            out.append(r)
    return out


def _proposal(res: object, temper: float) -> F:
    jac = res.jac  # type: ignore[attr-defined]
    jac = jac.toarray() if hasattr(jac, "toarray") else np.asarray(jac)
    cov = np.linalg.pinv(jac.T @ jac) * temper * PROPOSAL_WIDTH**2
    return (cov + cov.T) / 2


def _finish(scene: Scene, prob: _Problem, results: list, focal_source: str) -> PlaneFit:  # type: ignore[type-arg]
    res = results[0]
    m, k = np.asarray(res.jac).shape
    dof = max(m - k, 1)
    chi2 = float(np.sum(np.minimum(np.abs(res.fun), ROBUST_SCALE) ** 2))
    temper = max(TEMPER_FLOOR, chi2 / dof)  # boxes that disagree more than a detector's jitter widen it all
    modes = _modes(prob, results, temper)
    comps = [(np.asarray(r.x), _proposal(r, temper)) for r in modes]
    samples = _posterior_samples(prob, comps, float(res.cost), temper)
    samples = _objects_given_camera(prob, samples)
    fit = PlaneFit("perspective", prob.cx, prob.cy, samples, list(prob.obs.ids), list(prob.obs.priors))
    r = np.asarray(res.fun)[: 4 * len(prob.obs.ids)].reshape(-1, 4)
    outliers = [i for i, row in zip(prob.obs.ids, r, strict=True) if np.abs(row).max() > OUTLIER_SIGMAS]
    fit.plane = _describe(scene, fit, prob, focal_source, outliers)
    return fit


def _posterior_samples(prob: _Problem, comps: list[tuple[F, F]], best_cost: float, temper: float) -> F:
    """Samples of the fit's posterior over the camera, each object placed on each sampled camera.

    Cameras are drawn around each mode (`comps`: optimum and proposal covariance in the fitted
    parameters; the first is the best fit) from the camera block of its covariance, and
    importance-weighted by how well the boxes fit that camera with every object placed at its
    best on it (a few batched Gauss-Newton steps, `_place_objects`), the objects integrated out
    by Laplace's method (the log-determinant of each object's normal matrix). So a direction the
    linearisation thinks is loose but the boxes rule out (a focal length far off, say) does not
    widen every range, and a second explanation nearly as good as the best (a top-down photo read
    at 50 degrees) keeps its share of the samples instead of being ignored.

    Weighting in the camera's three dimensions keeps the weights even: drawn jointly with every
    object's four parameters (20-40 dimensions), a few draws took all the weight, and a
    noise-free desk at 75 degrees got an elevation range of 75.4-81.6 (one draw, repeated)."""
    rng = np.random.default_rng(12345)
    nc = int(prob.free.sum())
    best = prob.full(comps[0][0])
    if nc == 0:  # every camera value given: only the objects are uncertain
        return np.tile(best, (N_SAMPLES, 1))
    full, logw = _camera_draws(prob, comps, best_cost, temper, rng)
    w = _weights(logw)
    if w is None:
        return np.tile(best, (N_SAMPLES, 1))
    if 1.0 / np.sum(w**2) < ADAPT_ESS * len(w):
        # Few draws carry the weight: the posterior is narrower than, or away from, what the
        # linearisation proposed (a close-up mug whose box's shape fixes the elevation). A second
        # round proposes from the first round's weighted mean and spread (adaptive importance
        # sampling), and is kept when its weights are more even.
        used = w > 0
        cams, wu = full[used][:, :3][:, prob.free], w[used]
        mean = wu @ cams
        cov = (cams - mean).T @ ((cams - mean) * wu[:, None]) + 1e-8 * np.eye(nc)
        if np.all(np.isfinite(cov)) and np.all(np.isfinite(mean)):
            x = np.concatenate([mean, _fitted_objects(prob, full[int(np.argmax(w))])])
            cov_full = np.zeros((len(x), len(x)))
            cov_full[:nc, :nc] = cov
            full2, logw2 = _camera_draws(prob, [(x, cov_full)], best_cost, temper, rng)
            w2 = _weights(logw2)
            if w2 is not None and np.sum(w2**2) < np.sum(w**2):
                full, w = full2, w2
    # systematic resampling: deterministic given the weights
    pos = (np.arange(N_SAMPLES - 1) + 0.5) / (N_SAMPLES - 1)
    idx = np.minimum(np.searchsorted(np.cumsum(w), pos), len(w) - 1)
    return np.vstack([best, full[idx]])


def _fitted_objects(prob: _Problem, row: F) -> F:
    """A full row's object parameters, flattened as the fitted vector holds them."""
    return np.stack(obj_params(row, len(prob.obs.ids)), axis=-1).ravel()


def _weights(logw: F) -> F | None:
    """Normalised importance weights, truncated (Ionides 2008): no draw weighs more than sqrt(N)
    times the mean, so where the proposal misses the posterior a handful of draws cannot take
    every sample. None when no draw has any weight."""
    if not np.isfinite(logw).any():
        return None
    w = np.exp(logw - logw.max())
    w = np.minimum(w, np.sqrt(len(w)) * w.mean())
    return w / w.sum()


def _camera_draws(
    prob: _Problem, comps: list[tuple[F, F]], best_cost: float, temper: float, rng: np.random.Generator
) -> tuple[F, F]:
    """Cameras drawn from a mixture around `comps`, each with the objects placed on it: full rows
    (N_DRAWS, 3 + NP n) and their log importance weights (-inf: no weight)."""
    n = len(prob.obs.ids)
    nc = int(prob.free.sum())
    # Defensive mixture (Hesterberg 1995): each mode also proposes three times wider, so a
    # posterior broader than the linearisation thought (one mug says little of the camera) is
    # still covered and no draw's weight runs away.
    comps = comps + [(x, DEFENSIVE_WIDTH**2 * cov) for x, cov in comps]
    roots, inv_roots, logdets = [], [], []
    for _, cov in comps:
        vals, vecs = np.linalg.eigh(cov[:nc, :nc])
        vals = np.clip(vals, 1e-12 * max(float(vals.max()), 1e-300), None)
        roots.append(vecs * np.sqrt(vals))
        inv_roots.append(vecs / np.sqrt(vals))
        logdets.append(float(np.sum(np.log(vals))))
    per = np.array_split(np.arange(N_DRAWS), len(comps))
    raw = np.vstack(
        [
            x[:nc] + rng.standard_normal((len(ix), nc)) @ root.T
            for (x, _), root, ix in zip(comps, roots, per, strict=True)
        ]
    )
    objs0 = np.vstack([np.tile(x[nc:], (len(ix), 1)) for (x, _), ix in zip(comps, per, strict=True)])
    # An elevation drawn past straight down is folded back (95 degrees is 85 seen from the other
    # side, and a top-down photo's posterior piles against that bound); the proposal's density is
    # folded with it. Past any other bound a draw is outside the posterior's support: no weight.
    fold = bool(prob.free[0])
    if fold:
        raw[:, 0] = np.where(raw[:, 0] > ELEV_MAX, 2 * ELEV_MAX - raw[:, 0], raw[:, 0])
    mirror = raw.copy()
    mirror[:, 0] = 2 * ELEV_MAX - raw[:, 0]

    def log_mix(at: F) -> F:  # log density of the mixture (equal shares), up to a constant
        lq = np.stack(
            [
                -0.5 * np.sum(((at - x[:nc]) @ ir) ** 2, axis=1) - 0.5 * ld
                for (x, _), ir, ld in zip(comps, inv_roots, logdets, strict=True)
            ]
        )
        return lq.max(0) + np.log(np.exp(lq - lq.max(0)).sum(0))

    logq = np.logaddexp(log_mix(raw), log_mix(mirror)) if fold else log_mix(raw)
    lo, hi = _bounds(prob, n)
    inside = np.all((raw >= lo[:nc]) & (raw <= hi[:nc]), axis=1)
    full = prob.full(np.concatenate([np.clip(raw, lo[:nc], hi[:nc]), objs0], axis=1))
    ok = np.ones(len(full), bool)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if n:
            par, _, placed = _place_objects(
                prob, full[:, :3], np.stack(obj_params(full, n), axis=-1), PLACE_ITERS
            )
            ok = np.all(placed, axis=1)
            for k in range(NP):
                full[:, 3 + k :: NP][:, :n] = par[..., k]
        cost = prob.batch_cost(full)
        logw = -(cost - best_cost) / temper - logq
    logw = np.where(np.isfinite(logw) & inside & ok, logw, -np.inf)
    return full, logw


def _objects_given_camera(prob: _Problem, samples: F) -> F:
    """Each object re-placed on each sampled camera, with its own box noise only.

    The joint posterior is tempered (TEMPER_FLOOR) because the priors' shapes are not the real
    objects': that error moves the camera (elevation, scale), and it is right that every
    measurement feels it. But given a camera, where an object stands follows from its own box,
    whose sides a detector places to a few % of its size: tempering those too widens every gap
    between neighbours by the noise of the whole picture. So, per sample, each object is fitted
    again to its box on that sample's camera (a few batched Gauss-Newton steps, robust weights
    as in the fit), and its spread is that fit's own, widened only by OBJECT_TEMPER. Row 0 (the
    best fit) is kept as it is.
    """
    n = len(prob.obs.ids)
    if n == 0 or len(samples) < 2:
        return samples
    rng = np.random.default_rng(54321)
    # Resampling repeats rows: each distinct one is re-fitted once, every copy gets its own noise.
    uniq, back = np.unique(samples[1:], axis=0, return_inverse=True)
    back = np.ravel(back)
    cam = uniq[:, :3]  # (U, 3)
    par = np.stack(obj_params(uniq, n), axis=-1)  # (U, n, NP)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        par, a, ok = _place_objects(prob, cam, par, REFIT_ITERS)
        try:
            cov = np.linalg.inv(a + 1e-9 * np.eye(NP)) * OBJECT_TEMPER
        except np.linalg.LinAlgError:
            cov = np.linalg.pinv(a) * OBJECT_TEMPER
        cov = (cov + np.swapaxes(cov, -1, -2)) / 2
        vals, vecs = np.linalg.eigh(cov)
        root = (vecs * np.sqrt(np.clip(vals, 0.0, None))[..., None, :])[back]
        par, ok = par[back], ok[back]
        z = rng.standard_normal(par.shape)
        par = par + np.where(ok[..., None], np.einsum("knij,knj->kni", root, z), 0.0)
    par[..., 2:] = np.clip(par[..., 2:], [-1.5, -1.0], [1.5, 1.0])
    out = samples.copy()
    good = np.all(np.isfinite(par), axis=-1)
    for k in range(NP):
        out[1:, 3 + k :: NP][:, :n] = np.where(good, par[..., k], samples[1:, 3 + k :: NP][:, :n])
    return out


def _place_objects(prob: _Problem, cam: F, par: F, iters: int) -> tuple[F, F, F]:
    """Each object fitted to its own box on fixed camera(s): `iters` batched Gauss-Newton steps
    (robust weights as in the fit). cam (K, 3), par (K, n, NP) -> par, the normal matrices
    (K, n, NP, NP) at the result, and which of them are finite."""
    reg = np.array([1.0 / REFIT_PRIOR_CM**2, 1.0 / REFIT_PRIOR_CM**2, 0.0, 0.0])

    n = par.shape[-2]
    prior_rows = np.zeros((n, 2, NP))
    prior_rows[:, 0, 2] = 1.0 / prob.spreads
    prior_rows[:, 1, 3] = 1.0 / prob.stretches

    for it in range(iters + 1):
        r, j = prob.box_residuals_jac(cam, *(par[..., k] for k in range(NP)))
        r0 = np.concatenate(
            [r, (par[..., 2] / prob.spreads)[..., None], (par[..., 3] / prob.stretches)[..., None]], -1
        )
        jac = np.concatenate([j, np.broadcast_to(prior_rows, (*j.shape[:-3], n, 2, NP))], -2)  # (K,n,6,NP)
        wgt = (1 + (r0 / ROBUST_SCALE) ** 2) ** -0.25  # soft-L1 as reweighted least squares
        jw, rw = jac * wgt[..., None], r0 * wgt
        a = np.einsum("knri,knrj->knij", jw, jw) + np.diag(reg)
        ok = np.all(np.isfinite(a), axis=(-1, -2)) & np.all(np.isfinite(rw), axis=-1)
        a = np.where(ok[..., None, None], a, np.eye(NP))
        if it == iters:
            break
        g = np.einsum("knri,knr->kni", jw, np.where(ok[..., None], rw, 0.0))
        try:
            step = -np.linalg.solve(a, g[..., None])[..., 0]
        except np.linalg.LinAlgError:  # a degenerate box (zero height, far off the frame)
            step = -(np.linalg.pinv(a) @ g[..., None])[..., 0]
        par = par + np.where(ok[..., None], step, 0.0)
        par[..., 2:] = np.clip(par[..., 2:], [-1.5, -1.0], [1.5, 1.0])
    return par, a, ok


def _assumed(scene: Scene, prob: _Problem, focal_source: str) -> PlaneFit:
    """No object of known size stands on the table: a typical desk view, loudly uncertain.

    With a table in the picture its visible width is taken as 120 cm (desks and small tables are
    100-140 cm); otherwise the camera is a seated person's, 45 cm above the desk at 50 degrees.
    """
    th = prob.fixed[0] if not prob.free[0] else math.radians(PRIOR_ELEVATION_DEG)
    f = math.exp(prob.fixed[2] if not prob.free[2] else prob.cam_prior[2, 0])
    hh = math.exp(prob.fixed[1]) if not prob.free[1] else 45.0
    tables = [o for o in scene.objects if o.label in SURFACE_LABELS]
    note = "no object of known size on the table: a typical desk view is assumed"
    if tables and prob.free[1]:
        t = max(tables, key=lambda o: o.width * o.height)
        v = min(t.box[3], scene.image.height - 1.0)
        xl, _ = ground(t.box[0], v, th, 1.0, f, prob.cx, prob.cy)
        xr, _ = ground(t.box[2], v, th, 1.0, f, prob.cx, prob.cy)
        if np.isfinite(xr - xl) and xr - xl > 0:
            hh = 120.0 / float(xr - xl)
            note = f"no object of known size: assumed the table {t.id} spans 120 cm"
    cam = np.array([th, math.log(hh), math.log(f)])
    rng = np.random.default_rng(12345)
    sig = np.array([math.radians(15.0), 0.5, PRIOR_FOCAL_SPREAD])
    sig = np.where(prob.free, sig, 0.0)
    draws = cam + rng.standard_normal((N_SAMPLES - 1, 3)) * sig
    draws[:, 0] = np.clip(draws[:, 0], ELEV_MIN, ELEV_MAX)
    fit = PlaneFit("perspective", prob.cx, prob.cy, np.vstack([cam, draws]))
    fit.plane = _describe(scene, fit, prob, focal_source, [], assumed_note=note)
    return fit


def _top_down(scene: Scene, ppc: float) -> PlaneFit:
    w, h = scene.image.width, scene.image.height
    fit = PlaneFit("top_down", w / 2, h / 2, np.zeros((1, 3)), ppc=ppc)
    fit.plane = Plane(
        kind="top_down",
        elevation_deg=Estimate(value=90.0, source="given"),
        focal_px=Estimate(value=0.0, source="given"),
        camera_height_cm=Estimate(value=0.0, source="given"),
        horizon_y_px=None,
        px_per_cm=Estimate(value=ppc, source="given"),
        source="given",
        note="px_per_cm given by the caller: a top-down photo at one scale",
    )
    return fit


def _describe(
    scene: Scene,
    fit: PlaneFit,
    prob: _Problem,
    focal_source: str,
    outliers: list[str],
    assumed_note: str = "",
) -> Plane:
    th, hh, ff = fit.theta, fit.h, fit.f
    v_ref = scene.image.height / 2
    mugs = [o for o in scene.mugs]
    hz = horizon_row(float(th[0]), float(ff[0]), fit.cy)
    if hz is not None and v_ref <= hz + 5:
        v_ref = float(np.median([m.box[3] for m in mugs])) if mugs else scene.image.height - 1.0
    scales = np.atleast_1d(px_per_cm_at(v_ref, th, hh, ff, fit.cx, fit.cy))
    scales = scales[np.isfinite(scales)]
    ppc = float(scales[0]) if len(scales) else float("nan")

    def est(values: F, src: str, scale: float = 1.0) -> Estimate:
        return Estimate(
            value=round(float(values[0]) * scale, 3),
            sigma=round(float(np.std(values)) * scale, 3),
            source=src,
        )  # type: ignore[arg-type]

    given = ~prob.free
    cam_src = ["given" if g else ("assumed" if assumed_note else "estimated") for g in given]
    f_src = (
        focal_source if focal_source in ("given", "exif") else ("assumed" if assumed_note else "estimated")
    )
    source = "assumed" if assumed_note else "estimated"
    if given.all():
        source = "given"
    refs = [i for i in fit.ids if i not in outliers]
    note = assumed_note or (
        f"fitted to the sizes of {', '.join(refs[:6])}{' +' + str(len(refs) - 6) + ' more' if len(refs) > 6 else ''}"
    )
    if outliers:
        note += f"; discounted as outliers: {', '.join(outliers)}"
    return Plane(
        kind="perspective",
        elevation_deg=est(th, cam_src[0], 180 / math.pi),
        focal_px=est(ff, f_src),
        camera_height_cm=est(hh, cam_src[1]),
        horizon_y_px=None if hz is None or abs(hz) > 20 * scene.image.height else round(hz, 1),
        px_per_cm=Estimate(
            value=round(ppc, 4), sigma=round(float(np.std(scales)), 4) if len(scales) else 0.0, source=source
        ),  # type: ignore[arg-type]
        source=source,  # type: ignore[arg-type]
        references=refs,
        outliers=outliers,
        note=note,
    )
