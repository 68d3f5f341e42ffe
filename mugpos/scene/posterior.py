"""The plane fit's uncertainty: samples of the camera and of every object, given the boxes.

Cameras are drawn around each mode of the fit (its Gauss-Newton covariance, inflated by the
temper, plus a three-times-wider defensive copy; an elevation past straight down folded back), every
object is placed on each drawn camera (`mugpos.scene.boxes._place_objects`), and the draws are
weighted by how well the boxes then fit (truncated importance weights; a second, adapted round
when a few draws carry the weight). Each object then gets its own box noise on its sample's camera
(`_objects_given_camera`). Every measurement is computed on each sample (`mugpos.scene.measure`).
Deterministic: fixed seeds.
"""

from __future__ import annotations

import numpy as np

from mugpos.scene.boxes import ELEV_MAX, LOG_SCALE_MAX, NP, _bounds, _place_objects, _Problem, obj_params
from mugpos.scene.camera import F

N_SAMPLES = 256
PROPOSAL_WIDTH = 1.5  # the Gaussian draws reach past the linearised covariance; weights pull them back
N_DRAWS = 256  # camera draws (3 dimensions: the objects are placed on each, `_posterior_samples`)
DEFENSIVE_WIDTH = 3.0
ADAPT_ESS = 0.1  # below this effective share of draws, a second, adapted round is drawn
PLACE_ITERS = 3  # Gauss-Newton steps placing the objects on each drawn camera (from the mode's)
# Given a camera, an object's place comes from its own box: its spread is widened only this much
# (box sides a detector places to 2-5 % of their size, BOX_SIGMA_REL says 3 %).
OBJECT_TEMPER = 2.0


def _proposal(res: object, temper: float) -> F:
    """The covariance draws are proposed from around an optimum of least_squares (`res`): its
    Gauss-Newton covariance, tempered and widened by PROPOSAL_WIDTH."""
    jac = res.jac  # type: ignore[attr-defined]
    jac = jac.toarray() if hasattr(jac, "toarray") else np.asarray(jac)
    cov = np.linalg.pinv(jac.T @ jac) * temper * PROPOSAL_WIDTH**2
    return (cov + cov.T) / 2


def _posterior_samples(prob: _Problem, comps: list[tuple[F, F]], best_cost: float, temper: float) -> F:
    """Samples of the fit's posterior over the camera, each object placed on each sampled camera.

    Cameras are drawn around each mode (`comps`: optimum and proposal covariance in the fitted
    parameters; the first is the best fit) from the camera block of its covariance, and
    importance-weighted by how well the boxes fit that camera with every object placed at its
    best on it (a few batched Gauss-Newton steps, `_place_objects`): the profile of the fit's
    cost over the camera. (Laplace's method, adding each object's log-determinant, gave the
    weight to cameras on which a barely constrained object's normal matrix was near singular.)
    So a direction the
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

    def log_mix(at: F) -> F:  # log density of the mixture (equal shares), up to a constant
        lq = np.stack(
            [
                -0.5 * np.sum(((at - x[:nc]) @ ir) ** 2, axis=1) - 0.5 * ld
                for (x, _), ir, ld in zip(comps, inv_roots, logdets, strict=True)
            ]
        )
        return lq.max(0) + np.log(np.exp(lq - lq.max(0)).sum(0))

    logq = log_mix(raw)
    if fold:
        mirror = raw.copy()
        mirror[:, 0] = 2 * ELEV_MAX - raw[:, 0]
        logq = np.logaddexp(logq, log_mix(mirror))
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
    """Each object's own box noise added on each sampled camera.

    The joint posterior is tempered (TEMPER_FLOOR) because the priors' shapes are not the real
    objects': that error moves the camera (elevation, scale), and it is right that every
    measurement feels it. But given a camera, where an object stands follows from its own box,
    whose sides a detector places to a few % of its size: tempering those too widens every gap
    between neighbours by the noise of the whole picture. The samples come with every object
    already placed on their camera (`_camera_draws`); each object's spread there is its own fit's
    (the normal matrix at that placement), widened only by OBJECT_TEMPER. Row 0 (the best fit) is
    kept as it is.
    """
    n = len(prob.obs.ids)
    if n == 0 or len(samples) < 2:
        return samples
    rng = np.random.default_rng(54321)
    # Resampling repeats rows: each distinct one's spread is taken once, every copy gets its own noise.
    uniq, back = np.unique(samples[1:], axis=0, return_inverse=True)
    back = np.ravel(back)
    cam = uniq[:, :3]  # (U, 3)
    par = np.stack(obj_params(uniq, n), axis=-1)  # (U, n, NP)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        par, a, ok = _place_objects(prob, cam, par, 0)  # 0 steps: the normal matrices where they stand
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
    par[..., 2:] = np.clip(par[..., 2:], -LOG_SCALE_MAX, LOG_SCALE_MAX)
    out = samples.copy()
    good = np.all(np.isfinite(par), axis=-1)
    for k in range(NP):
        out[1:, 3 + k :: NP][:, :n] = np.where(good, par[..., k], samples[1:, 3 + k :: NP][:, :n])
    return out
