"""--loss.mv-matcher picks the matcher of the multi-view supervision."""

from __future__ import annotations

from support.training import tiny_cfg

import recon.match.supervision as sup_mod
from recon.run.folder import prepare_run_folder
from recon.train.build import build_trainer


def test_mv_matcher_option_reaches_the_supervision(tiny_street, tmp_path, monkeypatch) -> None:
    kinds: list[str] = []
    real = sup_mod.create_matcher

    def record(kind, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        kinds.append(kind)
        return real(kind, *args, **kwargs)

    monkeypatch.setattr(sup_mod, "create_matcher", record)
    cfg = tiny_cfg(tiny_street.root, tmp_path / "run", "mv", "--loss.mv-matcher", "sift", "--iters", "1",
                   "--checkpoint-every", "0")
    prepare_run_folder(cfg)
    build_trainer(cfg)
    assert kinds == ["sift"]
