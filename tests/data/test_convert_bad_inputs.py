"""Bad inputs give one-line ReconErrors naming the file and the problem, and leave no output folder behind."""

from __future__ import annotations

import pytest
from support.convert_data import make_waymo_truth, write_colmap_text, write_waymo_v1, write_waymo_v2

from recon.data.convert.cli import main as convert_main
from recon.data.convert.colmap import convert_colmap
from recon.data.convert.common import ConvertOptions
from recon.data.convert.waymo_v1 import convert_waymo_v1
from recon.data.convert.waymo_v2 import convert_waymo_v2
from recon.errors import ReconError


def _fails(fn, match: str, tmp_path, *names: str) -> str:
    with pytest.raises(ReconError, match=match) as e:
        fn()
    msg = str(e.value)
    assert "\n" not in msg
    for n in names:
        assert n in msg, msg
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".") or p.name == "out") == []
    return msg


@pytest.fixture(scope="module")
def v1_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("v1") / "seg.tfrecord"
    write_waymo_v1(make_waymo_truth(n_steps=2), p, lidar=False)
    return p.read_bytes()


def test_truncated_tfrecord(tmp_path, v1_file) -> None:
    p = tmp_path / "seg.tfrecord"
    p.write_bytes(v1_file[:-10])
    _fails(lambda: convert_waymo_v1(p, tmp_path / "out"), "truncated TFRecord", tmp_path, str(p))


def test_crc_mismatch_in_data(tmp_path, v1_file) -> None:
    p = tmp_path / "seg.tfrecord"
    data = bytearray(v1_file)
    data[200] ^= 0xFF  # a byte inside the first record's data
    p.write_bytes(bytes(data))
    _fails(lambda: convert_waymo_v1(p, tmp_path / "out"), "CRC mismatch in the data of record 0", tmp_path, str(p))


def test_crc_mismatch_in_length(tmp_path, v1_file) -> None:
    p = tmp_path / "seg.tfrecord"
    data = bytearray(v1_file)
    data[9] ^= 0x01
    p.write_bytes(bytes(data))
    _fails(lambda: convert_waymo_v1(p, tmp_path / "out"), "CRC mismatch in the length", tmp_path, str(p))


def test_crc_error_late_in_file_leaves_nothing(tmp_path, v1_file) -> None:
    """The second record is corrupt: the first was already converted, yet no folder is left."""
    p = tmp_path / "seg.tfrecord"
    data = bytearray(v1_file)
    data[-100] ^= 0xFF
    p.write_bytes(bytes(data))
    _fails(lambda: convert_waymo_v1(p, tmp_path / "out"), "record 1", tmp_path, str(p))


@pytest.mark.parametrize("component", ["vehicle_pose", "camera_calibration"])
def test_missing_parquet_component(tmp_path, component: str) -> None:
    src = tmp_path / "src"
    write_waymo_v2(make_waymo_truth(n_steps=1), src, lidar=False, seg=False, skip=(component,))
    _fails(lambda: convert_waymo_v2(src, tmp_path / "out"), f"missing Waymo v2 component '{component}'", tmp_path,
           f"{component}/")


def test_lidar_without_calibration(tmp_path) -> None:
    src = tmp_path / "src"
    write_waymo_v2(make_waymo_truth(n_steps=1), src, seg=False, skip=("lidar_calibration",))
    _fails(lambda: convert_waymo_v2(src, tmp_path / "out"), "lidar_calibration", tmp_path)


def test_unknown_camera_name_in_data(tmp_path) -> None:
    src = tmp_path / "src"
    write_waymo_v2(make_waymo_truth(n_steps=1), src, lidar=False, seg=False, camera_names={4: 9})
    _fails(lambda: convert_waymo_v2(src, tmp_path / "out"), "unknown Waymo camera name 9", tmp_path, str(src))


def test_unknown_requested_camera(tmp_path) -> None:
    src = tmp_path / "src"
    write_waymo_v2(make_waymo_truth(n_steps=1), src, lidar=False, seg=False)
    _fails(lambda: convert_waymo_v2(src, tmp_path / "out", ConvertOptions(cameras=("REAR",))),
           "unknown camera 'REAR'", tmp_path, "FRONT")


def test_colmap_fisheye(tmp_path) -> None:
    write_colmap_text(tmp_path / "src", model="OPENCV_FISHEYE", params="50 50 32 24 0.1 0 0 0", n=1)
    _fails(lambda: convert_colmap(tmp_path / "src", tmp_path / "out"), "unsupported fisheye camera model", tmp_path)


def test_existing_output_needs_overwrite(tmp_path) -> None:
    src = tmp_path / "src"
    write_waymo_v2(make_waymo_truth(n_steps=1), src, lidar=False, seg=False)
    (tmp_path / "out").mkdir()
    with pytest.raises(ReconError, match="--overwrite"):
        convert_waymo_v2(src, tmp_path / "out")
    convert_waymo_v2(src, tmp_path / "out", ConvertOptions(overwrite=True))
    assert (tmp_path / "out" / "scene.json").is_file()


def test_cli_end_to_end_and_help(tmp_path, capsys) -> None:
    src = tmp_path / "src"
    write_waymo_v2(make_waymo_truth(n_steps=2), src, lidar=False, seg=False)
    assert convert_main([str(src), "--from", "waymo-v2", "--out", str(tmp_path / "out"), "--cameras", "FRONT"]) == 0
    assert "frames: 2" in capsys.readouterr().out
    from recon.cli import main as recon_main

    assert recon_main(["data", "convert", str(src), "--from", "kitti", "--out", str(tmp_path / "k")]) == 2
    assert "calib.txt" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        convert_main(["--help"])
    assert "drivestudio" in capsys.readouterr().out
