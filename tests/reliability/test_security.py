"""Security: no code from data (pickles refused), no shell with user paths, exports that stay in the chosen
folder, downloads only over HTTPS and checked, and no listening sockets while the app works."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from engine.bench.harness import MODEL
from engine.library.library import Library
from engine.media.export import ExportError, clip_file_name, export_clip, safe_output_path
from engine.media.synthetic import write_color_video
from engine.models.base import ModelUnavailable
from engine.settings import EngineSettings

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "os.system", "os.popen", "eval", "exec", "pickle.load", "pickle.loads", "marshal.load", "marshal.loads",
    "shelve.open", "dill.load", "dill.loads", "yaml.unsafe_load",
}  # fmt: skip
SUBPROCESS = {"run", "Popen", "call", "check_call", "check_output", "getoutput", "getstatusoutput"}


def _sources() -> Iterator[tuple[Path, ast.AST]]:
    for package in ("engine", "desktop"):
        for path in sorted((REPO / package).rglob("*.py")):
            yield path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def _name(node: ast.AST) -> str:
    """Dotted name of a call target: ``subprocess.run``, ``torch.load``, ``eval``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return ""


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _problem(call: ast.Call) -> str | None:
    name = _name(call.func)
    last = name.rsplit(".", 1)[-1]
    if _is_true(_keyword(call, "shell")):
        return "shell=True"
    if name in FORBIDDEN or name.startswith("os.spawn"):
        return f"{name}()"
    if name == "yaml.load" and "Safe" not in ast.unparse(_keyword(call, "Loader") or ast.Constant(None)):
        return "yaml.load without SafeLoader"
    if name == "torch.load" and not _is_true(_keyword(call, "weights_only")):
        return "torch.load without weights_only=True"
    if last == "load" and name.split(".")[0] in {"np", "numpy"} and _is_true(_keyword(call, "allow_pickle")):
        return "numpy.load with allow_pickle=True"
    if name.startswith("subprocess.") and last in SUBPROCESS and call.args:
        first = call.args[0]
        if isinstance(first, ast.Constant | ast.JoinedStr | ast.BinOp) or last.startswith("get"):
            return f"{name} with a command string (use an argument list)"
    if last in {"listen", "serve_forever"} or name in {"socket.bind", "http.server.HTTPServer"}:
        return f"{name}(): a listening socket"
    return None


def test_the_source_never_runs_a_shell_unpickles_or_listens() -> None:
    problems = []
    for path, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and (why := _problem(node)):
                problems.append(f"{path.relative_to(REPO)}:{node.lineno}: {why}")
            if isinstance(node, ast.ImportFrom | ast.Import):
                module = getattr(node, "module", None) or ""
                names = {a.name for a in node.names}
                unpickling = module in {"pickle", "marshal", "dill", "shelve"} and names & {
                    "load",
                    "loads",
                    "Unpickler",
                    "open",
                }
                if unpickling or (names | {module}) & {"socketserver", "http.server", "xmlrpc.server"}:
                    problems.append(f"{path.relative_to(REPO)}:{node.lineno}: imports {sorted(names)} from {module!r}")
    assert problems == []


def test_the_source_scan_catches_what_it_looks_for() -> None:
    bad = """
subprocess.run(f"ffmpeg -i {path}", shell=True)
subprocess.check_output("ls " + folder)
torch.load(path)
torch.load(path, weights_only=False)
pickle.loads(data)
np.load(path, allow_pickle=True)
os.system(cmd)
server.listen(5)
"""
    calls = [n for n in ast.walk(ast.parse(bad)) if isinstance(n, ast.Call)]
    assert len([c for c in calls if _problem(c)]) == 8
    good = 'subprocess.run([exe, "-i", str(path)], check=True)\ntorch.load(p, map_location="cpu", weights_only=True)'
    assert not [c for c in ast.walk(ast.parse(good)) if isinstance(c, ast.Call) and _problem(c)]


# -- model files that carry code ---------------------------------------------------------------------------


class _Payload:
    """Unpickling this runs ``os.system`` (the classic malicious checkpoint)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch '{self.marker}'",)


def test_a_checkpoint_carrying_a_malicious_pickle_is_refused_and_never_runs(tmp_path: Path) -> None:
    import pickle

    import torch

    from engine.models.checkpoint import load_state_dict
    from engine.models.registry import create_encoder

    marker = tmp_path / "pwned"
    bare, zipped, folder = tmp_path / "evil.bin", tmp_path / "evil.pt", tmp_path / "evil-folder"
    bare.write_bytes(pickle.dumps({"w": _Payload(marker)}, protocol=2))
    torch.save({"w": torch.zeros(2), "x": _Payload(marker)}, zipped)
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"arch": "ViT-B-32"}), encoding="utf-8")
    shutil.copy(zipped, folder / "pytorch_model.bin")
    for path in (bare, zipped):
        with pytest.raises(ModelUnavailable, match="refused to load"):
            load_state_dict(path)
    with pytest.raises(ModelUnavailable, match="refused to load"):  # and through the app's model choice
        create_encoder(str(folder)).encode_texts(["a dog"])
    assert not marker.exists()


# -- exports -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "/etc/passwd", "..", ".", "", "a/../../b.mp4", "..\\..\\x.mp4", "C:\\Windows\\x.mp4",
     "~/x.mp4", "$(touch pwned).mp4", "x\x00y.mp4", "\u202egnp.mp4", "clip.mp4\n../../z", "\u2024\u2024/x.mp4"],
)  # fmt: skip
def test_export_names_never_leave_the_chosen_folder(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    try:
        target = safe_output_path(folder, name)
    except ExportError:
        return
    assert target.parent == folder.resolve() and target.name not in ("", ".", "..")
    assert "/" not in target.name and "\x00" not in target.name


def test_a_symlink_planted_in_the_export_folder_is_not_followed(tmp_path: Path) -> None:
    folder, outside = tmp_path / "out", tmp_path / "elsewhere.mp4"
    folder.mkdir()
    (folder / "clip.mp4").symlink_to(outside)
    with pytest.raises(ExportError, match="not a plain file name inside"):
        safe_output_path(folder, "clip.mp4")


@pytest.mark.parametrize("use_ffmpeg", [True, False], ids=["ffmpeg", "opencv"])
def test_exporting_a_clip_of_a_hostile_name_runs_no_shell_and_stays_in_the_folder(
    tmp_path: Path, monkeypatch, use_ffmpeg: bool
) -> None:
    if use_ffmpeg and shutil.which("ffmpeg") is None:
        pytest.skip("the ffmpeg program is not installed")
    monkeypatch.chdir(tmp_path)  # a command run through a shell would drop its files here
    name = 'it\'s a "quoted" name; $(touch pwned) `touch pwned2` & touch pwned3 | > x.mp4'
    video = write_color_video(tmp_path / "videos" / name, [(3, (220, 20, 20))], fps=10)
    out = tmp_path / "out"
    out.mkdir()
    written = export_clip(video, 0.5, 2.0, out, use_ffmpeg=use_ffmpeg)
    assert written.parent == out.resolve() and written.name == clip_file_name(video, 0.5, 2.0)
    assert written.stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "videos"]


# -- downloads ---------------------------------------------------------------------------------------------


def test_model_downloads_are_https_only_and_checked(tmp_path: Path, monkeypatch) -> None:
    import open_clip
    from huggingface_hub import constants

    from engine.models import openclip_encoder

    urls = [open_clip.get_pretrained_cfg(a, t).get("url") for a, t in open_clip.list_pretrained()]
    assert all(u.startswith("https://") for u in urls if u)
    assert constants.ENDPOINT.startswith("https://")

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("a plain-HTTP endpoint must be refused before any connection")

    monkeypatch.setattr(openclip_encoder.socket, "create_connection", no_network)
    monkeypatch.setattr(constants, "ENDPOINT", "http://mirror.example")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(ModelUnavailable, match="only HTTPS"):
        openclip_encoder.fetch_pretrained("ViT-B-32", "laion2b_s34b_b79k", tmp_path)

    blobs = tmp_path / "models--x" / "blobs"
    blobs.mkdir(parents=True)
    good = blobs / hashlib.sha256(b"weights").hexdigest()
    good.write_bytes(b"weights")
    link = tmp_path / "model.safetensors"
    link.symlink_to(good)
    assert openclip_encoder.verify_hub_download(link) == link
    good.write_bytes(b"tampered")  # same name (the expected SHA-256), other content
    with pytest.raises(ModelUnavailable, match="do not match their SHA-256"):
        openclip_encoder.verify_hub_download(link)
    assert not good.exists() and not link.is_symlink()


def test_the_language_model_download_is_https_with_a_checksum() -> None:
    llm = pytest.importorskip("engine.train.llm", reason="engine.train.llm is not written yet")
    assert llm.DEFAULT_MODEL.url.startswith("https://huggingface.co/")
    assert llm.DEFAULT_MODEL.sha256 and len(llm.DEFAULT_MODEL.sha256) == 64


# -- listening sockets -------------------------------------------------------------------------------------


def _our_socket_inodes() -> set[str]:
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def listening_sockets() -> list[str]:
    """Sockets of this process that accept connections or datagrams from anyone: TCP LISTEN, bound
    unconnected UDP, listening Unix sockets (from /proc/net)."""
    ours = _our_socket_inodes()
    found = []
    for table in ("tcp", "tcp6", "udp", "udp6"):
        path = Path("/proc/net") / table
        for line in path.read_text().splitlines()[1:] if path.exists() else ():
            f = line.split()
            local, remote, state, inode = f[1], f[2], f[3], f[9]
            open_udp = table.startswith("udp") and state == "07" and remote.endswith(":0000")
            if inode in ours and (state == "0A" or open_udp):
                found.append(f"{table} {local}")
    unix = Path("/proc/net/unix")
    for line in unix.read_text().splitlines()[1:] if unix.exists() else ():
        f = line.split()
        if f[6] in ours and int(f[3], 16) & 0x10000:  # __SO_ACCEPTCON
            found.append(f"unix {f[7] if len(f) > 7 else '(anonymous)'}")
    return found


class SocketWatch:
    """Samples this process's listening sockets every 20 ms on a thread while the flow runs."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.seen.update(listening_sockets())

    def __enter__(self) -> SocketWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.seen.update(listening_sockets())


def test_the_socket_check_sees_a_listening_socket() -> None:
    import socket

    if not Path("/proc/net/tcp").exists():
        pytest.skip("no /proc/net here")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        assert any(s.startswith("tcp ") for s in listening_sockets())
    assert listening_sockets() == []


def test_a_full_flow_opens_no_listening_socket(tmp_path: Path, capsys) -> None:
    if not Path("/proc/net/tcp").exists():
        pytest.skip("no /proc/net here")
    import cv2

    from engine.cli import main
    from engine.export.markers import markers_from, write_markers
    from engine.media.thumbnails import thumbnail
    from engine.models.registry import create_encoder
    from engine.search.query import MomentRef, Query
    from engine.search.searcher import Searcher

    folder = tmp_path / "videos"
    red = write_color_video(folder / "red.mp4", [(3, (220, 20, 20)), (3, (20, 20, 220))], fps=10)
    write_color_video(folder / "green.mp4", [(4, (20, 200, 20))], fps=10)
    image = tmp_path / "query.png"
    cv2.imwrite(str(image), np.full((64, 64, 3), (20, 20, 220), np.uint8))
    with SocketWatch() as watch:
        with Library(tmp_path / "home", settings=EngineSettings(model=MODEL)) as lib:
            lib.add_folder(folder)
            assert lib.index().indexed == 2
            searcher = Searcher(lib, lib.encoder())
            video_id = lib.catalog.video_by_path(red)["id"]
            for query in (
                Query(text="a red scene", min_relevance=0),
                Query(text="blue", mode="moments", min_relevance=0),
                Query(image=image, min_relevance=0),
                Query(clip=red, clip_span=(3.0, 6.0), min_relevance=0),
                Query(moment=MomentRef(video_id, 0.0, 2.0), min_relevance=0),
            ):
                assert searcher.search(query).videos or searcher.search(query).moments
            searcher.close()
            export_clip(red, 1.0, 2.0, tmp_path, use_ffmpeg=shutil.which("ffmpeg") is not None)
            write_markers(markers_from([{"video": str(red), "start": 1.0, "end": 2.0}]), tmp_path / "m.edl")
            thumbnail(str(red), 1.0)
        create_encoder("test-tiny").encode_texts(["a dog"])
        assert main(["--home", str(tmp_path / "home"), "--model", MODEL, "search", "red", "--json"]) == 0
        assert main(["--home", str(tmp_path / "home"), "status"]) == 0
    capsys.readouterr()
    assert watch.seen == set()


@pytest.mark.gui
def test_the_app_opens_no_listening_socket(qtbot, tmp_path: Path) -> None:
    if not Path("/proc/net/tcp").exists():
        pytest.skip("no /proc/net here")
    pytest.importorskip("PySide6")
    from desktop.engine_api import RealEngine
    from desktop.main_window import MainWindow

    write_color_video(tmp_path / "videos" / "red.mp4", [(3, (220, 20, 20))], fps=10)
    with SocketWatch() as watch:
        window = MainWindow(RealEngine(Library(tmp_path / "home", settings=EngineSettings(model=MODEL))))
        qtbot.addWidget(window)
        window.show()
        with qtbot.waitSignal(window.library_view.index_finished, timeout=60000):
            window.library_view.add_folders([tmp_path / "videos"])
        window.tabs.setCurrentWidget(window.search_view)
        with qtbot.waitSignal(window.search_view.results_shown, timeout=60000):
            window.search_view.run_text("red")
        window.close()
    assert watch.seen == set()


def test_llm_download_refuses_plain_http(tmp_path) -> None:
    from engine.train.llm import LLMError, RemoteModel, download

    model = RemoteModel(url="http://example.invalid/model.gguf", filename="model.gguf", size=10, sha256=None)
    with pytest.raises(LLMError, match="non-HTTPS"):
        download(model, tmp_path / "model.gguf")
    assert not (tmp_path / "model.gguf.part").exists()
