"""Training data files, official annotations as training items, the by-video split, and the frame cache."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from engine.media.decode import MediaError
from engine.media.synthetic import write_color_video
from engine.train.data import (
    FrameCache,
    TrainingDataError,
    TrainItem,
    load_official,
    load_training_data,
    split_items,
)

RED, BLUE = (220, 20, 20), (20, 20, 220)


def test_csv_with_relative_paths_and_optional_windows(tmp_path):
    data = tmp_path / "sets" / "train.csv"
    data.parent.mkdir()
    data.write_text(
        "video,caption,start,end\n"
        "clips/a.mp4,a dog runs,,\n"
        '/abs/b.mp4,"a cat, sleeping",1.5,4\n'
        "c.mp4,  a   bird   sings ,2,\n"
    )
    items = load_training_data(data)
    assert items == [
        TrainItem((data.parent / "clips/a.mp4").resolve(), "a dog runs"),
        TrainItem(Path("/abs/b.mp4"), "a cat, sleeping", 1.5, 4.0),
        TrainItem((data.parent / "c.mp4").resolve(), "a bird sings", 2.0, None),
    ]


def test_jsonl_and_header_aliases(tmp_path):
    data = tmp_path / "train.jsonl"
    rows = [{"video": "a.mp4", "caption": "x"}, {"video_path": "b.mp4", "text": "y", "start": 0, "end": "2.5"}]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    items = load_training_data(data)
    assert [(i.video.name, i.caption, i.start, i.end) for i in items] == [
        ("a.mp4", "x", None, None),
        ("b.mp4", "y", 0.0, 2.5),
    ]
    tsv = tmp_path / "t.tsv"
    tsv.write_text("Path\tSentence\nv.mp4\ta walk\n")
    assert load_training_data(tsv)[0].caption == "a walk"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.csv", "clip,caption\nx.mp4,y\n", r"a\.csv:1: missing column 'video'"),
        ("b.csv", "video,caption,start\nx.mp4,y,1\nz.mp4,w,soon\n", r"b\.csv:3: start 'soon' is not a number"),
        ("c.csv", "video,caption,start,end\nx.mp4,y,5,5\n", r"c\.csv:2: start 5 s is not before end 5 s"),
        ("d.csv", "video,caption\nx.mp4,y\nz.mp4,  \n", r"d\.csv:3: empty caption"),
        ("e.csv", "video,caption,start\nx.mp4,y,-1\n", r"e\.csv:2: start '-1' must be a finite, non-negative"),
        ("f.csv", "video,caption\n", r"f\.csv: no items"),
        ("g.jsonl", '{"video": "x.mp4", "caption": "y"}\n[1, 2]\n', r"g\.jsonl:2: expected a JSON object"),
        ("h.jsonl", '{"video": "x.mp4"}\n', r"h\.jsonl:1: missing 'caption'"),
        ("i.jsonl", '{"video": "x.mp4", "caption": "y", "end": true}\n', r"i\.jsonl:1: end True is not a number"),
        ("j.jsonl", '{"video": "x.mp4", "caption": "y"\n', r"j\.jsonl:1: not JSON"),
        ("l.json", '[{"video": "x.mp4", "caption": "y"}]\n', r"l\.json:1: a JSON array; expected JSON lines"),
        ("k.csv", 'video,caption\nx.mp4,"a\nb"\nz.mp4,y,extra\n', r"k\.csv:4: 3 fields but the header has 2"),
    ],
)
def test_errors_name_the_file_and_line(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(TrainingDataError, match=message):
        load_training_data(path)


def test_check_files_reports_a_missing_video(tmp_path):
    (tmp_path / "here.mp4").write_bytes(b"x")
    data = tmp_path / "d.csv"
    data.write_text("video,caption\nhere.mp4,a\ngone.mp4,b\n")
    assert len(load_training_data(data)) == 2
    with pytest.raises(TrainingDataError, match=r"d\.csv:3: video .*gone\.mp4 does not exist"):
        load_training_data(data, check_files=True)


def _items(n_videos: int, per_video: int = 3) -> list[TrainItem]:
    return [TrainItem(Path(f"/v/{v}.mp4"), f"caption {v}.{c}") for v in range(n_videos) for c in range(per_video)]


def test_split_is_by_video_seeded_and_order_free():
    items = _items(50)
    train, val = split_items(items, val_fraction=0.2, seed=0)
    assert len(train) + len(val) == len(items)
    assert {i.video for i in train}.isdisjoint({i.video for i in val})
    assert len({i.video for i in val}) == 10
    assert split_items(items, 0.2, seed=0) == (train, val)
    shuffled = list(reversed(items))
    assert {i.video for i in split_items(shuffled, 0.2, seed=0)[1]} == {i.video for i in val}
    assert {i.video for i in split_items(items, 0.2, seed=1)[1]} != {i.video for i in val}
    assert [items.index(i) for i in train] == sorted(items.index(i) for i in train)  # order kept
    # adding videos moves few of the old ones
    grown = {i.video for i in split_items(_items(55), 0.2, seed=0)[1]}
    assert len(grown & {i.video for i in val}) >= 8


def test_split_edge_cases():
    assert split_items(_items(5), 0.0) == (_items(5), [])
    train, val = split_items(_items(2), 0.01)
    assert len({i.video for i in val}) == 1 and len({i.video for i in train}) == 1
    assert split_items(_items(1), 0.5) == (_items(1), [])
    with pytest.raises(ValueError, match="val_fraction"):
        split_items(_items(3), 1.0)


def test_official_retrieval_and_moment_sets(shared_data, tmp_path):
    videos = shared_data / "videos" / "antmmf"
    msrvtt = load_official("msrvtt", shared_data / "annotations/msrvtt/MSRVTT_JSFUSION_test.csv", videos)
    assert [(i.video.name, i.caption) for i in msrvtt] == [
        ("video9770.mp4", "a person is connecting something to system"),
        ("video9771.mp4", "a little girl does gymnastics"),
    ]
    antmmf = load_official(None, videos / "msrvtt_train.jsonl", videos)  # dataset guessed from the name
    assert len(antmmf) == 4 and antmmf[1].caption == "the system is connected by a person"
    folder = tmp_path / "qv_videos"
    folder.mkdir()
    os.symlink(videos / "video9770.mp4", folder / "clipA_0.0_150.0.mp4")
    ann = tmp_path / "highlight_train.jsonl"
    rows = [
        {"qid": 1, "query": "a person plugs in a cable", "duration": 150, "vid": "clipA_0.0_150.0",
         "relevant_windows": [[2, 6], [8, 10]], "relevant_clip_ids": [1, 2], "saliency_scores": [[1, 2, 3], [2, 2, 2]]},
        {"qid": 2, "query": "nobody here", "duration": 150, "vid": "absent_1.0_2.0",
         "relevant_windows": [[0, 2]], "relevant_clip_ids": [0], "saliency_scores": [[1, 1, 1]]},
    ]  # fmt: skip
    ann.write_text("".join(json.dumps(r) + "\n" for r in rows))
    moments = load_official("qvhighlights", ann, folder)
    assert [(i.caption, i.start, i.end) for i in moments] == [
        ("a person plugs in a cable", 2.0, 6.0),
        ("a person plugs in a cable", 8.0, 10.0),
    ]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TrainingDataError, match="none of its videos"):
        load_official("qvhighlights", ann, empty)
    with pytest.raises(ValueError, match="unknown dataset"):
        load_official("nope", ann, folder)


@pytest.fixture
def clip(tmp_path) -> Path:
    """10 s: red for 5 s, then blue."""
    return write_color_video(tmp_path / "clip.mp4", [(5, RED), (5, BLUE)], fps=10)


def test_frame_cache_decodes_once(clip, tmp_path, monkeypatch):
    cache = FrameCache(tmp_path / "frames")
    item = TrainItem(clip, "red then blue")
    frames = cache.frames(item, n_frames=4, size=32)
    assert frames.shape == (4, 32, 32, 3) and frames.dtype == np.uint8
    red_first = frames[:, 16, 16]
    assert red_first[0, 0] > 150 and red_first[0, 2] < 100  # 1.25 s: red
    assert red_first[3, 2] > 150 and red_first[3, 0] < 100  # 8.75 s: blue
    assert cache.path_for(item, 4, 32).is_file()

    import engine.train.data as data

    monkeypatch.setattr(data, "_decode", lambda *a: pytest.fail("decoded twice"))
    assert np.array_equal(cache.frames(item, n_frames=4, size=32), frames)
    os.utime(clip, ns=(1, 1))  # the file changed: a new key, so it is decoded again
    with pytest.raises(pytest.fail.Exception, match="decoded twice"):
        cache.frames(item, n_frames=4, size=32)


def test_frame_cache_windows_and_errors(clip, tmp_path):
    cache = FrameCache()  # default folder under the (test) cache home
    blue = cache.frames(TrainItem(clip, "blue part", 6.0, 9.0), n_frames=3, size=16)
    assert (blue[:, 8, 8, 2] > 150).all() and (blue[:, 8, 8, 0] < 100).all()
    assert cache.path_for(TrainItem(clip, "x", 6.0, 9.0), 3, 16).is_relative_to(tmp_path / "cache" / "train-frames")
    beyond = TrainItem(clip, "x", 30.0, 40.0)
    with pytest.raises(MediaError, match=r"clip\.mp4: the window 30-40 s starts after the video ends"):
        cache.frames(beyond, n_frames=2, size=16)
    with pytest.raises(MediaError, match="missing"):
        cache.frames(TrainItem(tmp_path / "missing.mp4", "x"), 2, 16)
    failures = cache.prepare([TrainItem(clip, "a"), beyond], n_frames=2, size=16)
    assert [(item.start, "starts after" in reason) for item, reason in failures] == [(30.0, True)]
