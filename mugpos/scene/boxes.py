"""The box model: what a camera and an object of known kind show in the photo, against the detector.

An object with a size prior (`mugpos.scene.priors`) is a small 3D model at a spot (x, y) on the
table, with a size factor and a footprint stretch; projected through the pinhole camera
(`mugpos.scene.camera`) it predicts a box. `_Problem` holds one photo's observed boxes with their
jitter and measures how far predictions are from them, in sigmas: a side the frame cuts, or a bottom
a nearer box hides (`hidden_bottom`), only says the object reaches at least that far (one-sided).
The plane fit (`mugpos.scene.plane`) and its posterior (`mugpos.scene.posterior`) are both built on
these residuals and on `_place_objects`, which fits every object to its box on given cameras.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from mugpos.scene.camera import F, camera_frame, project
from mugpos.scene.geometry import behind_the_tables
from mugpos.scene.labels import SURFACE_LABELS
from mugpos.scene.model import Detection, Scene
from mugpos.scene.priors import Prior, prior_for, template
from mugpos.scene.sides import Sides, paired, rectangle_sides, side_residuals

BOX_SIGMA_PX, BOX_SIGMA_REL = 1.5, 0.03  # a detector's box jitter: 1.5 px + 3 % of the box side
LOSS = "soft_l1"  # (cauchy was tried: no better on bench_measure, and harder to sample)
ROBUST_SCALE = 2.5  # residuals (in sigmas) beyond this are discounted (soft-L1)
# A weak pull on where an object stands, so a box that says little leaves its place finite.
REFIT_PRIOR_CM = 100.0
ELEV_MIN, ELEV_MAX = math.radians(8.0), math.pi / 2
# A box side this close to the picture's edge is taken as cut by it (share of that image side).
# Detectors end a cut object's box a little short of the border; for a table, calling an edge
# "seen" when the frame cut it would measure against the photo's border, so tables get a wider band.
BORDER_FRAC, TABLE_BORDER_FRAC, BORDER_MIN_PX = 0.01, 0.03, 2.0
# A box bottom within this many of its box-jitter sigmas of a nearer box's top may be hidden by it.
OCCLUSION_SIGMAS = 3.0
# Per object: x, y, log size, and log stretch (its footprint wider and shallower than the prior's by
# that factor: a mug's handle to the side or toward the camera, a book or keyboard turned on the desk).
NP = 4
# How far an object's log size and log stretch may go (a size factor of e^1.5 = 4.5, a footprint
# e^1 = 2.7 times wider and shallower): the fit's bounds, and the clip on every placement.
LOG_SCALE_MAX = np.array([1.5, 1.0])


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


def table_sides(scene: Scene) -> Sides | None:
    """The sides of the largest table the detector outlined, paired (`mugpos.scene.sides`), each
    side's ends as unsure as a box's sides."""
    w, h = float(scene.image.width), float(scene.image.height)
    tables = [o for o in scene.objects if o.label in SURFACE_LABELS and o.outline is not None]
    if not tables:
        return None
    t = max(tables, key=lambda o: o.width * o.height)
    assert t.outline is not None
    sides = rectangle_sides(t.outline, w, h, TABLE_BORDER_FRAC)
    return paired(sides, BOX_SIGMA_PX + BOX_SIGMA_REL * max(t.width, t.height))


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
    sides: Sides | None = None  # a table outline's sides: parallel and square on the plane

    def side_residuals(self, cam: F) -> F:
        """(.., p) the table's sides against the camera(s) (`mugpos.scene.sides`); (.., 0) without."""
        cam = np.asarray(cam)
        if self.sides is None:
            return np.zeros((*cam.shape[:-1], 0))
        return side_residuals(cam, self.sides, self.cx, self.cy)

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
        xc, yc, zc = camera_frame(px, py, pz, th, h)
        zs = np.maximum(zc, 1e-3)
        u, v = self.cx + f * xc / zs, self.cy + f * yc / zs
        # the point that makes each side: (.., n, 4) indices into the template's points
        idx = np.stack([np.argmin(u, -1), np.argmin(v, -1), np.argmax(u, -1), np.argmax(v, -1)], -1)

        def at(w: F) -> F:  # (.., n, P) -> (.., n, 4): w at each side's point
            return np.take_along_axis(np.broadcast_to(w, u.shape), idx, -1)

        uu, vv, xcs, ycs, zcs, zss = at(u), at(v), at(xc), at(yc), at(zc), at(zs)
        pred = np.where(_U_SIDE, uu, vv)
        txs, tys, tzs = at(tx), at(ty), at(tz)
        one, zero = np.ones_like(uu), np.zeros_like(uu)
        moves = (  # d(px, py, pz) of each side's point, per parameter
            (one, zero, zero),
            (zero, one, zero),
            (s * a * txs, s / a * tys, s * tzs),
            (s * a * txs, -s / a * tys, zero),
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
        return np.concatenate(
            [r.ravel(), ls / self.spreads, las / self.stretches, prior[self.free], self.side_residuals(cam)]
        )

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
        sides = self.side_residuals(cams[: 1 + nc])  # (1 + nc, p): only the camera moves them
        jac = np.zeros((6 * n + nc + sides.shape[-1], nc + NP * n))
        rows = np.arange(4 * n)
        for j, k in enumerate(ks):
            jac[: 4 * n, j] = ((r[1 + j] - r0) / _STEPS[k]).ravel()
            jac[6 * n + j, j] = 1.0 / self.cam_prior[k, 1]
            jac[6 * n + nc :, j] = (sides[1 + j] - sides[0]) / _STEPS[k]
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
        allr = np.concatenate(
            [
                r.reshape(len(q), -1),
                ls / self.spreads,
                las / self.stretches,
                prior,
                self.side_residuals(q[:, :3]),
            ],
            axis=1,
        )
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


def _bounds(prob: _Problem, n: int) -> tuple[F, F]:
    lo_cam = np.array([ELEV_MIN, math.log(2.0), math.log(50.0)])
    hi_cam = np.array([ELEV_MAX, math.log(5000.0), math.log(1e6)])
    lo_obj = np.tile([-1e5, -1e5, *-LOG_SCALE_MAX], n)
    hi_obj = np.tile([1e5, 1e5, *LOG_SCALE_MAX], n)
    return (np.concatenate([lo_cam[prob.free], lo_obj]), np.concatenate([hi_cam[prob.free], hi_obj]))


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
        par[..., 2:] = np.clip(par[..., 2:], -LOG_SCALE_MAX, LOG_SCALE_MAX)
    return par, a, ok
