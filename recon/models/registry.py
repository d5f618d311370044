"""The named models ``recon models`` knows: where each comes from, where it goes, its licence.

Two kinds of entry:

- a single **file** (``urls``, tried in order; ``dest`` under the torch hub cache's ``checkpoints/``, where
  :mod:`recon.match.loftr` looks): ``sha256`` when the source publishes it; otherwise a SHA-256 the server sends
  beside the file (the Hugging Face hub's ``X-Linked-Etag`` of a large file) is checked, and the computed hash is
  printed either way;
- a **Hugging Face model repository** (``repo_id``) fetched into the standard Hugging Face cache with
  ``huggingface_hub.snapshot_download`` (its own progress bars and integrity checks), where
  :func:`recon.priors.mono.resolve_model` finds it by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelEntry:
    """One named model: a file (``urls`` + ``dest``) or a hub repository (``repo_id``)."""

    name: str
    description: str
    licence: str
    urls: tuple[str, ...] = ()
    dest: str | None = None  # file name under the torch hub cache's checkpoints/
    sha256: str | None = None
    repo_id: str | None = None

    @property
    def kind(self) -> str:
        return "hub" if self.repo_id is not None else "file"


def checkpoint_dir() -> Path:
    """``torch.hub.get_dir()/checkpoints``: where kornia and recon look for downloaded checkpoints."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def file_destination(entry: ModelEntry) -> Path:
    if entry.dest is None:
        raise ValueError(f"{entry.name} is not a file entry")
    return checkpoint_dir() / entry.dest


_ENTRIES = (
    ModelEntry("loftr-outdoor", "LoFTR outdoor checkpoint (MegaDepth), the matcher `--matcher auto` prefers",
               "Apache-2.0 (zju3dv/LoFTR)",
               urls=("https://huggingface.co/kornia/loftr/resolve/main/loftr_outdoor.ckpt",
                     "https://cmp.felk.cvut.cz/~mishkdmy/models/loftr_outdoor.ckpt"),
               dest="loftr_outdoor.ckpt"),
    ModelEntry("depth-anything-v2-metric-outdoor-small", "Depth Anything V2 metric outdoor (Virtual KITTI 2), ViT-S, "
               "metres up to 80 m; the default `--mono.model`", "Apache-2.0",
               repo_id="depth-anything/Depth-Anything-V2-Metric-Outdoor-Small-hf"),
    ModelEntry("depth-anything-v2-metric-outdoor-base", "Depth Anything V2 metric outdoor, ViT-B",
               "CC-BY-NC-4.0 (non-commercial)", repo_id="depth-anything/Depth-Anything-V2-Metric-Outdoor-Base-hf"),
    ModelEntry("depth-anything-v2-metric-outdoor-large", "Depth Anything V2 metric outdoor, ViT-L",
               "CC-BY-NC-4.0 (non-commercial)", repo_id="depth-anything/Depth-Anything-V2-Metric-Outdoor-Large-hf"),
    ModelEntry("depth-anything-v2-small", "Depth Anything V2 relative (affine-invariant inverse depth), ViT-S; "
               "needs --align lidar|sfm", "Apache-2.0", repo_id="depth-anything/Depth-Anything-V2-Small-hf"),
    ModelEntry("zoedepth-kitti", "ZoeDepth fine-tuned on KITTI, metric", "MIT", repo_id="Intel/zoedepth-kitti"),
    ModelEntry("depth-pro", "Apple Depth Pro, metric", "Apple sample code licence (apple-amlr)",
               repo_id="apple/DepthPro-hf"),
)
MODELS: dict[str, ModelEntry] = {e.name: e for e in _ENTRIES}
