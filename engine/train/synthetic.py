"""A synthetic compositional video-text set and a tiny model that learns it from scratch on a CPU.

Why: the losses promise finer compositional understanding, and that claim needs a test whose answer is known.
Clips are 8 frames of coloured shapes; one shape (the subject) moves left/right/up/down or grows/shrinks, often
next to a second, static shape (the object). Captions name subject, verb, object and attribute (the subject's
colour): ``"a red circle goes from left to right next to a blue square"``. Held-out (colour, shape, verb)
triples never appear in training, so test scores measure composition, not memory.

Negatives: per training clip several *component* negatives per component (one word changed) and its *relation*
negatives, the word-keeping swaps ``engine.train.relations`` writes for such captions (noun chunks, colours,
the path's ends; a test holds the writer's output to these strings). For evaluation the same swaps are the
*binding* negatives, reported per type: swap the two colours, swap subject and object, reverse the direction
("from right to left"). A bag-of-words model scores them equal to the positive, so they are where order and
binding must be learned. Test clips use held-out (colour, shape, verb) triples, and no training caption *or
negative* names one (a negative that would is left out), so a test caption never occurs in training in any
role: a gain there is generalisation, not memory. Everything is deterministic for a seed.

The tiny model: the from-scratch towers of ``engine.models.scratch`` (a per-frame CNN with no global pooling, so
position survives, and a small transformer text encoder) with this world's word-level vocabulary
(:func:`synthetic_backbone`); the temporal head comes from ``engine.models.heads``.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.models.scratch import SPECIALS, SyntheticBackbone
from engine.train.clips import MemoryClips

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40),
    "green": (40, 200, 40),
    "blue": (50, 90, 240),
    "yellow": (235, 220, 40),
    "magenta": (220, 50, 220),
    "cyan": (40, 220, 220),
}
SHAPES = ("circle", "square", "triangle", "diamond", "cross")
VERBS = (("left", "right"), ("right", "left"), ("top", "bottom"), ("bottom", "top"), ("small", "big"), ("big", "small"))
BINDING = ("swap_colors", "swap_roles", "reverse")
VOCAB = (
    *SPECIALS,
    "a",
    "goes",
    "from",
    "to",
    "next",
    *COLORS,
    *SHAPES,
    "left",
    "right",
    "top",
    "bottom",
    "small",
    "big",
)


Triple = tuple[str, str, tuple[str, str]]


@dataclass(frozen=True)
class Scene:
    """What a clip shows: the subject (shape, colour, motion) and optionally a static object."""

    shape: str
    color: str
    verb: tuple[str, str]
    obj_shape: str | None = None
    obj_color: str | None = None


def triple(scene: Scene) -> Triple:
    """The (colour, shape, verb) combination the train/test split holds out."""
    return scene.color, scene.shape, scene.verb


def caption(scene: Scene) -> str:
    text = f"a {scene.color} {scene.shape} goes from {scene.verb[0]} to {scene.verb[1]}"
    if scene.obj_shape is not None:
        text += f" next to a {scene.obj_color} {scene.obj_shape}"
    return text


def _shape_mask(shape: str, yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, r: float) -> np.ndarray:
    dy, dx = yy - cy, xx - cx
    masks = {
        "circle": lambda: dx * dx + dy * dy <= r * r,
        "square": lambda: (np.abs(dx) <= 0.85 * r) & (np.abs(dy) <= 0.85 * r),
        "triangle": lambda: (dy >= -r) & (dy <= r) & (np.abs(dx) <= (dy + r) / 2),
        "diamond": lambda: np.abs(dx) + np.abs(dy) <= r,
        "cross": lambda: ((np.abs(dx) <= r / 3) & (np.abs(dy) <= r)) | ((np.abs(dy) <= r / 3) & (np.abs(dx) <= r)),
    }
    return masks[shape]()


def render(scene: Scene, rng: np.random.Generator, *, size: int = 32, n_frames: int = 8) -> np.ndarray:
    """(n_frames, size, size, 3) uint8: noisy dark background, the static object, then the moving subject."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    s = size / 32.0
    background = rng.uniform(10, 40)
    frames = np.clip(rng.normal(background, 6.0, (n_frames, size, size, 3)), 0, 255)

    def colour(name: str) -> np.ndarray:
        return np.clip(np.array(COLORS[name], np.float32) + rng.uniform(-20, 20, 3), 0, 255)

    a, b = rng.uniform(5, 9) * s, rng.uniform(23, 27) * s
    lane = rng.uniform(6, 26) * s
    centre = rng.uniform(10, 22, 2) * s
    t = np.linspace(0.0, 1.0, n_frames)
    start, end = scene.verb
    path = {
        ("left", "right"): lambda u: (lane, a + (b - a) * u, 4.5 * s),
        ("right", "left"): lambda u: (lane, b + (a - b) * u, 4.5 * s),
        ("top", "bottom"): lambda u: (a + (b - a) * u, lane, 4.5 * s),
        ("bottom", "top"): lambda u: (b + (a - b) * u, lane, 4.5 * s),
        ("small", "big"): lambda u: (centre[0], centre[1], (2.5 + 5.0 * u) * s),
        ("big", "small"): lambda u: (centre[0], centre[1], (7.5 - 5.0 * u) * s),
    }[(start, end)]
    if scene.obj_shape is not None and scene.obj_color is not None:
        oy, ox = rng.uniform(6, 26, 2) * s
        mask = _shape_mask(scene.obj_shape, yy, xx, oy, ox, 4.5 * s)
        frames[:, mask] = colour(scene.obj_color)
    subject = colour(scene.color)
    for f, u in enumerate(t):
        cy, cx, r = path(float(u))
        frames[f, _shape_mask(scene.shape, yy, xx, cy, cx, r)] = subject
    return frames.astype(np.uint8)


def component_negatives(
    scene: Scene,
    rng: random.Random,
    per_component: int,
    *,
    relation: bool = False,
    unseen: Collection[Triple] = frozenset(),
) -> dict[str, list[str]]:
    """Up to ``per_component`` captions per component, each changing exactly one component's value; with
    ``relation``, also the relation negatives (word-keeping swaps) the negative writer produces.

    ``unseen``: the held-out (colour, shape, verb) triples. A negative whose subject would name one is left
    out, so training never mentions a held-out combination in any role (the closed-world training protocol of
    compositional zero-shot benchmarks): a test caption is then new to the model, not one it was taught to
    push away from similar videos."""

    def some(scenes: Sequence[Scene]) -> list[str]:
        allowed = [s for s in scenes if triple(s) not in unseen]
        return [caption(s) for s in rng.sample(allowed, min(per_component, len(allowed)))]

    out = {
        "subject": some([_replace(scene, shape=v) for v in SHAPES if v != scene.shape]),
        "verb": some([_replace(scene, verb=v) for v in VERBS if v != scene.verb]),
        "attribute": some([_replace(scene, color=v) for v in COLORS if v != scene.color]),
    }
    if scene.obj_shape is not None:
        out["object"] = some([_replace(scene, obj_shape=v) for v in SHAPES if v != scene.obj_shape])
    if relation:
        out["relation"] = [caption(s) for s in _relation_scenes(scene) if triple(s) not in unseen]
    return out


def _relation_scenes(scene: Scene) -> list[Scene]:
    """What ``engine.train.relations`` swaps in these captions, in its order: the two noun chunks, the two
    colours (attributes of different nouns), and the path's source and goal ("from left to right")."""
    out = []
    if scene.obj_shape is not None and scene.obj_color is not None:
        out += [_swapped_roles(scene), _replace(scene, color=scene.obj_color, obj_color=scene.color)]
    return [*out, _replace(scene, verb=(scene.verb[1], scene.verb[0]))]


def _swapped_roles(scene: Scene) -> Scene:
    assert scene.obj_shape is not None and scene.obj_color is not None
    return Scene(scene.obj_shape, scene.obj_color, scene.verb, scene.shape, scene.color)


def binding_negatives(scene: Scene) -> dict[str, list[str]]:
    """Negatives that keep every word: colours swapped, subject and object swapped, direction reversed."""
    scenes = _relation_scenes(scene)
    out = {"reverse": [caption(scenes[-1])]}
    if len(scenes) == 3:
        out["swap_roles"], out["swap_colors"] = [caption(scenes[0])], [caption(scenes[1])]
    return out


def _replace(scene: Scene, **changes: Any) -> Scene:
    return Scene(**{**scene.__dict__, **changes})


def _random_scene(rng: random.Random, combo: Triple, two_shapes: float) -> Scene:
    color, shape, verb = combo
    if rng.random() >= two_shapes:
        return Scene(shape, color, verb)
    obj_shape = rng.choice([s for s in SHAPES if s != shape])
    obj_color = rng.choice([c for c in COLORS if c != color])
    return Scene(shape, color, verb, obj_shape, obj_color)


@dataclass(frozen=True)
class SyntheticSpec:
    """Size of the benchmark set; the defaults are the ones the benchmark table uses."""

    n_train: int = 3000
    n_test: int = 500
    size: int = 32
    n_frames: int = 8
    two_shapes: float = 0.7
    holdout: float = 0.2
    train_negatives: int = 4  # negatives per component per training clip, sampled fresh each epoch
    eval_negatives: int = 2  # component negatives per type per test clip


def _split_triples(rng: random.Random, holdout: float) -> tuple[list[Triple], list[Triple]]:
    """(held out, seen): a ``holdout`` share of all (colour, shape, verb) triples, shuffled by ``rng``."""
    triples = [(c, s, v) for c in COLORS for s in SHAPES for v in VERBS]
    rng.shuffle(triples)
    n_held = max(1, round(holdout * len(triples)))
    return triples[:n_held], triples[n_held:]


def held_out_triples(seed: int, spec: SyntheticSpec | None = None) -> frozenset[Triple]:
    """The triples :func:`make_splits` holds out for ``seed`` (the same draw, replayed)."""
    return frozenset(_split_triples(random.Random(f"synthetic:{seed}"), (spec or SyntheticSpec()).holdout)[0])


def make_splits(seed: int, spec: SyntheticSpec | None = None) -> tuple[MemoryClips, MemoryClips]:
    """(train, test): test clips use only held-out (colour, shape, verb) triples and have unique captions.

    Test negatives hold the four components and the three binding types; training negatives the components
    and the relation swap (what the product's negative writer gives a real caption of this form).
    """
    spec = spec or SyntheticSpec()
    rng = random.Random(f"synthetic:{seed}")
    held, seen = _split_triples(rng, spec.holdout)
    unseen = frozenset(held)  # named by no training caption or negative
    np_rng = np.random.default_rng(rng.randrange(2**32))

    train_scenes = [_random_scene(rng, rng.choice(seen), spec.two_shapes) for _ in range(spec.n_train)]
    test_scenes: list[Scene] = []
    captions: set[str] = set()
    for _ in range(spec.n_test * 50):
        scene = _random_scene(rng, rng.choice(held), spec.two_shapes)
        if caption(scene) not in captions:
            captions.add(caption(scene))
            test_scenes.append(scene)
            if len(test_scenes) == spec.n_test:
                break

    def build(scenes: list[Scene], negs: int, binding: bool, neg_rng: random.Random) -> MemoryClips:
        frames = np.stack([render(s, np_rng, size=spec.size, n_frames=spec.n_frames) for s in scenes])
        neg_sets = []
        for s in scenes:
            entry = component_negatives(s, neg_rng, negs, relation=not binding, unseen=() if binding else unseen)
            if binding:
                entry.update(binding_negatives(s))
            neg_sets.append(entry)
        return MemoryClips(frames, [caption(s) for s in scenes], neg_sets)

    # the test negatives have their own stream: how training negatives are drawn never changes the test set
    train = build(train_scenes, spec.train_negatives, False, rng)
    return train, build(test_scenes, spec.eval_negatives, True, random.Random(f"synthetic:{seed}:test"))


def synthetic_backbone(size: int = 32) -> SyntheticBackbone:
    """The benchmark's towers (``engine.models.scratch``) with its word-level tokenizer over :data:`VOCAB`.

    ``scratch:tiny`` is the same architecture with open_clip's subword tokenizer; the benchmark keeps the word list
    so its figures stay comparable across releases."""
    return SyntheticBackbone(image_size=size, vocab=VOCAB)


__all__ = [
    "BINDING",
    "COLORS",
    "SHAPES",
    "VERBS",
    "VOCAB",
    "Scene",
    "SyntheticBackbone",
    "SyntheticSpec",
    "Triple",
    "binding_negatives",
    "caption",
    "component_negatives",
    "held_out_triples",
    "make_splits",
    "render",
    "synthetic_backbone",
    "triple",
]
