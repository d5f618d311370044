"""Waymo v1 TFRecord -> recon scene (no TensorFlow): CRC32C, framing, wire decoding, geometry, LiDAR, sky."""

from __future__ import annotations

import numpy as np
import pytest
from support.convert_data import (
    decode_png,
    encode_frame,
    expected_lidar_world,
    make_waymo_truth,
    projection_disagreement,
    write_waymo_v1,
)

from recon.data.convert import protobuf_wire as pw
from recon.data.convert.tfrecord import _raw_crc_py, crc32c, encode_record, masked_crc32c, read_records
from recon.data.convert.waymo_v1 import convert_waymo_v1, parse_frame
from recon.data.scene import Scene


def test_crc32c_known_vectors_and_numpy_path() -> None:
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    assert crc32c(b"") == 0
    assert crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720 B.4: 32 bytes of zeros
    assert crc32c(b"\xff" * 32) == 0x62A8AB43  # RFC 3720 B.4: 32 bytes of 0xff
    rng = np.random.default_rng(0)
    for n in (4096, 10_001, 200_003):  # the numpy lock-step path, against the byte loop
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert crc32c(data) == _raw_crc_py(data, 0xFFFFFFFF) ^ 0xFFFFFFFF


def test_tfrecord_roundtrip(tmp_path) -> None:
    recs = [b"", b"a", bytes(range(256)) * 30]
    p = tmp_path / "x.tfrecord"
    p.write_bytes(b"".join(encode_record(r) for r in recs))
    assert list(read_records(p)) == recs
    # the framing is TensorFlow's: length, masked CRC of the length, data, masked CRC of the data
    raw = encode_record(b"abc")
    assert raw[:8] == (3).to_bytes(8, "little") and raw[8:12] == masked_crc32c(raw[:8]).to_bytes(4, "little")


def test_wire_decoder_packed_and_unpacked() -> None:
    vals = np.array([1.5, -2.25, 3e8])
    a = pw.decode(pw.enc_unpacked_doubles(2, vals) + pw.enc_varint_field(1, -5))
    b = pw.decode(pw.enc_packed_doubles(2, vals))
    assert np.array_equal(a.doubles(2), vals) and np.array_equal(b.doubles(2), vals) and a.int(1) == -5
    with pytest.raises(pw.WireError):
        pw.decode(pw.enc_bytes_field(3, b"abcdef")[:-2])


def test_parse_frame_fields() -> None:
    t = make_waymo_truth(n_steps=1)
    fr = parse_frame(encode_frame(t, 0), "test")
    assert fr.timestamp_micros == t.timestamps[0] and np.allclose(fr.pose, t.ego[0])
    assert set(fr.camera_calibs) == {1, 4} and fr.camera_calibs[4].width == 38
    assert np.allclose(fr.camera_calibs[1].intrinsic, t.cams[1]["intrinsic"])
    assert np.allclose(fr.laser_calibs[1].inclinations, t.laser["inclinations"])
    assert [im.name for im in fr.images] == [1, 4] and fr.images[0].seg is not None


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory):
    t = make_waymo_truth()
    root = tmp_path_factory.mktemp("wv1")
    write_waymo_v1(t, root / "seg.tfrecord")
    convert_waymo_v1(root / "seg.tfrecord", root / "out")
    return t, Scene.load(root / "out")


def test_v1_geometry_images_lidar_sky(converted) -> None:
    t, scene = converted
    offset = np.array(scene.meta["world_offset_m"])
    for fr in scene.frames:
        cam = {"FRONT": 1, "SIDE_LEFT": 4}[fr.camera.name]
        assert np.array_equal(decode_png(fr.image_path)[..., :3], t.images[fr.index][cam])
    worst, _ = projection_disagreement(t, scene, np.random.default_rng(2))
    assert worst < 1e-6
    for s in range(3):
        got = scene.frame(f"SIDE_LEFT_{s:05d}").load_lidar().astype(np.float64)
        assert np.abs(got - (expected_lidar_world(t, s) - offset)).max() < 1e-3
    sky = scene.frame("FRONT_00000").load_sky_mask()
    assert sky is not None and sky[:8].all() and not sky[8:].any()
    splits = [f.split for f in scene.frames]
    assert splits.count("train") == 6  # 3 frames per camera: index 4 would be the first test frame
