"""One entry point for every depth prior, with an on-disk cache: ``compute_prior(scene, frame, source, **opts)``.

Sources: ``lidar``, ``sfm`` (the options of :class:`recon.priors.points.PointPriorOptions`), ``mono`` (``model``,
``device``, ``input_size``,
``canonical_focal_px``, ``confidence``, ``align``; ``weights`` is the older name of ``model``), ``simulated``
(``seed``, ``profile``, ``align``; synthetic scenes only, labelled ``simulated``) and ``dfd`` (delegated to
``recon.priors.dfd.dfd_prior(scene, frame, **opts) -> DepthPrior`` when that module provides it).
``align="lidar"|"sfm"`` aligns a monocular prior to the frame's sparse metric depth (:mod:`recon.priors.scale`): one
robust scale factor for a metric model, scale and shift in inverse depth for a relative one (which cannot be used
without it), the fit's residual kept in the prior's meta.

Cache: ``<cache_dir or scene.root/priors>/<source>-<hash of the options>/<frame id>.npz``, written atomically
(:meth:`DepthPrior.save`). Each file records a signature of its inputs (the scene's geometry fingerprint, the
options, the size and mtime of the files it was computed from); a mismatch recomputes, so a stale prior is never
returned.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recon.data.scene import Frame, Scene
from recon.errors import ReconError
from recon.priors.base import DepthPrior

SOURCES = ("lidar", "sfm", "mono", "simulated", "dfd")
PriorFn = Callable[..., DepthPrior]
_MODELS: dict[tuple[Any, ...], Any] = {}  # loaded mono networks, reused across frames


def available_sources() -> tuple[str, ...]:
    return SOURCES


# ---------------------------------------------------------------------------------------------- the sources
def _lidar(scene: Scene, frame: Frame, **opts: Any) -> DepthPrior:
    from recon.priors.lidar import lidar_prior

    return lidar_prior(frame, _point_options(opts))


def _sfm(scene: Scene, frame: Frame, **opts: Any) -> DepthPrior:
    from recon.priors.sfm import sfm_prior

    return sfm_prior(scene, frame, _point_options(opts))


def _point_options(opts: dict[str, Any]) -> Any:
    from recon.priors.points import PointPriorOptions

    try:
        return PointPriorOptions(**opts)
    except TypeError:
        known = ", ".join(f.name for f in fields(PointPriorOptions))
        raise ReconError(f"unknown option(s) {', '.join(sorted(opts))} for a LiDAR/SfM prior (known: {known})"
                         ) from None


def _align(scene: Scene, frame: Frame, prior: DepthPrior, align: str | None) -> DepthPrior:
    """Align a prior to the frame's sparse LiDAR / SfM depth: one scale factor for a metric prior; scale and shift in
    inverse depth for a relative one (``meta["output"] == "relative"``), fitted robustly; the residual is recorded
    (``align_residual``: median relative depth error of the fit at the sparse points)."""
    relative = prior.meta.get("output") == "relative"
    if align in (None, "none"):
        if relative:
            raise ReconError(f"mono model {prior.meta.get('model')} predicts relative (affine-invariant inverse) "
                             "depth, not metres: it cannot be used as metric depth; pass --align lidar or --align sfm "
                             "(scale and shift fitted to the sparse points)")
        return prior
    from recon.priors.scale import align_to_sparse

    if align == "lidar":
        from recon.priors.lidar import lidar_prior

        sparse = lidar_prior(frame, _point_options({"dense": False})).depth
    elif align == "sfm":
        from recon.priors.sfm import sfm_prior

        sparse = sfm_prior(scene, frame, _point_options({"dense": False})).depth
    else:
        raise ReconError(f"align must be none, lidar or sfm, got {align!r}")
    if relative:
        depth, fit = align_to_sparse(prior.depth, sparse, kind="disparity", shift=True)
        meta = {**prior.meta, "output": "metric", "fitted_from": "relative", "align_scale": fit.scale,
                "align_shift": fit.shift}
    else:
        depth, fit = align_to_sparse(prior.depth, sparse, kind="depth", shift=False)
        meta = {**prior.meta, "align_depth_scale": fit.depth_scale}
    meta.update({"aligned_to": align, "align_inlier_ratio": fit.inlier_ratio, "align_points": fit.n,
                 "align_residual": fit.median_rel_error})
    return DepthPrior(depth, np.where(depth > 0, prior.confidence, 0.0), prior.source, meta)


def _mono(scene: Scene, frame: Frame, model: str | Path | None = None, weights: str | Path | None = None,
          device: str = "cpu", input_size: int = 518, canonical_focal_px: float | None = None,
          confidence: float = 0.5, align: str | None = None, use_sky_mask: bool = True) -> DepthPrior:
    """``model``: ``--mono.model NAME_OR_PATH`` (:func:`recon.priors.mono.resolve_model`); ``weights`` is its older
    name (a TorchScript file)."""
    from recon.priors.mono import load_mono_model, mono_prior, resolve_model

    ref = resolve_model(model if model is not None else weights)
    files = tuple(tuple(_file_stat(f) or ()) for f in ref.files())  # new weights in the same folder reload
    key = (str(ref.path.resolve()), files, device, input_size, canonical_focal_px)
    if key not in _MODELS:
        _MODELS.clear()  # keep at most one network in memory
        _MODELS[key] = load_mono_model(ref, device, input_size, canonical_focal_px)
    prior = mono_prior(frame, _MODELS[key], confidence, use_sky_mask)
    return _align(scene, frame, prior, align)


def _simulated(scene: Scene, frame: Frame, seed: int = 0, profile: Any = None, align: str | None = None
               ) -> DepthPrior:
    from recon.priors.simulated import simulated_prior

    return _align(scene, frame, simulated_prior(frame, seed, profile), align)


def _dfd(scene: Scene, frame: Frame, **opts: Any) -> DepthPrior:
    from recon.priors.dfd import dfd_prior

    return dfd_prior(scene, frame, **opts)


_BUILTIN: dict[str, PriorFn] = {"lidar": _lidar, "sfm": _sfm, "mono": _mono, "simulated": _simulated, "dfd": _dfd}


# ---------------------------------------------------------------------------------------------- the cache
def _jsonable(x: Any) -> Any:
    if is_dataclass(x) and not isinstance(x, type):
        return _jsonable(asdict(x))
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in sorted(x.items())}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x.expanduser().resolve())
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return repr(x)


def _file_stat(p: Path | None) -> list[Any] | None:
    if p is None or not Path(p).is_file():
        return None
    st = Path(p).stat()
    return [str(Path(p).resolve()), st.st_size, st.st_mtime_ns]


def _input_signature(scene: Scene, frame: Frame, source: str, opts: dict[str, Any]) -> str:
    """A hash of everything the prior of this frame depends on (geometry, options, input files)."""
    files = [frame.image_path, frame.lidar_path, frame.sky_mask_path, frame.depth_path, scene.points_path]
    if source == "mono":
        from recon.priors.mono import resolve_model

        spec = opts.get("model") if opts.get("model") is not None else opts.get("weights")
        files.extend(resolve_model(spec).files())
    sig = {"scene": scene.fingerprint(), "frame": frame.id, "source": source, "opts": _jsonable(opts),
           "files": [_file_stat(p) for p in files]}
    return hashlib.sha1(json.dumps(sig, sort_keys=True).encode()).hexdigest()


def prior_cache_path(scene: Scene, frame: Frame, source: str, opts: dict[str, Any],
                     cache_dir: str | Path | None = None) -> Path:
    """Where the cached prior of ``frame`` for ``source`` with ``opts`` lives."""
    root = Path(cache_dir) if cache_dir is not None else scene.root / "priors"
    okey = hashlib.sha1(json.dumps({"source": source, "opts": _jsonable(opts)}, sort_keys=True).encode())
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", frame.id)
    return root / f"{source}-{okey.hexdigest()[:10]}" / f"{safe}.npz"


def compute_prior(scene: Scene, frame: Frame, source: str, *, cache_dir: str | Path | None = None,
                  use_cache: bool = True, **opts: Any) -> DepthPrior:
    """The depth prior of ``frame`` from ``source`` (see the module docstring), cached on disk.

    ``use_cache=False`` neither reads nor writes the cache. The ``device`` option does not change the result and
    is left out of the cache key.
    """
    fn = _BUILTIN.get(source)
    if fn is None:
        raise ReconError(f"unknown depth prior source {source!r} (choose from {', '.join(available_sources())})")
    key_opts = {k: v for k, v in opts.items() if k != "device"}
    if not use_cache:
        return fn(scene, frame, **opts)
    path = prior_cache_path(scene, frame, source, key_opts, cache_dir)
    sig = _input_signature(scene, frame, source, key_opts)
    if path.is_file():
        try:
            cached = DepthPrior.load(path)
        except ReconError:
            cached = None  # a damaged cache file is recomputed, not fatal
        if cached is not None and cached.meta.get("input_signature") == sig:
            return cached
    prior = fn(scene, frame, **opts)
    prior.meta = {**prior.meta, "input_signature": sig}
    prior.save(path)
    return prior


def mono_weights_available() -> bool:
    """Whether a default monocular depth model is on disk (the Hugging Face cache; never downloaded)."""
    from recon.priors.mono import resolve_model

    try:
        resolve_model(None)
    except ReconError:
        return False
    return True


def training_source(scene: Scene, source: str) -> tuple[str, dict[str, Any]]:
    """The prior source and options a training run uses for ``--loss.dof-prior SOURCE``.

    ``auto`` is the best *real* prior the scene allows: a monocular network when its weights are on disk, scaled to
    the scene's LiDAR or SfM points; else the scene's densified LiDAR; else its densified SfM points
    (``recon sfm``). ``mono`` is aligned the same way. The simulated prior (synthetic scenes only, a test fixture)
    is used only when asked for by name.
    """
    sparse = "lidar" if scene.has_lidar() else ("sfm" if scene.points_path is not None else None)
    if source == "auto":
        if mono_weights_available() and sparse is not None:
            return "mono", {"align": sparse}
        if sparse is None:
            raise ReconError(f"{scene.root}: no metric depth for the depth prior (no LiDAR, no SfM points, no mono "
                             "weights); run `recon sfm --data SCENE` first or pass --loss.dof-prior")
        return sparse, {}
    if source == "mono":
        if sparse is None:
            raise ReconError(f"{scene.root}: the mono prior is scaled to LiDAR or SfM points and the scene has "
                             "neither; run `recon sfm --data SCENE` first")
        return "mono", {"align": sparse}
    return source, {}


def prior_for_training(scene: Scene, frame: Frame, source: str, seed: int = 0) -> DepthPrior:
    """The prior a training run uses for ``frame`` (source resolved by :func:`training_source`): ``compute_prior``
    with its default options (cached), the simulated source drawn with the run's ``seed`` (each seed its own draw,
    as a different network would be)."""
    if source == "simulated":
        return compute_prior(scene, frame, source, seed=seed)
    name, opts = training_source(scene, source)
    return compute_prior(scene, frame, name, **opts)
