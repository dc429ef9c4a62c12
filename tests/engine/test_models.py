"""Encoders: the tiny open_clip model, the fakes, local checkpoints, devices and failure messages."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.jobs import CancelToken, JobCancelled
from engine.models import checkpoint, cpu_tower, openclip_encoder
from engine.models.base import Encoder, ModelUnavailable, WeightsUnavailable
from engine.models.checkpoint import checkpoint_fingerprint, load_state_dict, save_checkpoint
from engine.models.device import CPU_PRECISION_ENV, cpu_image_precision, pick_device, uses_half
from engine.models.openclip_encoder import OpenClipEncoder, fetch_pretrained
from engine.models.registry import (
    DEFAULT_MODEL,
    TEST_ARCH,
    create_encoder,
    create_random_openclip_encoder,
    ensure_loaded,
    list_models,
    pending_download,
    probe_download,
)
from engine.paths import weights_dir

REPO = Path(__file__).resolve().parents[2]


def _frames(n: int = 6, height: int = 32, width: int = 40, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, height, width, 3), dtype=np.uint8)


def _solid(rgb: tuple[int, int, int], noise: int = 12, seed: int = 0) -> np.ndarray:
    frame = np.empty((32, 48, 3), dtype=np.int16)
    frame[:] = rgb
    frame += np.random.default_rng(seed).integers(-noise, noise + 1, frame.shape, dtype=np.int16)
    return np.clip(frame, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def tiny_reference() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames plus test-tiny's image and text vectors, computed once."""
    encoder = create_encoder("test-tiny", device="cpu")
    frames = _frames()
    return frames, encoder.encode_images(frames), encoder.encode_texts(["a red scene", "a dog on a beach"])


@pytest.fixture
def tiny_checkpoint(tmp_path: Path) -> Path:
    encoder = create_encoder("test-tiny", device="cpu")
    assert isinstance(encoder, OpenClipEncoder)
    return save_checkpoint(tmp_path / "ckpt", encoder.torch_model(), TEST_ARCH, {"note": "test"})


# --- test-tiny -------------------------------------------------------------------------------------


def test_tiny_outputs_are_normalised_float32(tiny_reference: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    frames, images, texts = tiny_reference
    encoder = create_encoder("test-tiny")
    assert isinstance(encoder, Encoder)
    assert (encoder.model_id, encoder.dim, encoder.image_size, encoder.device) == ("test-tiny", 32, 32, "cpu")
    assert images.shape == (len(frames), 32) and images.dtype == np.float32
    assert texts.shape == (2, 32) and texts.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(images[0], images[1]) and not np.allclose(texts[0], texts[1])
    assert encoder.encode_images(frames[:0]).shape == (0, 32)
    assert encoder.encode_texts([]).shape == (0, 32)


def test_tiny_is_deterministic_across_constructions(tiny_reference: tuple[np.ndarray, ...]) -> None:
    frames, images, texts = tiny_reference
    again = create_encoder("test-tiny", batch_size=4)  # different batching, same vectors
    np.testing.assert_allclose(again.encode_images(frames), images, atol=1e-6)
    np.testing.assert_allclose(again.encode_texts(["a red scene", "a dog on a beach"]), texts, atol=1e-6)
    alias = create_encoder(TEST_ARCH)
    assert alias.model_id == "test-tiny"
    np.testing.assert_allclose(alias.encode_images(frames), images, atol=1e-6)


def test_tiny_is_deterministic_across_processes(tiny_reference: tuple[np.ndarray, ...]) -> None:
    code = (
        "import sys, numpy as np; from engine.models.registry import create_encoder; "
        "e = create_encoder('test-tiny'); sys.stdout.write(e.encode_texts(['a red scene']).tobytes().hex())"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    vector = np.frombuffer(bytes.fromhex(out.stdout.strip()), dtype=np.float32)
    np.testing.assert_allclose(vector, tiny_reference[2][0], atol=1e-6)


def test_frames_are_centre_cropped_and_resized(tiny_reference: tuple[np.ndarray, ...]) -> None:
    frames, images, _ = tiny_reference  # 32 x 40: short side already 32, so only a centre crop
    encoder = create_encoder("test-tiny")
    np.testing.assert_allclose(encoder.encode_images(np.ascontiguousarray(frames[:, :, 4:36])), images, atol=1e-5)
    big = np.repeat(np.repeat(frames, 2, axis=1), 2, axis=2)  # 64 x 80: resized back to 32 x 40 first
    cosine = (encoder.encode_images(big) * images).sum(1)
    assert cosine.min() > 0.9
    with pytest.raises(ValueError, match="uint8"):
        encoder.encode_images(frames.astype(np.float32))


def test_construction_is_lazy(monkeypatch: pytest.MonkeyPatch, tiny_checkpoint: Path) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("constructing an encoder must not touch the network")

    monkeypatch.setattr(openclip_encoder.socket, "create_connection", no_network)
    default = create_encoder(DEFAULT_MODEL)
    assert (default.model_id, default.dim, default.image_size) == ("open_clip:ViT-B-32/laion2b_s34b_b79k", 512, 224)
    assert isinstance(default, OpenClipEncoder) and not default.loaded
    loads: list[Path] = []
    monkeypatch.setattr(
        "engine.models.checkpoint.load_state_dict", lambda path: loads.append(path) or load_state_dict(path)
    )
    local = create_encoder(str(tiny_checkpoint))
    assert isinstance(local, OpenClipEncoder) and not local.loaded and loads == []
    local.encode_texts(["x"])  # a text needs the text tower alone (engine.models.text_tower): the weights are
    assert not local.loaded and loads == [tiny_checkpoint / "model.safetensors"]  # read, no image tower is built
    local.encode_images(np.zeros((1, 32, 32, 3), np.uint8))
    assert local.loaded


def test_out_of_memory_halves_the_batch(
    tiny_reference: tuple[np.ndarray, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    frames, images, _ = tiny_reference
    encoder = create_encoder("test-tiny", batch_size=16)
    assert isinstance(encoder, OpenClipEncoder)
    model = encoder.torch_model()
    real = model.encode_image
    sizes: list[int] = []

    def small_batches_only(x: torch.Tensor, limit: int = 4) -> torch.Tensor:
        sizes.append(len(x))
        if len(x) > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(x)

    monkeypatch.setattr(model, "encode_image", small_batches_only)
    np.testing.assert_allclose(encoder.encode_images(frames), images, atol=1e-6)
    assert encoder.batch_size == 4 and sizes[:3] == [6, 6, 4]  # 16 -> 8 -> 4, and it stays at 4
    monkeypatch.setattr(model, "encode_image", lambda x: small_batches_only(x, limit=0))
    with pytest.raises(ModelUnavailable, match="out of memory"):
        encoder.encode_images(frames)


def test_random_openclip_encoder_for_benchmarks() -> None:
    encoder = create_random_openclip_encoder("ViT-B-32", device="cpu")
    assert (encoder.model_id, encoder.dim, encoder.image_size) == ("random:ViT-B-32:seed0", 512, 224)
    assert isinstance(encoder, OpenClipEncoder) and not encoder.loaded
    with pytest.raises(ModelUnavailable, match="did you mean"):
        create_random_openclip_encoder("ViT-B-99")


# --- fakes -----------------------------------------------------------------------------------------


def test_fake_color_ranks_by_colour() -> None:
    encoder = create_encoder("fake:color")
    assert isinstance(encoder, Encoder) and (encoder.model_id, encoder.dim, encoder.image_size) == (
        "fake:color",
        16,
        32,
    )
    names = ["red", "blue", "green", "yellow", "white"]
    rgb = {"red": (215, 35, 30), "blue": (35, 80, 210), "green": (40, 150, 60), "yellow": (235, 220, 50)}
    rgb["white"] = (240, 240, 240)
    frames = np.stack([_solid(rgb[name], seed=i) for i, name in enumerate(names)])
    images = encoder.encode_images(frames)
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    queries = ["a red scene", "a blue sky", "GREEN grass", "a crimson car", "a greyish day"]
    scores = encoder.encode_texts(queries) @ images.T
    best = [names[i] for i in scores.argmax(1)]
    assert best[:4] == ["red", "blue", "green", "red"]
    assert scores[0, 0] > 0.9 and scores[0, 1] < 0.1
    plain = encoder.encode_texts(["a dog", "a dog"])
    np.testing.assert_array_equal(plain[0], plain[1])
    assert np.linalg.norm(plain[0]) == pytest.approx(1.0, abs=1e-5)


def test_fake_hash_is_deterministic() -> None:
    a, b = create_encoder("fake:hash-8"), create_encoder("fake:hash-8")
    assert (a.model_id, a.dim) == ("fake:hash-8", 8)
    frames = _frames(4)
    np.testing.assert_array_equal(a.encode_images(frames), b.encode_images(frames))
    texts = a.encode_texts(["a cat", "a cat", "a dog"])
    np.testing.assert_array_equal(texts, b.encode_texts(["a cat", "a cat", "a dog"]))
    assert np.array_equal(texts[0], texts[1]) and not np.allclose(texts[0], texts[2])
    assert create_encoder("fake:hash-64").encode_images(frames).shape == (4, 64)
    assert create_encoder("fake:hash-8").encode_images(_frames(2, 5, 6)).shape == (2, 8)  # smaller than 8 px
    with pytest.raises(ModelUnavailable, match="fake:hash-N"):
        create_encoder("fake:hash")


# --- checkpoints -----------------------------------------------------------------------------------


def test_checkpoint_folder_round_trip(tiny_checkpoint: Path, tiny_reference: tuple[np.ndarray, ...]) -> None:
    frames, images, texts = tiny_reference
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    assert config["arch"] == TEST_ARCH and config["note"] == "test" and "mean" in config
    encoder = create_encoder(str(tiny_checkpoint))
    fingerprint = checkpoint_fingerprint(tiny_checkpoint / "model.safetensors")
    assert encoder.model_id == f"checkpoint:{TEST_ARCH}:{fingerprint}"
    np.testing.assert_allclose(encoder.encode_images(frames), images, atol=1e-6)
    np.testing.assert_allclose(encoder.encode_texts(["a red scene", "a dog on a beach"]), texts, atol=1e-6)
    assert create_encoder(str(tiny_checkpoint)).model_id == encoder.model_id  # stable


def test_checkpoint_files_round_trip(
    tiny_checkpoint: Path, tiny_reference: tuple[np.ndarray, ...], tmp_path: Path
) -> None:
    frames, images, _ = tiny_reference
    state = load_state_dict(tiny_checkpoint / "model.safetensors")
    torch.save(state, tmp_path / "plain.pt")
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, tmp_path / "wrapped.pth")
    for path in (tiny_checkpoint / "model.safetensors", tmp_path / "plain.pt", tmp_path / "wrapped.pth"):
        encoder = create_encoder(f"{TEST_ARCH}@{path}")
        assert encoder.model_id.startswith(f"checkpoint:{TEST_ARCH}:")
        np.testing.assert_allclose(encoder.encode_images(frames), images, atol=1e-6, err_msg=str(path))


def test_changed_checkpoint_changes_model_id(tiny_checkpoint: Path) -> None:
    before = create_encoder(str(tiny_checkpoint)).model_id
    state = load_state_dict(tiny_checkpoint / "model.safetensors")
    state["logit_scale"] = state["logit_scale"] + 1.0
    model = create_encoder("test-tiny")
    assert isinstance(model, OpenClipEncoder)
    model.torch_model().load_state_dict(state)
    save_checkpoint(tiny_checkpoint, model.torch_model(), TEST_ARCH, {"model_id": "my-finetune"})
    after = create_encoder(str(tiny_checkpoint)).model_id
    assert after != before and after.startswith("checkpoint:my-finetune:")


class _Malicious:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


def test_pickles_with_code_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    torch.save({"weight": torch.zeros(2), "payload": _Malicious(marker)}, tmp_path / "evil.pt")
    (tmp_path / "evil.bin").write_bytes(pickle.dumps(_Malicious(marker), protocol=2))
    for path in (tmp_path / "evil.pt", tmp_path / "evil.bin"):
        encoder = create_encoder(f"{TEST_ARCH}@{path}")
        with pytest.raises(ModelUnavailable, match="refused to load") as caught:
            encoder.encode_texts(["x"])
        assert str(path) in str(caught.value)
    assert not marker.exists()


def test_broken_files_are_named(tiny_checkpoint: Path, tmp_path: Path) -> None:
    data = (tiny_checkpoint / "model.safetensors").read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelUnavailable, match="truncated") as caught:
        create_encoder(f"{TEST_ARCH}@{cut}")
    assert str(cut) in str(caught.value)
    torch.save(load_state_dict(tiny_checkpoint / "model.safetensors"), tmp_path / "whole.pt")
    cut_pt = tmp_path / "cut.pt"
    cut_pt.write_bytes((tmp_path / "whole.pt").read_bytes()[:5000])
    with pytest.raises(ModelUnavailable, match=r"cut\.pt"):
        create_encoder(f"{TEST_ARCH}@{cut_pt}").encode_texts(["x"])
    text = tmp_path / "notes.safetensors"
    text.write_text("these are not weights")
    with pytest.raises(ModelUnavailable, match="neither a safetensors file nor a torch"):
        create_encoder(f"{TEST_ARCH}@{text}")
    with pytest.raises(ModelUnavailable, match="do not fit architecture ViT-B-32"):
        create_encoder(f"ViT-B-32@{tiny_checkpoint / 'model.safetensors'}", device="cpu").encode_texts(["x"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelUnavailable, match=r"config\.json is missing"):
        create_encoder(str(tmp_path / "empty"))
    with pytest.raises(ModelUnavailable, match=r"is a file; say which architecture"):
        create_encoder(str(cut))
    assert checkpoint.check_weights_file(tiny_checkpoint / "model.safetensors") == "safetensors"


# --- names, downloads, devices ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ViT-B-33/openai", "did you mean ViT-B-32"),
        ("ViT-B-32/laion2b_s34b", "did you mean ViT-B-32/laion2b_s34b_b79k"),
        ("test-tiyn", "did you mean test-tiny"),
        ("ViT-B-32", "needs its pretrained weights named too"),
        ("", "no model name"),
        ("fake:colour", "use fake:color"),
        ("/no/such/folder", "no such checkpoint folder"),
    ],
)
def test_unknown_names_get_suggestions(name: str, expected: str) -> None:
    with pytest.raises(ModelUnavailable, match=expected):
        create_encoder(name)


def test_names_round_trip_through_model_ids() -> None:
    for name in ("test-tiny", "fake:color", "fake:hash-8", DEFAULT_MODEL, "ViT-B-32/LAION2B-S34B-B79K"):
        first = create_encoder(name)
        assert create_encoder(first.model_id).model_id == first.model_id


def test_offline_default_model_fails_fast_with_checkpoint_advice(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(*args: object, **kwargs: object) -> None:
        raise OSError("[Errno -2] Name or service not known")

    monkeypatch.setattr(openclip_encoder.socket, "create_connection", unreachable)
    encoder = create_encoder(DEFAULT_MODEL)
    start = time.monotonic()
    with pytest.raises(ModelUnavailable, match=r"Could not download the weights for ViT-B-32/laion2b_s34b_b79k") as c:
        encoder.encode_texts(["a dog"])
    assert time.monotonic() - start < 2.0
    assert "checkpoint" in str(c.value) and "ViT-B-32@/path/to/model.safetensors" in str(c.value)
    assert isinstance(c.value, WeightsUnavailable) and c.value.model == "ViT-B-32/laion2b_s34b_b79k"
    assert "Name or service not known" in c.value.reason  # what the app turns into "seems to be offline"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsUnavailable, match="HF_HUB_OFFLINE"):
        ensure_loaded(create_encoder(DEFAULT_MODEL))


def test_pending_downloads_are_told_and_probed_before_any_weights_load(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(*args: object, **kwargs: object) -> None:
        raise OSError("[Errno -2] Name or service not known")

    monkeypatch.setattr(openclip_encoder.socket, "create_connection", unreachable)
    assert pending_download(DEFAULT_MODEL) == "ViT-B-32/laion2b_s34b_b79k"
    for name in ("test-tiny", "fake:color", "no-such-model"):
        assert pending_download(name) is None
        probe_download(name)  # nothing to fetch: no network needed
    with pytest.raises(WeightsUnavailable) as caught:
        probe_download(DEFAULT_MODEL)
    assert caught.value.model == "ViT-B-32/laion2b_s34b_b79k"


def test_download_failure_and_progress(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import huggingface_hub

    monkeypatch.setattr(openclip_encoder.socket, "create_connection", lambda *a, **k: _Closable())
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    calls: list[str] = []

    def fake_download(repo_id: str, filename: str, *, cache_dir: str, tqdm_class: type | None = None) -> str:
        calls.append(filename)
        if tqdm_class is not None:
            with tqdm_class(total=1000, initial=0, desc=filename) as bar:
                for _ in range(4):
                    bar.update(250)
        target = Path(cache_dir) / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"weights")
        return str(target)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    ticks: list[tuple[float, str]] = []
    path = fetch_pretrained("ViT-B-32", "laion2b_s34b_b79k", tmp_path, lambda f, m: ticks.append((f, m)))
    assert path.name == "open_clip_model.safetensors" and calls == ["open_clip_model.safetensors"]
    assert [f for f, _ in ticks] == [0.25, 0.5, 0.75, 1.0] and "Downloading ViT-B-32/laion2b_s34b_b79k" in ticks[0][1]

    def failing_download(*args: object, **kwargs: object) -> str:
        raise ConnectionError("connection reset by peer")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", failing_download)
    with pytest.raises(ModelUnavailable, match="connection reset by peer") as caught:
        create_encoder(DEFAULT_MODEL).encode_images(_frames(1, 224, 224))
    assert "supply a local checkpoint" in str(caught.value)


def test_a_download_stops_at_a_cancelling_progress_callback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The app cancels a weights download by raising from the progress callback: that must come out as
    ``JobCancelled`` (the job was cancelled), not as "could not download the weights"."""
    import huggingface_hub

    monkeypatch.setattr(openclip_encoder.socket, "create_connection", lambda *a, **k: _Closable())
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    chunks: list[int] = []

    def slow_download(repo_id: str, filename: str, *, cache_dir: str, tqdm_class: type | None = None) -> str:
        assert tqdm_class is not None
        with tqdm_class(total=1000, initial=0, desc=filename) as bar:
            for _ in range(10):
                chunks.append(100)
                bar.update(100)
        raise AssertionError("the download should have stopped")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", slow_download)
    token = CancelToken()

    def progress(fraction: float, message: str) -> None:
        if fraction >= 0.3:
            token.cancel()
        token.raise_if_cancelled()

    with pytest.raises(JobCancelled):
        fetch_pretrained("ViT-B-32", "laion2b_s34b_b79k", tmp_path, progress)
    assert len(chunks) == 3


class _Closable:
    def close(self) -> None:
        pass


def test_cached_weights_need_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(*args: object, **kwargs: object) -> None:
        raise AssertionError("cached weights must not touch the network")

    monkeypatch.setattr(openclip_encoder.socket, "create_connection", unreachable)
    repo = weights_dir() / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K"
    snapshot = repo / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "open_clip_model.safetensors").write_bytes(b"stand-in")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    found = fetch_pretrained("ViT-B-32", "laion2b_s34b_b79k", weights_dir())
    assert found == snapshot / "open_clip_model.safetensors"
    listed = {info.name: info for info in list_models()}
    assert listed[DEFAULT_MODEL].cached is True and listed["ViT-B-32/openai"].cached is False


def test_list_models() -> None:
    models = list_models()
    names = [m.name for m in models]
    assert names[:4] == ["scratch:tiny", "test-tiny", "fake:color", "fake:hash-8"]
    assert DEFAULT_MODEL in names and len(names) > 100
    scratch = models[0]
    assert scratch.kind == "scratch" and "CPU" in scratch.description and "scenefind train" in scratch.description
    default = next(m for m in models if m.name == DEFAULT_MODEL)
    assert default.kind == "open_clip" and default.cached is False and "(default)" in default.description


def test_pick_device_on_this_machine() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU; the test checks CPU-only selection")
    expected = "mps" if torch.backends.mps.is_available() else "cpu"
    assert pick_device() == expected and pick_device("CPU") == "cpu"
    with pytest.raises(ModelUnavailable, match="no CUDA GPU"):
        pick_device("cuda")
    with pytest.raises(ModelUnavailable, match="unknown device"):
        pick_device("tpu")
    with pytest.raises(ModelUnavailable, match="device 'cuda' was asked for"):
        create_encoder("test-tiny", device="cuda")
    assert uses_half("cuda:1") and not uses_half("cpu") and not uses_half("mps")


def test_a_bfloat16_image_tower_keeps_the_vectors_and_steps_aside_for_training(
    monkeypatch: pytest.MonkeyPatch, tiny_reference: tuple[np.ndarray, ...]
) -> None:
    frames = tiny_reference[0]
    monkeypatch.setenv(CPU_PRECISION_ENV, "float32")
    assert cpu_image_precision("cpu") == "float32"
    plain = create_encoder("test-tiny")
    exact = plain.encode_images(frames)
    assert isinstance(plain, OpenClipEncoder) and plain.image_precision == "float32"
    monkeypatch.setenv(CPU_PRECISION_ENV, "bfloat16")
    assert cpu_image_precision("cpu") == "bfloat16"
    assert cpu_image_precision("cuda:0") == "float32" and cpu_image_precision("mps") == "float32"
    encoder = create_encoder("test-tiny")
    assert isinstance(encoder, OpenClipEncoder) and encoder.image_precision == "bfloat16"
    fast = encoder.encode_images(frames)
    assert fast.dtype == np.float32 and not np.array_equal(fast, exact)  # it did run in bfloat16
    assert (fast * exact).sum(1).min() > 0.995  # and kept the direction of every vector
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    encoder.torch_model()  # a trainer may change the weights now: images are embedded by the float32 model
    np.testing.assert_allclose(encoder.encode_images(frames), exact, atol=1e-6)
    assert encoder.image_precision == "float32"  # and it says so (bench decode prints it)
    monkeypatch.setenv(CPU_PRECISION_ENV, "half")
    with pytest.raises(ModelUnavailable, match=f"{CPU_PRECISION_ENV}='half' is not one of"):
        cpu_image_precision("cpu")


def test_an_int8_image_tower_is_asked_for_keeps_the_vectors_and_says_when_it_cannot_run(
    monkeypatch: pytest.MonkeyPatch, tiny_reference: tuple[np.ndarray, ...], caplog: pytest.LogCaptureFixture
) -> None:
    frames = tiny_reference[0]
    exact = create_encoder("test-tiny").encode_images(frames)  # conftest pins float32
    monkeypatch.setenv(CPU_PRECISION_ENV, "int8")
    assert cpu_image_precision("cpu") == "int8" and cpu_image_precision("cuda:0") == "float32"
    encoder = create_encoder("test-tiny")
    assert isinstance(encoder, OpenClipEncoder) and encoder.image_precision == "int8"
    fast = encoder.encode_images(frames)
    assert fast.dtype == np.float32 and not np.array_equal(fast, exact)  # it did run quantised
    assert (fast * exact).sum(1).min() > 0.99
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    encoder.torch_model()  # handed out for training: float32 from here on, and it says so
    np.testing.assert_allclose(encoder.encode_images(frames), exact, atol=1e-6)
    assert encoder.image_precision == "float32"
    monkeypatch.setenv(CPU_PRECISION_ENV, "auto")  # auto never picks int8: bfloat16 with AMX, else float32
    assert cpu_image_precision("cpu") in ("float32", "bfloat16")
    # a torch without int8 kernels: the encoder embeds in float32, logs why, and reports float32
    monkeypatch.setenv(CPU_PRECISION_ENV, "int8")
    monkeypatch.setattr(cpu_tower, "_int8_engine", lambda: None)
    plain = create_encoder("test-tiny")
    with caplog.at_level("WARNING", logger="engine.models.cpu_tower"):
        np.testing.assert_allclose(plain.encode_images(frames), exact, atol=1e-6)
    assert plain.image_precision == "float32" and "int8 image tower unavailable" in caplog.text


@pytest.mark.network
def test_default_model_downloads_and_understands_colours() -> None:
    encoder = create_encoder(DEFAULT_MODEL)
    ticks: list[float] = []
    ensure_loaded(encoder, lambda fraction, message: ticks.append(fraction))
    frames = np.stack([np.full((224, 224, 3), rgb, np.uint8) for rgb in [(220, 20, 20), (20, 40, 220)]])
    scores = encoder.encode_texts(["a red image", "a blue image"]) @ encoder.encode_images(frames).T
    assert scores[0, 0] > scores[0, 1] and scores[1, 1] > scores[1, 0]
    assert ticks and ticks[-1] == 1.0


@pytest.mark.parametrize("name", ["fake:hash-0", "fake:hash-5000", "fake:hash", "fake:color-2", "fake:nope"])
def test_bad_fake_names_are_unknown_models_naming_the_forms(name: str) -> None:
    with pytest.raises(ModelUnavailable, match=r"fake:hash"):  # UnknownModel, never a bare ValueError
        create_encoder(name)
