"""``recon data synth``: generate the embedded synthetic street scene folder.

    recon data synth --out data/street [--seed 3] [--layout boulevard] [--width 640 --height 384] [--overwrite]
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from recon.data.synth.config import SynthConfig


@dataclass(kw_only=True)
class SynthArgs(SynthConfig):
    """Generate the embedded synthetic Waymo-style street: RGB, exact depth, sky masks, LiDAR and true
    finite-aperture images, written atomically as a recon scene folder."""

    out: Path
    """Output scene folder (created atomically; must not exist unless --overwrite)."""
    overwrite: bool = False
    """Replace an existing scene folder (only a recon scene; the old one stays if generation fails)."""

    def config(self) -> SynthConfig:
        return SynthConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(SynthConfig)})


def main(argv: list[str], prog: str = "recon data synth") -> int:
    import tyro
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from recon.data.check import check_replaceable_scene
    from recon.data.synth.street import make_street
    from recon.io.diskfull import disk_full_is_one_line
    from recon.io.folders import check_parent_writable

    args = tyro.cli(SynthArgs, args=argv, prog=prog)
    cfg = args.config()
    cfg.validate()
    check_parent_writable(args.out, "output folder")
    if args.overwrite:
        check_replaceable_scene(args.out)  # the old scene itself is kept until the new one is complete
    t0 = time.perf_counter()
    with disk_full_is_one_line(args.out), Progress(TextColumn("{task.description}"), BarColumn(),
                                                   MofNCompleteColumn(), TimeElapsedColumn(), transient=False) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                label = "camera frames" if stage == "frames" else "finite-aperture images"
                tasks[stage] = bar.add_task(label, total=total)
            bar.update(tasks[stage], completed=done)

        scene = make_street(cfg, args.out, overwrite=args.overwrite, progress=progress)
    print(scene.summary())
    print(f"generated in {time.perf_counter() - t0:.1f} s")
    return 0
