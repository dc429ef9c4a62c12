"""The synthetic world of ``bench quality`` as real video files: training clips, test clips with twins, long videos.

Why files: the benchmark measures what a user gets, so everything the model sees goes through the product's
writer (``engine.media.synthetic.write_frames``) and decoder, as a user's videos would. The world is the one of
``engine.train.synthetic`` (coloured shapes that move, compositional captions) at its 2 frames per second:

* **training split**: ``make_splits(seed)``'s training clips, the very clips ``bench train`` trains on, one
  4-second video each, listed with their captions in ``captions.csv`` (``engine.train.data``'s format);
* **test clips**: scenes of the seed's held-out (colour, shape, verb) triples, each in its own folder beside its
  **time-reversed twin** (the same frames backwards: "from right to left") and, when the clip has a second shape,
  its **colour-swapped twin** (the same layout with the two colours exchanged, rendered from the same random
  draws). A twin's caption differs from its clip's by construction, and no caption occurs twice in the library;
* **long videos** (two to five minutes): several held-out events (4 s each, captions distinct from every other
  caption in the library) strung between distractor stretches of still shapes and moving shapes of *seen*
  triples, with each event's caption and (start, end).

Everything is a pure function of the seed and the :class:`WorldSpec`; the spec is fixed before any comparison.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.jobs import CancelToken, ProgressCallback, check_cancel, report

FPS = 2.0  # frames per second of every video: a clip's 8 frames span 4 s, one default segment window
CLIP_SECONDS = 4.0


@dataclass(frozen=True)
class WorldSpec:
    """Sizes of the world; the defaults are the benchmark's and were fixed before comparing methods."""

    n_train: int = 3000  # training clips (bench train's default)
    n_test: int = 300  # held-out test clips in the library, each with its twins
    n_long: int = 8  # long videos
    long_seconds: tuple[float, float] = (120.0, 300.0)  # each long video's length is drawn in this range
    events: tuple[int, int] = (4, 8)  # events per long video
    size: int = 32
    n_frames: int = 8
    two_shapes: float = 0.7
    eval_negatives: int = 2  # component negatives per type per test clip (in-memory evaluation)
    bench_test: int = 500  # bench train's held-out test clips, on which the checkpoints are also evaluated


@dataclass(frozen=True)
class TestClip:
    """One held-out clip and its twins, as files; ``colours`` is None for a clip with a single shape."""

    caption: str
    folder: str
    clip: str
    reversed_twin: str
    reversed_caption: str
    colour_twin: str | None = None
    colour_caption: str | None = None


@dataclass(frozen=True)
class Event:
    caption: str
    start: float
    end: float


@dataclass(frozen=True)
class LongVideo:
    path: str
    folder: str
    duration: float
    events: tuple[Event, ...]


@dataclass
class World:
    """What was written: the training CSV, the library's folder, and the ground truth of every query."""

    seed: int
    root: str
    train_csv: str
    library: str
    tests: list[TestClip] = field(default_factory=list)
    long_videos: list[LongVideo] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _scene_tools() -> Any:
    from engine.train import synthetic

    return synthetic


def _sample_scene(rng: random.Random, combo: Any, two_shapes: float) -> Any:
    """A scene of ``combo`` = (colour, shape, verb), with a static second shape with probability ``two_shapes``."""
    syn = _scene_tools()
    color, shape, verb = combo
    if rng.random() >= two_shapes:
        return syn.Scene(shape, color, verb)
    obj_shape = rng.choice([s for s in syn.SHAPES if s != shape])
    obj_color = rng.choice([c for c in syn.COLORS if c != color])
    return syn.Scene(shape, color, verb, obj_shape, obj_color)


def reversed_scene(scene: Any) -> Any:
    """The scene its frames played backwards show: the same shapes, the path's ends exchanged."""
    syn = _scene_tools()
    return syn.Scene(scene.shape, scene.color, (scene.verb[1], scene.verb[0]), scene.obj_shape, scene.obj_color)


def colour_swapped_scene(scene: Any) -> Any | None:
    """The scene with subject and object colours exchanged; None without an object."""
    syn = _scene_tools()
    if scene.obj_shape is None:
        return None
    return syn.Scene(scene.shape, scene.obj_color, scene.verb, scene.obj_shape, scene.color)


def render_clip(scene: Any, seed: tuple[int, ...], spec: WorldSpec) -> np.ndarray:
    """(n_frames, size, size, 3) RGB; the same ``seed`` gives the same layout, noise and paths for any colours."""
    return _scene_tools().render(scene, np.random.default_rng(list(seed)), size=spec.size, n_frames=spec.n_frames)


def _still(rng: random.Random, np_rng: np.random.Generator, spec: WorldSpec) -> np.ndarray:
    """A distractor piece: up to two shapes that do not move (no caption of the world describes a still)."""
    syn = _scene_tools()
    scene = _sample_scene(rng, (rng.choice(list(syn.COLORS)), rng.choice(syn.SHAPES), ("left", "right")), 0.5)
    frames = syn.render(scene, np_rng, size=spec.size, n_frames=spec.n_frames)
    return np.repeat(frames[rng.randrange(spec.n_frames)][None], spec.n_frames, axis=0)


@dataclass
class _Captions:
    """Every caption used in the library, so none is used twice (a query has exactly one right answer)."""

    used: set[str] = field(default_factory=set)

    def claim(self, *captions: str | None) -> bool:
        wanted = [c for c in captions if c is not None]
        if len(set(wanted)) < len(wanted) or any(c in self.used for c in wanted):
            return False
        self.used.update(wanted)
        return True


def held_out_scenes(seed: int, spec: WorldSpec) -> tuple[list[Any], list[Any], list[int]]:
    """(test scenes, long-video event scenes, events per long video): scenes of held-out triples, and no
    caption of a clip, a twin or an event used twice."""
    from engine.train.synthetic import caption, held_out_triples

    held = sorted(held_out_triples(seed), key=str)
    rng = random.Random(f"quality:{seed}")
    captions = _Captions()
    per_video = [rng.randint(*spec.events) for _ in range(spec.n_long)]
    n_events = sum(per_video)
    tests: list[Any] = []
    events: list[Any] = []
    for _ in range(200 * (spec.n_test + n_events)):
        if len(tests) >= spec.n_test and len(events) >= n_events:
            break
        scene = _sample_scene(rng, rng.choice(held), spec.two_shapes)
        if len(tests) < spec.n_test:
            twin = colour_swapped_scene(scene)
            names = (caption(scene), caption(reversed_scene(scene)), caption(twin) if twin is not None else None)
            if captions.claim(*names):
                tests.append(scene)
        elif captions.claim(caption(scene)):
            events.append(scene)
    if len(tests) < spec.n_test or len(events) < n_events:
        raise ValueError(f"the held-out triples give only {len(tests)} test clips and {len(events)} events")
    return tests, events, per_video


def write_world(
    root: Path,
    seed: int,
    spec: WorldSpec,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> World:
    """Write the training clips, the test library and ``world.json`` under ``root``; returns the world.

    A ``world.json`` already there for the same seed and spec is reused (the files are deterministic)."""
    from engine.media.synthetic import write_frames
    from engine.train.synthetic import SyntheticSpec, caption, make_splits

    root = Path(root)
    manifest = root / "world.json"
    key = {"seed": seed, "spec": asdict(spec)}
    if manifest.is_file():
        saved = json.loads(manifest.read_text(encoding="utf-8"))
        if saved.get("key") == json.loads(json.dumps(key)):
            return _world_from_json(saved["world"])
    train_split, _ = make_splits(seed, SyntheticSpec(n_train=spec.n_train, n_test=1, size=spec.size))
    train_dir, library = root / "train", root / "library"
    world = World(seed, str(root), str(train_dir / "captions.csv"), str(library))
    total = spec.n_train + spec.n_test + spec.n_long
    done = 0

    def tick(message: str) -> None:
        nonlocal done
        done += 1
        if done % 50 == 0 or done == total:
            check_cancel(cancel)
            report(progress, done / total, message)

    rows = []
    for i in range(spec.n_train):
        path = write_frames(train_dir / "clips" / f"{i:05d}.mp4", train_split.frames(i), fps=FPS)
        rows.append((path.relative_to(train_dir).as_posix(), train_split.caption(i)))
        tick("writing training clips")
    train_dir.mkdir(parents=True, exist_ok=True)
    with open(world.train_csv, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["video", "caption"])
        writer.writerows(rows)

    tests, events, per_video = held_out_scenes(seed, spec)
    for i, scene in enumerate(tests):
        folder = library / "clips" / f"{i:04d}"
        frames = render_clip(scene, (seed, 1, i), spec)
        clip = write_frames(folder / "clip.mp4", frames, fps=FPS)
        rev = write_frames(folder / "reversed.mp4", frames[::-1], fps=FPS)
        twin = colour_swapped_scene(scene)
        colours = None
        if twin is not None:
            colours = str(write_frames(folder / "colours.mp4", render_clip(twin, (seed, 1, i), spec), fps=FPS))
        world.tests.append(
            TestClip(
                caption(scene),
                str(folder),
                str(clip),
                str(rev),
                caption(reversed_scene(scene)),
                colours,
                caption(twin) if twin is not None else None,
            )
        )
        tick("writing test clips and twins")
    rng = random.Random(f"quality:{seed}:long")
    queue = iter(events)
    for j, n_events in enumerate(per_video):
        folder = library / "long" / f"{j:02d}"
        frames, video_events = _long_video(rng, [next(queue) for _ in range(n_events)], seed, j, spec)
        path = write_frames(folder / "long.mp4", frames, fps=FPS)
        world.long_videos.append(LongVideo(str(path), str(folder), len(frames) / FPS, tuple(video_events)))
        tick("writing long videos")
    root.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"key": key, "world": world.to_json()}, indent=1), encoding="utf-8")
    return world


def _long_video(
    rng: random.Random, events: list[Any], seed: int, index: int, spec: WorldSpec
) -> tuple[np.ndarray, list[Event]]:
    """Frames of one long video and its events: distractor stretches, each event between two of them."""
    from engine.train.synthetic import caption, held_out_triples

    syn = _scene_tools()
    np_rng = np.random.default_rng([seed, 2, index])
    seen = sorted(
        {(c, s, v) for c in syn.COLORS for s in syn.SHAPES for v in syn.VERBS} - held_out_triples(seed), key=str
    )
    pieces_total = int(rng.uniform(*spec.long_seconds) // CLIP_SECONDS)  # the video in 4-s pieces
    n = len(events)
    if pieces_total < 2 * n + 1:
        raise ValueError(f"a {pieces_total * CLIP_SECONDS:g}-s video cannot hold {n} events between distractors")
    # events never first or last, and never back to back: each stands between distractors
    slots = [1 + c + k for k, c in enumerate(sorted(rng.sample(range(pieces_total - 1 - n), n)))]
    pieces: list[np.ndarray] = []
    out: list[Event] = []
    todo = list(events)
    for p in range(pieces_total):
        if slots and p == slots[0]:
            slots.pop(0)
            scene = todo.pop(0)
            pieces.append(syn.render(scene, np_rng, size=spec.size, n_frames=spec.n_frames))
            out.append(Event(caption(scene), p * CLIP_SECONDS, (p + 1) * CLIP_SECONDS))
        elif rng.random() < 0.5:
            pieces.append(_still(rng, np_rng, spec))
        else:  # a moving shape of a triple seen in training: a caption no query uses
            distractor = _sample_scene(rng, rng.choice(seen), spec.two_shapes)
            pieces.append(syn.render(distractor, np_rng, size=spec.size, n_frames=spec.n_frames))
    return np.concatenate(pieces), out


def memory_test_clips(seed: int, spec: WorldSpec) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """The library's test clips rendered in memory (not written, not decoded), for ``bench train``'s evaluation:
    (MemoryClips with the component and binding negatives ``make_splits`` gives test clips, reversed frames,
    colour-swapped frames, and which clips have a colour-swapped twin)."""
    from engine.train.clips import MemoryClips
    from engine.train.synthetic import binding_negatives, caption, component_negatives

    tests, _, _ = held_out_scenes(seed, spec)
    neg_rng = random.Random(f"quality:{seed}:test-negatives")
    frames, swapped, has_swap, negatives = [], [], [], []
    for i, scene in enumerate(tests):
        clip = render_clip(scene, (seed, 1, i), spec)
        twin = colour_swapped_scene(scene)
        frames.append(clip)
        swapped.append(render_clip(twin, (seed, 1, i), spec) if twin is not None else clip)
        has_swap.append(twin is not None)
        entry = component_negatives(scene, neg_rng, spec.eval_negatives)
        entry.update(binding_negatives(scene))
        negatives.append(entry)
    stacked = np.stack(frames)
    clips = MemoryClips(stacked, [caption(s) for s in tests], negatives)
    return clips, stacked[:, ::-1].copy(), np.stack(swapped), np.array(has_swap)


def _world_from_json(data: dict[str, Any]) -> World:
    tests = [TestClip(**t) for t in data.pop("tests")]
    longs = [
        LongVideo(v["path"], v["folder"], v["duration"], tuple(Event(**e) for e in v["events"]))
        for v in data.pop("long_videos")
    ]
    return World(**data, tests=tests, long_videos=longs)


__all__ = [
    "CLIP_SECONDS",
    "FPS",
    "Event",
    "LongVideo",
    "TestClip",
    "World",
    "WorldSpec",
    "colour_swapped_scene",
    "held_out_scenes",
    "memory_test_clips",
    "render_clip",
    "reversed_scene",
    "write_world",
]
