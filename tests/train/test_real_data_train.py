"""The real data in ../shared/data converts and trains with `recon train` (skipped where the folder is absent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.shared import shared_data

from recon.cli import main


@pytest.mark.slow
def test_colmap_sample_converts_and_trains(tmp_path: Path) -> None:
    src = shared_data("colmap_sample")
    scene = tmp_path / "colmap"
    assert main(["data", "convert", str(src), "--from", "colmap", "--out", str(scene), "--downscale", "8"]) == 0
    run = tmp_path / "run"
    assert main(["train", "--data", str(scene), "--out", str(run), "--iters", "20", "--checkpoint-every", "0",
                 "--init.max-points", "5000"]) == 0
    m = json.loads((run / "eval" / "metrics.json").read_text())
    assert m["n_test_views"] >= 1 and m["psnr"] > 8
    assert json.loads((run / "train_summary.json").read_text())["init_source"] == "sfm"


@pytest.mark.slow
def test_kitti_excerpt_converts_and_trains(tmp_path: Path) -> None:
    src = shared_data("kitti_odometry_seq1")
    scene = tmp_path / "kitti"
    assert main(["data", "convert", str(src), "--from", "kitti", "--out", str(scene), "--downscale", "4",
                 "--end", "17"]) == 0
    run = tmp_path / "run"
    with pytest.warns(UserWarning, match="no LiDAR and no SfM"):
        rc = main(["train", "--data", str(scene), "--out", str(run), "--iters", "20", "--checkpoint-every", "0",
                   "--init.random-points", "5000"])
    assert rc == 0
    m = json.loads((run / "eval" / "metrics.json").read_text())
    assert m["n_test_views"] >= 1 and m["psnr"] > 8 and m["depth"] is None
