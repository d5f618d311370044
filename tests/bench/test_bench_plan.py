"""recon bench's checks before anything trains: every bad option, scene or preset is one line and writes nothing;
repeats are run once; same-named scene folders get their own runs; a finished run is reused only under the same
configuration; without Ray, --executor ray says how to install it."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import pytest
from support.bench import TINY_FLAGS

from recon.bench.config import BenchConfig
from recon.bench.executors import INSTALL_HINT, make_executor
from recon.bench.plan import check_inputs, make_plan
from recon.cli import main
from recon.errors import ReconError


def _bench(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    rc = main(["bench", *args])
    err = capsys.readouterr().err.strip()
    return rc, err


@pytest.mark.parametrize(("args", "message"), [
    (["--seeds", "a"], "error: --seeds: 'a' is not an integer seed"),
    (["--seeds", ""], "error: --seeds: nothing given (expected a comma-separated list)"),
    (["--seeds", "0,-1"], "error: --seeds: seed -1 is negative (seeds are >= 0)"),
    (["--scenes", "synth:x"], "error: --scenes: 'synth:x' is not synth:SEED with an integer SEED"),
    (["--extra=--name 'abc"], "error: --extra: cannot split \"--name 'abc\" into flags (No closing quotation)"),
    (["--extra=--name abc"], "error: --extra: Unrecognized options: --name, abc"),
    (["--extra=--out X"], "error: --extra: --out is not allowed here (recon bench and recon batch own their run "
                          "folders)"),
    (["--extra=--data=X"], "error: --extra: --data is not allowed here (the scene comes from --scenes (bench) or "
                           "the inputs (batch))"),
    (["--extra=--overwrite"], "error: --extra: --overwrite is not allowed here (a finished run of the same "
                              "configuration is reused, an unfinished one is started over)"),
    (["--extra=--no-resume"], "error: --extra: --no-resume is not allowed here (a finished run of the same "
                              "configuration is reused, an unfinished one is started over)"),
    (["--extra=--iters 3"], "error: --extra: --iters is not allowed here (use the command's own --iters)"),
    (["--extra=--loss.ssim-lambda 7"], "error: --extra: --loss.ssim-lambda must be in [0, 1], got 7"),
    (["--methods", "baseline,nope"], "error: --methods: unknown preset 'nope' (available: "),
    (["--iters", "abc"], "error: recon bench: Error parsing --iters: invalid literal for int() with base 10: 'abc'"),
    (["--iters", "0"], "error: --iters: 0 is not a number of iterations (>= 1)"),
])
def test_bad_option_is_one_line_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   args: list[str], message: str) -> None:
    out = tmp_path / "b"
    rc, err = _bench(capsys, "--out", str(out), "--scenes", "synth:0", *args)
    assert rc == 2 and err.startswith(message) and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_missing_scene_is_found_before_anything_runs(tmp_path: Path, bench_street: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "b"
    missing = tmp_path / "nope"
    rc, err = _bench(capsys, "--out", str(out), "--scenes", f"{bench_street},{missing}", "--methods", "baseline")
    assert (rc, err) == (2, f"error: --scenes: {missing}: no such scene folder")
    (tmp_path / "empty").mkdir()
    rc, err = _bench(capsys, "--out", str(out), "--scenes", f"synth:0,{tmp_path / 'empty'}")
    assert (rc, err) == (2, f"error: --scenes: {tmp_path / 'empty'}: not a scene folder (no scene.json)")
    assert not out.exists()


def test_repeats_run_once_and_same_named_scenes_get_own_runs(tmp_path: Path, bench_street: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "A" / "s", tmp_path / "B" / "s"
    shutil.copytree(bench_street, a)
    shutil.copytree(bench_street, b)
    cfg = BenchConfig(out=tmp_path / "b", scenes=f"{a},{b},{a}/", methods="baseline,baseline", seeds="0,1,0",
                      iters=4, extra=TINY_FLAGS)
    inp = check_inputs(cfg)
    notes = capsys.readouterr().out
    assert "--seeds: 0 is listed more than once" in notes and "--methods: baseline is listed more than once" in notes
    assert f"{a}/ is the same scene as {a}" in notes
    plan = make_plan(cfg, inp)
    assert plan.seeds == [0, 1] and plan.methods == ["baseline"]
    names = [s.name for s in plan.scenes]
    expect = [f"s_{hashlib.sha1(str(p.resolve()).encode()).hexdigest()[:6]}" for p in (a, b)]
    assert names == expect and names[0] != names[1]
    dirs = {r.run_dir for r in plan.runs}
    assert len(dirs) == len(plan.runs) == 4
    assert {r.scene_dir for r in plan.runs} == {a.resolve(), b.resolve()}


def _fake_finished_run(run_dir: Path, scene: Path, key: str, iters: int, /, **fields: object) -> dict[str, str]:
    """A finished run folder (as recon bench leaves one) of the given key; returns its files' hashes."""
    (run_dir / "eval").mkdir(parents=True)
    files = {"config.json": json.dumps({"config_key": "x", "data": str(scene)}),
             "eval/metrics.json": json.dumps({"psnr": 20.0}), "train_summary.json": json.dumps({"iters": iters}),
             "bench_run.json": json.dumps({"key": key, "iters": iters, "preset": "baseline", "seed": 0, **fields})}
    for name, text in files.items():
        (run_dir / name).write_text(text)
    return {n: hashlib.sha1((run_dir / n).read_bytes()).hexdigest() for n in files}


def test_finished_run_of_another_config_is_refused_untouched(tmp_path: Path, bench_street: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "b"
    run_dir = out / "runs" / "street" / "baseline" / "seed0"
    before = _fake_finished_run(run_dir, bench_street, "0123456789abcdef", 40)
    rc, err = _bench(capsys, "--out", str(out), "--scenes", str(bench_street), "--methods", "baseline", "--seeds",
                     "0", "--iters", "8", f"--extra={TINY_FLAGS}")
    assert rc == 2
    assert err == (f"error: {run_dir.resolve()}: holds a finished run of another configuration (iters 40 (now 8)); "
                   "choose another --out, or remove that folder to train it again")
    assert {n: hashlib.sha1((run_dir / n).read_bytes()).hexdigest() for n in before} == before
    assert not (out / "results.json").exists()


def test_same_config_is_reused_other_extra_is_not(tmp_path: Path, bench_street: Path) -> None:
    cfg = BenchConfig(out=tmp_path / "b", scenes=str(bench_street), methods="baseline", seeds="0", iters=8,
                      extra=TINY_FLAGS)
    plan = make_plan(cfg, check_inputs(cfg))
    run = plan.runs[0]
    _fake_finished_run(run.run_dir, bench_street, run.key, 8,
                       **{k: v for k, v in run.key_fields.items() if k != "iters"})
    from recon.bench.plan import is_finished

    assert is_finished(run)
    other = BenchConfig(out=tmp_path / "b", scenes=str(bench_street), methods="baseline", seeds="0", iters=8,
                        extra=TINY_FLAGS + " --loss.ssim-lambda 0.3")
    with pytest.raises(ReconError, match=r"holds a finished run of another configuration \(extra "):
        make_plan(other, check_inputs(other))


def test_foreign_folder_at_a_run_path_is_refused(tmp_path: Path, bench_street: Path) -> None:
    cfg = BenchConfig(out=tmp_path / "b", scenes=str(bench_street), methods="baseline", seeds="0", iters=8)
    run_dir = tmp_path / "b" / "runs" / "street" / "baseline" / "seed0"
    run_dir.mkdir(parents=True)
    (run_dir / "notes.txt").write_text("mine")
    with pytest.raises(ReconError, match="not a recon run folder; recon bench will not write into it"):
        make_plan(cfg, check_inputs(cfg))
    assert (run_dir / "notes.txt").read_text() == "mine"


def test_ray_executor_without_ray_says_how_to_install(tmp_path: Path, bench_street: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ReconError) as exc:
        make_executor("ray")
    assert str(exc.value) == INSTALL_HINT
    rc, err = _bench(capsys, "--out", str(tmp_path / "b"), "--scenes", str(bench_street), "--methods", "baseline",
                     "--seeds", "0", "--iters", "2", "--executor", "ray")
    assert (rc, err) == (2, f"error: {INSTALL_HINT}")
    assert not (tmp_path / "b" / "results.json").exists()
    with pytest.raises(ReconError, match="--ray-address needs --executor ray"):
        make_executor("local", address="auto")


def test_unreachable_ray_address_is_one_line_at_once() -> None:
    import socket

    from recon.bench.executors import probe_address

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ReconError, match=rf"--ray-address: no Ray cluster answers at 127.0.0.1:{port} \("):
        probe_address(f"127.0.0.1:{port}")
    with pytest.raises(ReconError, match="is not 'auto', HOST:PORT or ray://HOST:PORT"):
        probe_address("head:port")
    with pytest.raises(ReconError, match="port 70000 is out of range"):
        probe_address("ray://head:70000")
    probe_address("auto")  # left to Ray


def test_extra_out_never_touches_that_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    victim = tmp_path / "X"
    victim.mkdir()
    (victim / "keep.txt").write_text("user data")
    before = hashlib.sha1((victim / "keep.txt").read_bytes()).hexdigest()
    for extra in (f"--extra=--out {victim}", f"--extra=--out={victim} --overwrite", f"--extra=--data {victim}"):
        rc, err = _bench(capsys, "--out", str(tmp_path / "b"), "--scenes", "synth:0", extra)
        assert rc == 2 and err.startswith("error: --extra: --") and len(err.splitlines()) == 1
    assert [p.name for p in victim.iterdir()] == ["keep.txt"]
    assert hashlib.sha1((victim / "keep.txt").read_bytes()).hexdigest() == before
