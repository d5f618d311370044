"""``recon bench``'s options (a tyro dataclass)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal


@dataclass
class BenchConfig:
    """Benchmark baseline 3DGS against each supervision on the same scenes, seeds and iteration budget.

    Every (scene, method, seed) run trains into OUT/runs/SCENE/METHOD/seedK and is evaluated; a finished run of the
    same configuration is reused, so an interrupted bench continues where it stopped. With --executor ray each run
    is a Ray task (one GPU each where the cluster has GPUs, else --cpus-per-run CPUs).
    """

    out: Path = Path("bench_out")
    """Output folder (runs/, scenes/, logs/, results.json, results.md, plots/). With --executor ray on a cluster it
    must be on a file system every node sees at the same path."""
    scenes: str = "synth:0,synth:1,synth:2"
    """Comma-separated: synth:SEED (generated into OUT/scenes) or paths to scene folders."""
    methods: str = "baseline,lidar,dof,mv,full"
    """Comma-separated preset names from configs/ (or .toml paths)."""
    seeds: str = "0,1,2"
    """Comma-separated non-negative training seeds."""
    iters: int = 1500
    synth_width: int = 320
    synth_height: int = 192
    synth_frames: int = 48
    downscale: float = 1.0
    quick: bool = False
    """Smoke run for CI: a tiny street (96x64, 9 frames), 1 seed, baseline and lidar, at most 40 iterations."""
    sfm: bool = True
    """Run `recon sfm` (known poses, pycolmap triangulation) on a scene folder that has neither LiDAR nor SfM points
    before training, so that every method starts from metric seeds; it writes SCENE/points3d.npy."""
    extra: str = ""
    """Extra `recon train` flags passed to every run, as one shell-quoted string (attach it with "=" so it is not
    read as a bench option): --extra="--init.max-points 20000 --loss.mv-weight 0.2". Flags the bench sets itself
    (--out, --data, --overwrite, --resume, --iters, --seed, --preset, --downscale) are refused."""
    executor: Literal["local", "ray"] = "local"
    """'local': runs one after another in this process; 'ray': each run is a Ray task (needs
    `pip install 'recon[cluster]'`)."""
    ray_address: str | None = None
    """Ray cluster to join (e.g. 'auto' or 'ray://head:10001'); default: start a local Ray instance with this
    machine's cores."""
    cpus_per_run: int = 1
    """CPUs each Ray task declares (and torch threads of each run unless --extra sets --threads)."""
    max_retries: int = 2
    """Ray: times a run is retried when its worker process dies (killed, out of memory, node lost)."""
