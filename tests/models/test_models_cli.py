"""`recon models list|fetch`, tested against files served on 127.0.0.1 only (never the internet)."""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from recon.cli import main
from recon.models import registry

PAYLOAD = bytes(range(256)) * 1000  # 256 kB
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path not in ("/loftr.ckpt", "/hf/loftr.ckpt", "/hf-wrong/loftr.ckpt", "/short.ckpt"):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD) + (10 if self.path == "/short.ckpt" else 0)))
        if self.path.startswith("/hf"):  # the Hugging Face hub sends the SHA-256 of a large file like this
            self.send_header("X-Linked-Etag", f'"{SHA if self.path.startswith("/hf/") else "0" * 64}"')
        self.end_headers()
        self.wfile.write(PAYLOAD)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture()
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return tmp_path / "hub" / "checkpoints"


def _entry(monkeypatch: pytest.MonkeyPatch, urls: tuple[str, ...], sha256: str | None) -> None:
    e = dataclasses.replace(registry.MODELS["loftr-outdoor"], urls=urls, sha256=sha256)
    monkeypatch.setitem(registry.MODELS, "loftr-outdoor", e)


def test_fetch_a_file_with_its_published_checksum(server: str, hub: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    _entry(monkeypatch, (f"{server}/missing.ckpt", f"{server}/loftr.ckpt"), SHA)  # the first source fails
    assert main(["models", "fetch", "loftr-outdoor"]) == 0
    cap = capsys.readouterr()
    dest = hub / "loftr_outdoor.ckpt"
    assert dest.read_bytes() == PAYLOAD
    assert f"sha256 {SHA} verified against the published hash" in cap.out and "Apache-2.0" in cap.out
    assert "loftr_outdoor.ckpt" in cap.err  # the progress bar
    assert main(["models", "fetch", "loftr-outdoor"]) == 0
    assert "already at" in capsys.readouterr().out
    assert main(["models", "list"]) == 0
    listing = capsys.readouterr().out
    assert f"present ({dest})" in listing and "depth-anything-v2-metric-outdoor-small" in listing


def test_a_wrong_checksum_writes_nothing(server: str, hub: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    _entry(monkeypatch, (f"{server}/loftr.ckpt",), "0" * 64)
    assert main(["models", "fetch", "loftr-outdoor", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "checksum mismatch" in err[0]
    assert not hub.exists() or not any(hub.iterdir())  # neither the file nor a temporary is left


def test_checksum_sent_by_the_server_is_checked(server: str, hub: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    _entry(monkeypatch, (f"{server}/hf/loftr.ckpt",), None)
    assert main(["models", "fetch", "loftr-outdoor", "--no-progress"]) == 0
    assert "verified against the published hash" in capsys.readouterr().out
    _entry(monkeypatch, (f"{server}/hf-wrong/loftr.ckpt",), None)
    assert main(["models", "fetch", "loftr-outdoor", "--force", "--no-progress"]) == 2
    assert "checksum mismatch" in capsys.readouterr().err
    assert (hub / "loftr_outdoor.ckpt").read_bytes() == PAYLOAD  # the good file is still there


def test_no_published_checksum_mirror_url_and_truncation(server: str, hub: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    _entry(monkeypatch, (f"{server}/short.ckpt",), None)
    assert main(["models", "fetch", "loftr-outdoor", "--no-progress"]) == 2
    assert "download incomplete" in capsys.readouterr().err
    assert main(["models", "fetch", "loftr-outdoor", "--url", f"{server}/loftr.ckpt", "--no-progress"]) == 0
    assert f"sha256 {SHA} (the source publishes no checksum)" in capsys.readouterr().out
    assert main(["models", "fetch", "loftr-outdoor", "--url", "ftp://127.0.0.1/x", "--force"]) == 2
    assert "only http(s) URLs" in capsys.readouterr().err


def test_unknown_names_and_hub_repositories(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "fetch", "nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    calls: list[tuple[str, bool]] = []

    def fake_snapshot_download(repo_id: str, force_download: bool = False) -> str:
        calls.append((repo_id, force_download))
        return str(tmp_path / "snap")

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    assert main(["models", "fetch", "depth-anything-v2-metric-outdoor-small"]) == 0
    assert calls == [("depth-anything/Depth-Anything-V2-Metric-Outdoor-Small-hf", False)]
    assert "Hugging Face cache" in capsys.readouterr().out
    assert main(["models", "fetch", "depth-anything-v2-small", "--url", "http://127.0.0.1/x"]) == 2
    assert "not a single file" in capsys.readouterr().err
