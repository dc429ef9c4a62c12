"""Official-format loaders read every line of every real annotation file; malformed lines name file and line.

The expected counts were taken once with shell tools, independently of the loaders:
``wc -l``/``grep -c`` for line-based files (MSR-VTT: 1,001 lines minus the header; DiDeMo: 1,004 lines ending
in ``.mp4``, seven records spanning two lines; MSVD: 27,763 occurrences of ``", "`` on 670 lines) and
``json.load`` for ActivityNet (4,917 videos, 17,505 sentences).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.datasets import (
    LOADERS,
    AnnotationError,
    CaptionPair,
    MomentQuery,
    guess_dataset,
    load_activitynet,
    load_charades_sta,
    load_didemo,
    load_msrvtt,
    load_msvd,
    load_predictions,
    load_qvhighlights,
    video_order,
)

FILES = {
    "msrvtt": "msrvtt/MSRVTT_JSFUSION_test.csv",
    "msvd": "msvd/MSVD_test.tsv",
    "didemo": "didemo/DiDeMo_test.tsv",
    "qvhighlights": "qvhighlights/highlight_val_release.jsonl",
    "charades_sta": "charades_sta/charades_sta_test.txt",
    "activitynet": "activitynet_captions/val.json",
}
# dataset -> (records, distinct videos)
COUNTS = {
    "msrvtt": (1000, 1000),
    "msvd": (27763, 670),
    "didemo": (1004, 1004),
    "qvhighlights": (1550, 1519),
    "charades_sta": (3720, 1334),
    "activitynet": (17505, 4917),
}


@pytest.mark.parametrize("dataset", list(FILES))
def test_every_record_of_every_file(shared_data: Path, dataset: str) -> None:
    path = shared_data / "annotations" / FILES[dataset]
    records = LOADERS[dataset](path)
    n_records, n_videos = COUNTS[dataset]
    assert len(records) == n_records
    vids = {r.video_id if isinstance(r, CaptionPair) else r.vid for r in records}
    assert len(vids) == n_videos
    assert guess_dataset(path) == dataset
    for r in records:
        text = r.caption if isinstance(r, CaptionPair) else r.query
        assert text and text == text.strip() and "\n" not in text
        if isinstance(r, MomentQuery):
            assert r.windows and all(0 <= s <= e for s, e in r.windows)


def test_msrvtt_rows(shared_data: Path) -> None:
    pairs = load_msrvtt(shared_data / "annotations" / FILES["msrvtt"])
    assert pairs[0] == CaptionPair("video9770", "a person is connecting something to system")
    assert pairs[1] == CaptionPair("video9771", "a little girl does gymnastics")
    ids, mapping = video_order(pairs)
    assert len(ids) == 1000 and np.array_equal(mapping, np.arange(1000))


def test_antmmf_jsonl_captions(shared_data: Path) -> None:
    folder = shared_data / "videos" / "antmmf"
    test = load_msrvtt(folder / "msrvtt_test.jsonl")
    assert test == [
        CaptionPair("video9770", "a person is connecting something to system"),
        CaptionPair("video9771", "a little girl does gymnastics"),
    ]
    train = load_msrvtt(folder / "msrvtt_train.jsonl")  # clip_name is a path there
    assert [p.video_id for p in train] == ["video9770", "video9770", "video9771", "video9771"]


def test_msvd_captions_grouped_by_video(shared_data: Path) -> None:
    pairs = load_msvd(shared_data / "annotations" / FILES["msvd"])
    assert pairs[0] == CaptionPair("eyhzdC936uk_15_27", "a boy playing with dog")
    assert pairs[-1].video_id == "zzit5b_-ukg_5_20" and pairs[-1].caption == "the boy is exercising"
    ids, mapping = video_order(pairs)
    assert len(ids) == 670 and np.all(np.diff(mapping) >= 0)  # each video's captions are contiguous
    assert np.bincount(mapping).min() >= 1


def test_didemo_paragraphs_and_quoted_records(shared_data: Path) -> None:
    pairs = {p.video_id: p.caption for p in load_didemo(shared_data / "annotations" / FILES["didemo"])}
    assert pairs["10052357@N03_7585070382_5762149bfc"] == "swimmers dive into the water."
    spans_two_lines = pairs["16483298@N00_3766400261_96bd3905c1"]  # a quoted record with a line break
    assert "typewriter lid, a man in a blue shirt" in spans_two_lines and spans_two_lines.endswith("come on")
    assert any('"ok"' in caption for caption in pairs.values())  # a doubled quote inside a quoted field


def test_qvhighlights_fields(shared_data: Path) -> None:
    queries = load_qvhighlights(shared_data / "annotations" / FILES["qvhighlights"])
    first = queries[0]
    assert (first.qid, first.vid, first.duration, first.windows) == (
        2579,
        "NUsG9BgSes0_210.0_360.0",
        150.0,
        ((82, 150),),
    )
    assert first.relevant_clip_ids[0] == 41 and first.saliency_scores[0] == (1, 1, 2)
    assert sum(len(q.windows) for q in queries) == 2803
    assert all(len(q.relevant_clip_ids) == len(q.saliency_scores) for q in queries)


def test_charades_and_activitynet_fields(shared_data: Path) -> None:
    charades = load_charades_sta(shared_data / "annotations" / FILES["charades_sta"])
    assert charades[0] == MomentQuery(0, "person turn a light on.", "3MSZA", None, ((24.3, 30.4),))
    anet = load_activitynet(shared_data / "annotations" / FILES["activitynet"])
    assert anet[0] == MomentQuery(0, "A weight lifting tutorial is given.", "v_uqiMw7tQ1Cc", 55.15, ((0.28, 55.15),))
    assert anet[1].query.startswith("The coach helps")  # leading spaces of the official sentences dropped


@pytest.mark.parametrize(
    ("loader", "name", "text", "line", "problem"),
    [
        (load_msrvtt, "a.csv", "key;vid_key;video_id;sentence\nret0;m;video1;ok\nret1;m;video2\n", 3, "expected key"),
        (load_msrvtt, "b.csv", "id,video,text\n", 1, "header"),
        (load_msvd, "c.tsv", "a cat, a dog, \tvid1\nno tab here\n", 2, "a tab"),
        (load_charades_sta, "d.txt", "V1 1.0 2.0##ok\nV2 x 2.0##bad\n", 2, "not a number"),
        (load_charades_sta, "e.txt", "V1 3.0 2.0##reversed\n", 1, "start <= end"),
        (
            load_qvhighlights,
            "f.jsonl",
            '{"qid": 1, "query": "q", "vid": "v", "duration": 10}\n{"qid": 2\n',
            2,
            "not JSON",
        ),
        (load_qvhighlights, "g.jsonl", '{"qid": 1, "query": "q", "vid": "v"}\n', 1, "duration"),
        (load_predictions, "h.jsonl", '{"qid": 1, "pred_relevant_windows": [[0, 1]]}\n', 1, "[start, end, score]"),
        (load_predictions, "i.jsonl", '{"qid": 1}\n\n{"qid": 1}\n', 3, "already on line 1"),
        (load_didemo, "j.tsv", "a caption, \tv.mp4\nno video\n", 2, "a tab"),
    ],
)
def test_malformed_lines_name_file_and_line(
    tmp_path: Path, loader: object, name: str, text: str, line: int, problem: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(AnnotationError, match=problem) as info:
        loader(path)  # type: ignore[operator]
    assert str(info.value).startswith(f"{path}:{line}:") and info.value.line == line


def test_activitynet_errors_name_the_video(tmp_path: Path) -> None:
    path = tmp_path / "val.json"
    path.write_text('{"v_a": {"duration": 5, "timestamps": [[0, 1]], "sentences": ["x", "y"]}}')
    with pytest.raises(AnnotationError, match="'v_a': ValueError: 1 timestamps but 2 sentences"):
        load_activitynet(path)
    path.write_text('{"v_a": {"duration": 5,\n "timestamps": [[0, 1]] "sentences": []}}')
    with pytest.raises(AnnotationError, match=r"val.json:2: not JSON"):
        load_activitynet(path)


def test_predictions_keep_what_is_given(tmp_path: Path) -> None:
    path = tmp_path / "pred.jsonl"
    path.write_text(
        '{"qid": 7, "query": "q", "vid": "v", "pred_relevant_windows": [[1, 2.5, 0.9, "extra"]], '
        '"pred_saliency_scores": [0.1, 2]}\n{"qid": "x8", "pred_saliency_scores": []}\n'
    )
    first, second = load_predictions(path)
    assert first.windows == ((1.0, 2.5, 0.9),) and first.saliency == (0.1, 2.0)
    assert second.qid == "x8" and second.windows is None and second.saliency == ()
