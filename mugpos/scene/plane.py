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

Uncertainty: `mugpos.scene.posterior` samples the camera around the fit's modes and places the
objects on each sample; every measurement (`mugpos.scene.measure`) is computed on each sample, and
its range is the spread of those. The box model both rest on (predicted boxes, one-sided residuals
for cut or hidden sides) is `mugpos.scene.boxes`. Deterministic: fixed starts, fixed seeds, so a
stored analysis measured again gives the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from mugpos.scene.boxes import (
    ELEV_MAX,
    ELEV_MIN,
    LOSS,
    NP,
    ROBUST_SCALE,
    NDArray_bool,
    _bounds,
    _observations,
    _place_objects,
    _Problem,
    _rho,
    obj_params,
    table_sides,
)
from mugpos.scene.camera import F, focal_from_35mm, ground, horizon_row, px_per_cm_at
from mugpos.scene.labels import SURFACE_LABELS
from mugpos.scene.model import Estimate, Plane, Scene
from mugpos.scene.posterior import (
    N_SAMPLES,
    _objects_given_camera,
    _posterior_samples,
    _proposal,
)
from mugpos.scene.priors import Prior

PRIOR_FOCAL_35MM = 27.0  # phones 24-28 mm, laptop webcams 26-32 mm equivalent
PRIOR_FOCAL_SPREAD = 0.30  # log-sigma of the focal prior without EXIF
EXIF_FOCAL_SPREAD = 0.03  # EXIF is right up to crop/zoom rounding
# Desks are photographed from anywhere between 25 and 90 degrees, top-down as often as not: the fit
# favours no elevation between its bounds (a 50 +- 35 degree prior pulled top-down photos whose
# boxes say little, a lone mug with its handle toward the camera say, to 50 degrees). 50 degrees
# remains the typical view assumed when nothing on the table has a known size.
PRIOR_ELEVATION_DEG, PRIOR_ELEVATION_SPREAD_DEG = 50.0, 1000.0
PRIOR_HEIGHT_CM, PRIOR_HEIGHT_SPREAD = 55.0, 1.0  # very weak: a camera 20-150 cm above the desk
OUTLIER_SIGMAS = 4.0  # an object whose worst residual exceeds this is reported as an outlier
# Real objects are not the priors' boxes (a tenkeyless keyboard, a tall mug): the posterior is
# tempered when the boxes disagree more than a detector's jitter (chi2 per degree of freedom), at
# least this much. It was 2 while the posterior was sampled jointly over camera and objects, whose
# weights collapsed onto a few draws and so understated the camera's spread; sampled over the camera
# alone (`mugpos.scene.posterior`), 1 gives gap ranges that hold the 3D truth 95-98 % of the time
# at 2 % box jitter and 93 % at 5 % on bench_measure, seeds 1-7 (nominal: 95 %).
TEMPER_FLOOR = 1.0
START_ITERS = 3  # Gauss-Newton steps placing each object on a start camera
STARTS_DEG = (30.0, 50.0, 70.0, 88.0)
N_REFINED_STARTS = 1
# Optima this far apart are distinct modes; one whose cost exceeds the best's by more than this many
# tempers carries under e^-6 of the weight and is left out of the proposal.
MODE_SEPARATION_RAD, MODE_SEPARATION_LOG, MODE_COST_REACH = math.radians(3.0), 0.05, 6.0
MAX_EVALS = 60  # sane desks converge in 10-40; boxes that fit no desk stop here, loudly uncertain


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
    prob = _Problem(obs, cx, cy, free, fixed, prior, table_sides(scene))
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
