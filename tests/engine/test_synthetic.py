"""The synthetic compositional set: deterministic, held-out combinations, honest negatives, a working bench."""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from engine.train.synthetic import (
    COLORS,
    SHAPES,
    Scene,
    SyntheticSpec,
    Triple,
    binding_negatives,
    caption,
    component_negatives,
    held_out_triples,
    make_splits,
    render,
    synthetic_backbone,
)

SMALL = SyntheticSpec(n_train=40, n_test=20)
REPO = Path(__file__).resolve().parents[2]


def _triple(text: str) -> Triple:
    """The (colour, shape, verb) a caption's subject names, in the generator's own form."""
    words = text.split()
    return words[1], words[2], (words[5], words[7])


def test_splits_are_deterministic_by_seed() -> None:
    a_train, a_test = make_splits(3, SMALL)
    b_train, b_test = make_splits(3, SMALL)
    c_train, _ = make_splits(4, SMALL)
    assert a_train.captions == b_train.captions and a_test.captions == b_test.captions
    assert np.array_equal(a_train.clip_frames, b_train.clip_frames)
    assert a_train.negative_sets == b_train.negative_sets
    assert a_train.captions != c_train.captions
    # the test set does not depend on how the training negatives are drawn
    _, d_test = make_splits(3, dataclasses.replace(SMALL, train_negatives=1))
    assert d_test.captions == a_test.captions and d_test.negative_sets == a_test.negative_sets
    assert a_train.clip_frames.shape == (40, 8, 32, 32, 3) and a_train.clip_frames.dtype == np.uint8


def test_test_set_holds_only_unseen_combinations_with_unique_captions() -> None:
    spec = SyntheticSpec(n_train=400, n_test=100)
    train, test = make_splits(0, spec)
    seen = {_triple(c) for c in train.captions}
    assert not seen & {_triple(c) for c in test.captions}
    held = held_out_triples(0, spec)
    assert {_triple(c) for c in test.captions} <= held
    # held out in every role: no training negative names a held-out triple, so none equals a test caption
    named = {_triple(n) for negs in train.negative_sets for texts in negs.values() for n in texts}
    assert named and not named & held
    assert not set(test.captions) & {n for negs in train.negative_sets for texts in negs.values() for n in texts}
    assert len(set(test.captions)) == len(test.captions) == 100
    assert 0.5 < sum("next to" in c for c in train.captions) / 400 < 0.9  # often two shapes


def test_component_negatives_change_one_word_and_binding_negatives_keep_every_word() -> None:
    import random

    scene = Scene("circle", "red", ("left", "right"), "square", "blue")
    pos = caption(scene)
    assert pos == "a red circle goes from left to right next to a blue square"
    negs = component_negatives(scene, random.Random(0), 10)
    assert set(negs) == {"subject", "verb", "object", "attribute"}
    assert len(negs["subject"]) == len(SHAPES) - 1 and len(negs["attribute"]) == len(COLORS) - 1
    for kind, texts in negs.items():
        for text in texts:
            changed = [i for i, (a, b) in enumerate(zip(pos.split(), text.split(), strict=True)) if a != b]
            assert 1 <= len(changed) <= 2, (kind, text)  # a verb change may move both endpoints
    binding = binding_negatives(scene)
    assert binding == {
        "reverse": ["a red circle goes from right to left next to a blue square"],
        "swap_colors": ["a blue circle goes from left to right next to a red square"],
        "swap_roles": ["a blue square goes from left to right next to a red circle"],
    }
    for texts in binding.values():
        assert Counter(texts[0].split()) == Counter(pos.split()) and texts[0] != pos
    relation = component_negatives(scene, random.Random(0), 2, relation=True)["relation"]
    assert relation == [binding["swap_roles"][0], binding["swap_colors"][0], binding["reverse"][0]]
    unseen = {("red", "square", ("left", "right")), ("blue", "square", ("left", "right"))}
    kept = component_negatives(scene, random.Random(0), 10, relation=True, unseen=unseen)
    assert "a red square goes from left to right next to a blue square" not in kept["subject"]
    assert len(kept["subject"]) == len(SHAPES) - 2
    assert kept["relation"] == [binding["swap_colors"][0], binding["reverse"][0]]  # swap_roles names blue square
    alone = Scene("circle", "red", ("small", "big"))
    assert "object" not in component_negatives(alone, random.Random(0), 2, relation=True)
    assert (
        component_negatives(alone, random.Random(0), 2, relation=True)["relation"]
        == binding_negatives(alone)["reverse"]
    )
    assert set(binding_negatives(alone)) == {"reverse"}


def test_training_relation_negatives_are_what_the_negative_writer_produces() -> None:
    """The synthetic set trains on the relation swaps the product's writer gives these captions, no other (less
    those naming a held-out triple, which training never mentions).

    spaCy tags some colour words as proper nouns or compounds ("a green cross"), which hides their attribute
    swap from the writer, so the writer's swaps are a subset; with plainly tagged colours they are equal."""
    from engine.train.components import SpacyModelMissing, load_nlp
    from engine.train.negatives import generate_negatives

    try:
        load_nlp()
    except SpacyModelMissing as exc:
        pytest.skip(f"spaCy's English model is not installed: {exc}")
    train, test = make_splits(0, SMALL)
    assert all("relation" in n for n in train.negative_sets) and all("relation" not in n for n in test.negative_sets)
    held = held_out_triples(0, SMALL)
    captions = train.captions[:8]
    written = generate_negatives(captions, llm=None, per_component=4)
    for item, negs in zip(written.items, train.negative_sets[:8], strict=True):
        assert item.negatives["relation"], item.caption
        assert {n for n in item.negatives["relation"] if _triple(n) not in held} <= set(negs["relation"]), item.caption
    plain = "a red circle goes from left to right next to a blue square"
    [item] = generate_negatives([plain], llm=None, per_component=4).items
    assert item.negatives["relation"] == [
        "a blue square goes from left to right next to a red circle",
        "a blue circle goes from left to right next to a red square",
        "a red circle goes from right to left next to a blue square",
    ]


def test_render_moves_the_subject_the_way_the_caption_says() -> None:
    rng = np.random.default_rng(0)
    red = np.array(COLORS["red"])

    def centre_x(frames: np.ndarray) -> list[float]:
        xs = []
        for frame in frames:
            mask = np.abs(frame.astype(int) - red).sum(-1) < 80
            xs.append(float(np.nonzero(mask)[1].mean()))
        return xs

    right = centre_x(render(Scene("square", "red", ("left", "right")), rng))
    left = centre_x(render(Scene("square", "red", ("right", "left")), rng))
    assert all(b > a for a, b in itertools.pairwise(right))
    assert all(b < a for a, b in itertools.pairwise(left))
    grow = render(Scene("circle", "red", ("small", "big")), rng)
    sizes = [(np.abs(f.astype(int) - red).sum(-1) < 80).sum() for f in grow]
    assert sizes[-1] > 3 * sizes[0]


def test_synthetic_backbone_tokenizes_words_and_keeps_position() -> None:
    import torch

    backbone = synthetic_backbone()
    ids, mask = backbone.tokenize(["a red circle goes from left to right", "a zebra"])
    assert ids.shape == (2, 16) and mask[0].sum() == 8 and mask[1].sum() == 1  # "zebra" is unknown
    pooled, tokens = backbone.encode_tokens(ids)
    assert pooled.shape == (2, 64) and tokens.shape[0] == 2
    swapped, _ = backbone.tokenize(["a red circle goes from right to left"])
    assert not torch.allclose(backbone.encode_tokens(swapped)[0][0], pooled[0])  # word order matters


@pytest.mark.slow
def test_bench_runs_every_variant_and_builds_the_table(tmp_path) -> None:
    from engine.bench.train_bench import VARIANTS, run_train_bench

    lines: list[str] = []
    result = run_train_bench((0,), lines.append, epochs=1, n_train=64, n_test=32, batch_size=16, out=tmp_path / "runs")
    assert [r["objective"] for r in result["rows"]] == [obj for _, obj in VARIANTS]
    for row in result["rows"]:
        for key in ("t2v_R1", "comp_verb", "comp_swap_roles", "comp_reverse", "comp_binding"):
            assert 0.0 <= row[key] <= 100.0
    assert "| InfoNCE |" in result["table"] and "binding" in result["table"]
    assert len(lines) == len(VARIANTS) + 2


@pytest.mark.slow
def test_bench_runs_in_worker_processes_with_the_same_figures(tmp_path) -> None:
    """Runs spread over two spawned processes give exactly the figures of the same runs in this process."""
    import torch

    from engine.bench.train_bench import run_train_bench

    kw = {"variants": ("infonce", "component"), "epochs": 1, "n_train": 48, "n_test": 16, "batch_size": 16}
    threads = torch.get_num_threads()
    try:
        alone = run_train_bench((0,), lambda _: None, workers=1, threads=1, **kw)
        progress: list[float] = []
        spread = run_train_bench(
            (0,), lambda _: None, workers=2, threads=1, progress=lambda f, _m: progress.append(f), **kw
        )
    finally:
        torch.set_num_threads(threads)
    assert spread["per_seed"] == alone["per_seed"]
    assert spread["setup"]["workers"] == 2 and progress and progress[-1] == 1.0


def test_bench_train_cli_registers_and_runs(capsys, monkeypatch) -> None:
    from engine.cli.bench import register_train as register_bench

    parser = argparse.ArgumentParser()
    handlers = register_bench(parser.add_subparsers(dest="bench"))
    args = parser.parse_args(
        ["train", "--seeds", "0", "--variants", "infonce", "--epochs", "1", "--threads", "0", "--json"]
    )
    from engine.bench import train_bench

    real = train_bench.run_train_bench

    def small(seeds, log, **kw):
        return real(seeds, log, n_train=32, n_test=16, batch_size=16, **kw)

    monkeypatch.setattr(train_bench, "run_train_bench", small)
    assert handlers["train"](args) == 0
    assert '"rows"' in capsys.readouterr().out


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc (Linux only)")
def test_bench_workers_leave_when_their_parent_is_killed() -> None:
    """A parent killed outright runs no cleanup: its worker processes must not train on, orphaned, at full CPU."""
    code = (
        "import multiprocessing, os, time\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "from engine.bench.train_bench import _init_worker\n"
        "ctx = multiprocessing.get_context('spawn')\n"
        "init = (ctx.Queue(), ctx.Event(), os.getpid())\n"
        "pool = ProcessPoolExecutor(1, mp_context=ctx, initializer=_init_worker, initargs=init)\n"
        "print(pool.submit(os.getpid).result(), flush=True)\n"
        "pool.submit(time.sleep, 60)\n"
        "time.sleep(0.5)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == -9, out.stderr
    worker = int(out.stdout.split()[0])
    deadline = time.monotonic() + 10
    while _running(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(worker), f"worker {worker} outlived its killed parent"


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie, exited but not yet reaped by its new parent, is not)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False
    return fields[0] != "Z"
