"""recon batch: bad options and inputs are one line before anything runs; on a local Ray instance (2 CPUs) a failed
scene does not stop the others, a driver SIGKILLed mid-batch is restarted and continues from the manifest without
redoing finished steps, and the figures equal the local executor's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.bench import TINY_FLAGS

from recon.batch.config import BatchConfig
from recon.batch.inputs import converters
from recon.batch.runner import run_batch
from recon.cli import main

SYNTH_ARGS = "--width 96 --height 64 --n-frames 9"


def _batch(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    rc = main(["batch", *args])
    return rc, capsys.readouterr().err.strip()


def test_bad_options_are_one_line_and_write_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    raw = tmp_path / "raw"
    raw.mkdir()
    bad_json = tmp_path / "in.json"
    bad_json.write_text("[{\"src\": \"raw\"}]")
    cases = [
        (["synth:0", "--steps", "convert,fit"], "error: --steps: unknown step 'fit' (steps: convert, sfm, train, "
                                                "eval)"),
        (["--steps", "train"], "error: no inputs: give scene folders, synth:SEED or raw datasets (with --from), or "
                               "--inputs-file"),
        (["synth:x"], "error: 'synth:x': not synth:SEED with an integer SEED"),
        ([str(tmp_path / "nope")], f"error: {tmp_path / 'nope'}: no such scene folder (give --from SOURCE to "
                                   "convert raw data)"),
        ([str(raw)], f"error: {raw}: not a scene folder (no scene.json); give --from SOURCE to convert raw data"),
        ([str(raw), "--from", "kiti"], f"error: --from kiti: unknown converter 'kiti' (one of "
                                       f"{', '.join(converters())})"),
        ([str(raw), "--from", "kitti", "--convert-args=--out x"],
         "error: --convert-args: --out is not allowed here (recon batch writes each scene to OUT/scenes/NAME)"),
        (["synth:0", "--convert-args=--width abc"],
         "error: synth:0: --convert-args: Error parsing --width: invalid literal for int() with base 10: 'abc'"),
        (["synth:0", "--extra=--resume"], "error: --extra: --resume is not allowed here (a finished run of the same "
                                          "configuration is reused, an unfinished one is started over)"),
        (["synth:0", "--preset", "nope"], "error: unknown preset 'nope' (available: "),
        (["--inputs-file", str(bad_json)], f"error: --inputs-file: {bad_json} entry 0: expected an object with "
                                           "string 'src' and 'from'"),
        (["synth:0", "--steps", "train"], f"error: synth:0: not converted yet ({out.resolve()}/scenes/synth_0 has "
                                          "no scene.json); add convert to --steps"),
    ]
    for args, message in cases:
        rc, err = _batch(capsys, "--out", str(out), *args)
        assert rc == 2 and err.startswith(message) and len(err.splitlines()) == 1, (args, err)
    assert not out.exists()


def _cfg(out: Path, *inputs: str, executor: str = "ray", address: str | None = None) -> BatchConfig:
    return BatchConfig(out=out, inputs=inputs, steps="convert,sfm,train,eval", convert_args=SYNTH_ARGS, iters=8,
                       extra=TINY_FLAGS, executor=executor, ray_address=address)


def _cli_args(cfg: BatchConfig) -> list[str]:
    return ["batch", *cfg.inputs, "--out", str(cfg.out), "--steps", cfg.steps, f"--convert-args={cfg.convert_args}",
            "--iters", str(cfg.iters), f"--extra={cfg.extra}", "--executor", cfg.executor, "--ray-address",
            str(cfg.ray_address)]


def _wait_for(path: Path, ok, proc: subprocess.Popen | None = None, timeout: float = 900.0) -> dict:  # noqa: ANN001
    """Poll ``path`` until ``ok``; a generous bound (a busy 2-core machine converts slowly), and an early failure
    when the driver process ``proc`` has already exited."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the driver exited with status {proc.returncode} before {path} was ready")
        try:
            d = json.loads(path.read_text())
            if ok(d):
                return d
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{path} never reached the expected state")


@pytest.mark.slow
def test_killed_driver_continues_from_manifest_and_failed_scene_is_isolated(tmp_path: Path,
                                                                          ray_local: object) -> None:
    ray = ray_local
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "scene.json").write_text("{ not json")
    out = tmp_path / "b"
    address = ray.get_runtime_context().gcs_address
    cfg = _cfg(out, "synth:0", str(broken), address=address)
    # a driver in its own process, joined to the test's Ray instance, SIGKILLed once synth_0 is converted
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "recon.cli", *_cli_args(cfg)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        first = _wait_for(out / "manifest.json",
                          lambda d: d["scenes"].get("synth_0", {}).get("steps", {}).get("convert", {})
                          .get("state") == "done", proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert first["scenes"]["synth_0"]["state"] in ("running", "pending")
    scene_json = out / "scenes" / "synth_0" / "scene.json"
    stamp = scene_json.stat().st_mtime_ns

    # the restarted driver continues: the converted scene is not converted again
    data = run_batch(_cfg(out, "synth:0", str(broken), address=address), progress=False)
    s0 = data["scenes"]["synth_0"]
    assert s0["state"] == "done" and s0["error"] is None
    assert s0["steps"]["convert"]["attempts"] == 1 and scene_json.stat().st_mtime_ns == stamp
    assert s0["steps"]["sfm"]["state"] == "skipped" and s0["steps"]["sfm"]["note"].startswith("scene has LiDAR")
    assert s0["steps"]["train"]["state"] == s0["steps"]["eval"]["state"] == "done"
    assert Path(s0["outputs"]["metrics"]).is_file()
    bad = data["scenes"]["broken"]
    assert bad["state"] == "failed" and bad["error"].startswith("sfm: ") and "scene.json" in bad["error"]
    assert len(bad["error"].splitlines()) == 1 and "Traceback" not in bad["error"]
    assert json.loads((out / "manifest.json").read_text()) == data

    # a third run has nothing left to do for synth_0 and tries the failed scene again
    again = run_batch(_cfg(out, "synth:0", str(broken), address=address), progress=False)
    assert again["scenes"]["synth_0"]["steps"]["train"]["attempts"] == s0["steps"]["train"]["attempts"]
    assert again["scenes"]["broken"]["steps"]["sfm"]["attempts"] == bad["steps"]["sfm"]["attempts"] + 1

    # the same figures as the local executor
    local = run_batch(_cfg(tmp_path / "local", "synth:0", executor="local"), progress=False)
    assert local["scenes"]["synth_0"]["metrics"] == s0["metrics"]
    assert local["scenes"]["synth_0"]["train"]["n_gaussians"] == s0["train"]["n_gaussians"]
