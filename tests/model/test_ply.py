"""3DGS PLY IO: round trips, the INRIA layout written by hand, gsplat's exporter, and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from recon.errors import ReconError
from recon.model.ply import SH_C0, GaussianData, load_ply, num_rest_coeffs, save_ply


def _random_gaussians(n: int, degree: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    k = num_rest_coeffs(degree)
    return {
        "means": rng.normal(size=(n, 3)).astype(np.float32) * 5,
        "quats": rng.normal(size=(n, 4)).astype(np.float32),
        "log_scales": rng.uniform(-4, 0, size=(n, 3)).astype(np.float32),
        "opacity_logits": rng.normal(size=n).astype(np.float32),
        "sh0": rng.normal(size=(n, 1, 3)).astype(np.float32),
        "shN": rng.normal(size=(n, k, 3)).astype(np.float32),
    }


def _assert_same(g: GaussianData, ref: dict[str, np.ndarray]) -> None:
    for key, val in ref.items():
        np.testing.assert_array_equal(getattr(g, key), val, err_msg=key)


@pytest.mark.parametrize("degree", [0, 1, 3])
def test_round_trip_numpy(tmp_path: Path, degree: int) -> None:
    ref = _random_gaussians(257, degree)
    path = save_ply(tmp_path / "pc.ply", **ref)
    g = load_ply(path)
    assert g.sh_degree == degree and len(g) == 257
    assert g.shN.shape == (257, num_rest_coeffs(degree), 3)
    _assert_same(g, ref)
    # Nothing but the file itself is left in the folder (atomic write cleans its temporary file).
    assert [p.name for p in tmp_path.iterdir()] == ["pc.ply"]


def test_round_trip_torch_and_layout(tmp_path: Path) -> None:
    ref = _random_gaussians(64, 3, seed=1)
    tensors = {k: torch.from_numpy(v).requires_grad_(True) for k, v in ref.items()}
    path = save_ply(tmp_path / "t.ply", **tensors)
    raw = path.read_bytes()
    header = raw[: raw.index(b"end_header\n") + len(b"end_header\n")].decode()
    props = [line.split()[2] for line in header.splitlines() if line.startswith("property")]
    expected = (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
                + [f"f_rest_{i}" for i in range(45)]
                + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])
    assert props == expected
    assert "format binary_little_endian 1.0" in header and "element vertex 64" in header
    body = np.frombuffer(raw[len(header):], dtype="<f4").reshape(64, len(expected))
    # Channel-major f_rest: f_rest_0..14 are the red coefficients, 15..29 green, 30..44 blue.
    np.testing.assert_array_equal(body[:, 9:24], ref["shN"][:, :, 0])
    np.testing.assert_array_equal(body[:, 24:39], ref["shN"][:, :, 1])
    np.testing.assert_array_equal(body[:, 58:62], ref["quats"])
    _assert_same(load_ply(path), ref)


def test_hand_written_inria_layout(tmp_path: Path) -> None:
    """A file built the way graphdeco-inria's GaussianModel.save_ply builds it (features [N, C, 3] transposed)."""
    n, degree = 50, 2
    rng = np.random.default_rng(3)
    xyz = rng.normal(size=(n, 3)).astype(np.float32)
    features_dc = rng.normal(size=(n, 1, 3)).astype(np.float32)  # INRIA: [N, 1, 3]
    features_rest = rng.normal(size=(n, 8, 3)).astype(np.float32)  # INRIA: [N, (deg+1)^2-1, 3]
    opacity = rng.normal(size=(n, 1)).astype(np.float32)
    scale = rng.normal(size=(n, 3)).astype(np.float32)
    rotation = rng.normal(size=(n, 4)).astype(np.float32)
    f_dc = features_dc.transpose(0, 2, 1).reshape(n, -1)
    f_rest = features_rest.transpose(0, 2, 1).reshape(n, -1)
    names = (["x", "y", "z", "nx", "ny", "nz"] + [f"f_dc_{i}" for i in range(3)]
             + [f"f_rest_{i}" for i in range(24)] + ["opacity"] + [f"scale_{i}" for i in range(3)]
             + [f"rot_{i}" for i in range(4)])
    elements = np.empty(n, dtype=[(a, "f4") for a in names])
    attrs = np.concatenate([xyz, np.zeros_like(xyz), f_dc, f_rest, opacity, scale, rotation], axis=1)
    elements[:] = list(map(tuple, attrs))
    header = f"ply\nformat binary_little_endian 1.0\nelement vertex {n}\n"
    header += "".join(f"property float {a}\n" for a in names) + "end_header\n"
    path = tmp_path / "inria.ply"
    path.write_bytes(header.encode() + elements.tobytes())

    g = load_ply(path)
    assert g.sh_degree == degree
    np.testing.assert_array_equal(g.means, xyz)
    np.testing.assert_array_equal(g.sh0, features_dc)
    np.testing.assert_array_equal(g.shN, features_rest)
    np.testing.assert_array_equal(g.opacity_logits, opacity[:, 0])
    np.testing.assert_array_equal(g.log_scales, scale)
    np.testing.assert_array_equal(g.quats, rotation)
    np.testing.assert_allclose(g.base_colors(), np.clip(0.5 + SH_C0 * features_dc[:, 0], 0, 1))


def test_reads_gsplat_exporter(tmp_path: Path) -> None:
    """gsplat's own exporter (no normals) is read back exactly."""
    from gsplat.exporter import export_splats

    ref = _random_gaussians(40, 1, seed=4)
    t = {k: torch.from_numpy(v) for k, v in ref.items()}
    path = tmp_path / "gsplat.ply"
    export_splats(t["means"], t["log_scales"], t["quats"], t["opacity_logits"], t["sh0"], t["shN"],
                  format="ply", save_to=str(path))
    g = load_ply(path)
    _assert_same(g, ref)


def test_other_order_types_and_ascii(tmp_path: Path) -> None:
    ref = _random_gaussians(7, 0, seed=5)
    cols = {"x": ref["means"][:, 0], "y": ref["means"][:, 1], "z": ref["means"][:, 2],
            "opacity": ref["opacity_logits"], "extra": np.arange(7, dtype=np.float32)}
    cols.update({f"f_dc_{i}": ref["sh0"][:, 0, i] for i in range(3)})
    cols.update({f"scale_{i}": ref["log_scales"][:, i] for i in range(3)})
    cols.update({f"rot_{i}": ref["quats"][:, i] for i in range(4)})
    order = sorted(cols)  # any order, an extra property, doubles
    header = "ply\nformat {fmt} 1.0\ncomment made by hand\nelement vertex 7\n"
    header += "".join(f"property double {k}\n" for k in order) + "end_header\n"
    table = np.stack([cols[k].astype(np.float64) for k in order], axis=1)

    bin_path = tmp_path / "big.ply"
    bin_path.write_bytes(header.format(fmt="binary_big_endian").encode() + table.astype(">f8").tobytes())
    asc_path = tmp_path / "ascii.ply"
    body = "\n".join(" ".join(repr(float(v)) for v in row) for row in table) + "\n"
    asc_path.write_text(header.format(fmt="ascii") + body)
    for p in (bin_path, asc_path):
        g = load_ply(p)
        assert g.sh_degree == 0 and g.shN.shape == (7, 0, 3)
        _assert_same(g, ref)


def test_covariances_match_scales_and_rotation() -> None:
    ref = _random_gaussians(10, 0, seed=6)
    g = GaussianData(**ref, sh_degree=0)
    cov = g.covariances().astype(np.float64)
    eig = np.sort(np.linalg.eigvalsh(cov), axis=1)
    np.testing.assert_allclose(eig, np.sort(np.exp(2 * ref["log_scales"].astype(np.float64)), axis=1), rtol=1e-4)


def test_errors_name_file_and_problem(tmp_path: Path) -> None:
    not_ply = tmp_path / "photo.ply"
    not_ply.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(ReconError, match=r"photo\.ply: not a PLY file"):
        load_ply(not_ply)

    with pytest.raises(ReconError, match=r"missing\.ply: PLY file not found"):
        load_ply(tmp_path / "missing.ply")

    points = tmp_path / "points.ply"  # an ordinary coloured point cloud, ascii
    points.write_text("ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\n"
                      "property float z\nproperty uchar red\nproperty uchar green\nproperty uchar blue\n"
                      "end_header\n0 0 0 255 0 0\n1 1 1 0 255 0\n")
    with pytest.raises(ReconError, match=r"points\.ply: not a 3DGS PLY: vertex properties missing: f_dc_0 f_dc_1 "
                                         r"f_dc_2 opacity scale_0"):
        load_ply(points)

    good = save_ply(tmp_path / "good.ply", **_random_gaussians(100, 1))
    raw = good.read_bytes()
    cut = tmp_path / "cut.ply"
    cut.write_bytes(raw[:-10])
    with pytest.raises(ReconError, match=r"cut\.ply: truncated PLY: 100 vertices need \d+ bytes"):
        load_ply(cut)
    headless = tmp_path / "headless.ply"
    headless.write_bytes(raw[:200])
    with pytest.raises(ReconError, match=r"headless\.ply: PLY header has no 'end_header'"):
        load_ply(headless)

    with pytest.raises(ReconError, match=r"bad\.ply: cannot write a 3DGS PLY: bad array shapes: quats"):
        bad = _random_gaussians(5, 0)
        bad["quats"] = bad["quats"][:, :3]
        save_ply(tmp_path / "bad.ply", **bad)
    assert not (tmp_path / "bad.ply").exists()
