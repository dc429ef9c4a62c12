"""Bad queries and inputs: empty, blank, huge, non-English and control-character queries; malformed training
data; truncated or foreign checkpoints and GGUF files; settings with unknown keys or bad values. Each is
answered or refused with a message naming the problem (and the file and line where there is one); none
crashes."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from engine.bench.bad_queries import QUERIES, run_queries
from engine.bench.harness import MODEL
from engine.cli import main
from engine.library.library import Library
from engine.media.synthetic import write_color_video
from engine.search.searcher import Searcher
from engine.settings import EngineSettings, SettingsError, load

RED, BLUE, GREEN = (220, 20, 20), (20, 20, 220), (20, 200, 20)
_LYING = b'{"w":{"dtype":"F32","shape":[1000000],"data_offsets":[0,4000000]}}'


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("queries")
    for name, rgb in (("red", RED), ("blue", BLUE), ("green", GREEN)):
        write_color_video(root / "videos" / f"{name}.mp4", [(3, rgb)], fps=10)
    with Library(root / "home", settings=EngineSettings(model=MODEL)) as lib:
        lib.add_folder(root / "videos")
        assert lib.index().indexed == 3
    return root / "home"


def _top(home: Path, text: str) -> str:
    with Library(home, settings=EngineSettings(model=MODEL)) as lib:
        searcher = Searcher(lib, lib.encoder())
        try:
            return Path(searcher.search_text(text, k=3)[0].video).stem
        finally:
            searcher.close()


def test_bad_queries_are_answered_or_refused_with_a_message_never_crash(library: Path) -> None:
    result = run_queries(library)
    assert result["tried"] == len(QUERIES) >= 15
    assert result["crashed"] == 0, [d for d in result["details"] if d["outcome"] == "crashed"]
    refused = {d["query"]: d["message"] for d in result["details"] if d["outcome"] == "refused"}
    assert set(refused) == {"empty", "whitespace only"}
    assert all("empty" in message for message in refused.values())


@pytest.mark.parametrize(
    "text",
    ["red\x00car\x07\x1b[31m\x08", "\u202ered\u202c", "red \ud800 car", "a red car on a sunny road " * 400],
    ids=["control characters", "bidi override", "lone surrogate", "10,000 characters"],
)
def test_odd_queries_still_mean_what_they_say(library: Path, text: str) -> None:
    assert _top(library, text) == "red"


def test_the_cli_refuses_empty_queries_and_bad_k_with_a_message(library: Path, capsys) -> None:
    base = ["--home", str(library), "--model", MODEL, "search"]
    for text, message in (("", "the query is empty"), ("   \t\n", "the query is empty")):  # one message for both
        assert main([*base, text]) == 2
        assert message in capsys.readouterr().err
    assert main([*base, "red", "-k", "0"]) == 2
    assert "k must be at least 1" in capsys.readouterr().err
    assert main([*base, "red", "-k", "1000000000", "--all", "--json"]) == 0
    assert '"video"' in capsys.readouterr().out


# -- training data ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "line", "problem"),
    [
        ("bad.jsonl", '{"video": "a.mp4", "caption": "a dog"}\n{"video": "b.mp4", "caption": \n', 2, "not JSON"),
        ("list.jsonl", '{"video": "a.mp4", "caption": "a dog"}\n\n["b.mp4", "a cat"]\n', 3, "JSON object"),
        ("nocap.jsonl", '{"video": "a.mp4", "caption": "a dog"}\n{"video": "b.mp4"}\n', 2, "missing 'caption'"),
        ("times.csv", "video,caption,start,end\na.mp4,a dog,0,4\nb.mp4,a cat,9,3\n", 3, "not before end"),
        ("nan.csv", "video,caption,start,end\na.mp4,a dog,nan,4\n", 2, "finite"),
        ("fields.csv", "video,caption\na.mp4,a dog\nb.mp4,a cat,extra\n", 3, "3 fields"),
        ("header.csv", "file,text\na.mp4,a dog\n", 1, "missing column 'video'"),
        ("empty.csv", "video,caption\na.mp4,   \n", 2, "empty caption"),
    ],
)
def test_malformed_training_data_names_the_file_and_line(
    tmp_path: Path, name: str, text: str, line: int, problem: str
) -> None:
    data = pytest.importorskip("engine.train.data", reason="engine.train.data is not written yet")
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(data.TrainingDataError) as info:
        data.load_training_data(path)
    assert str(info.value).startswith(f"{path}:{line}: ") and problem in str(info.value)


def test_training_data_that_is_not_text_is_refused(tmp_path: Path) -> None:
    data = pytest.importorskip("engine.train.data", reason="engine.train.data is not written yet")
    path = tmp_path / "binary.csv"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(data.TrainingDataError, match="not UTF-8"):
        data.load_training_data(path)


# -- model files --------------------------------------------------------------------------------------------


def _weights(folder: Path) -> dict[str, Path]:
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tensors = {"w": torch.randn(64, 64), "b": torch.randn(64)}
    save_file(tensors, str(folder / "good.safetensors"))
    torch.save(tensors, folder / "good.pt")
    files = {
        "truncated safetensors": (folder / "good.safetensors").read_bytes()[:5000],
        "truncated torch zip": (folder / "good.pt").read_bytes()[:3000],
        "GGUF given as a checkpoint": b"GGUF" + struct.pack("<IQQ", 3, 0, 0) + bytes(64),
        "text file": b"this is not a model\n" * 20,
        "empty file": b"",
        "random bytes": np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "safetensors cut inside its header": struct.pack("<Q", 60) + _LYING[:30],
        "safetensors promising more data than it has": struct.pack("<Q", len(_LYING)) + _LYING + bytes(100),
    }
    out = {}
    for i, (kind, data) in enumerate(files.items()):
        out[kind] = folder / f"bad{i}.bin"
        out[kind].write_bytes(data)
    return out


def test_truncated_or_foreign_checkpoints_are_refused_naming_the_file(tmp_path: Path) -> None:
    from engine.models.base import ModelUnavailable
    from engine.models.checkpoint import load_state_dict
    from engine.models.registry import create_encoder

    for kind, path in _weights(tmp_path).items():
        with pytest.raises(ModelUnavailable) as info:
            load_state_dict(path)
        assert str(path) in str(info.value), kind
        with pytest.raises(ModelUnavailable, match=str(path).replace(".", r"\.")):
            create_encoder(f"ViT-B-32@{path}").encode_texts(["x"])  # refused when chosen or at the latest on use


def test_truncated_or_foreign_gguf_files_are_refused_naming_the_file(tmp_path: Path) -> None:
    llm = pytest.importorskip("engine.train.llm", reason="engine.train.llm is not written yet")
    header = b"GGUF" + struct.pack("<IQQ", 3, 1, 1)
    key = b"general.architecture"
    cases = {
        "a safetensors file": (struct.pack("<Q", 2) + b"{}", "not a GGUF"),
        "a text file": (b"hello world, not a model\n", "not a GGUF"),
        "an empty file": (b"", "not a GGUF"),
        "a truncated header": (header + struct.pack("<Q", len(key)) + key[:5], "truncated"),
        "a header cut short": (header[:20], "truncated"),
    }
    for kind, (data, problem) in cases.items():
        path = tmp_path / f"{kind}.gguf"
        path.write_bytes(data)
        with pytest.raises(llm.LLMError) as info:
            llm.inspect_gguf(path)
        assert str(path) in str(info.value) and problem in str(info.value), (kind, str(info.value))


# -- settings -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('model = "fake:color"\ncolour_scheme = "dark"\n', "unknown setting(s) colour_scheme"),
        ("batch_size = 0\n", "batch_size = 0 must be between 1 and 4096"),
        ('batch_size = "32"\n', "batch_size must be a int"),
        ("sample_every_s = nan\n", "sample_every_s = nan"),
        ("sample_every_s = inf\n", "sample_every_s = inf"),
        ("detect_cuts = 1\n", "detect_cuts must be true or false"),
        ('device = "tpu"\n', "device = 'tpu' must be auto"),
        ("schema_version = 99\n", "newer Scenefind"),
        ("model = \n", "not a valid TOML file"),
        ("\udcff", "not a valid TOML file"),
    ],
    ids=["unknown key", "out of range", "wrong type", "nan", "inf", "int for bool", "bad device", "newer schema",
         "bad TOML", "not UTF-8"],
)  # fmt: skip
def test_a_bad_settings_file_names_the_file_and_the_key(tmp_path: Path, capsys, text: str, problem: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    path = home / "settings.toml"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(SettingsError) as info:
        load(path)
    assert str(info.value).startswith(str(path)) and problem in str(info.value)
    assert main(["--home", str(home), "status"]) == 2  # the CLI says so and exits, no traceback
    err = capsys.readouterr().err
    assert err.startswith(f"scenefind: error: {path}") and "Traceback" not in err
