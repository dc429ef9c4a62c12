"""What the player opens for a search hit: the video, its moments in order, the one to start at, the curve.

Pure data from the results (no widgets), so what "play this hit" means is decided in one place and tested
without a player: a moment hit opens at itself, a video hit at the moment holding its best frame.
"""

from __future__ import annotations

from desktop.models.results_model import Hit, clock, hit_range
from desktop.player.player_view import Opened
from engine.search.results import MomentHit, SearchResults


def opened_for_hit(hit: Hit, results: SearchResults) -> Opened:
    """The player's view of ``hit`` among ``results``: every moment of its video, with the hit's current."""
    same = sorted({(m.start, m.end) for m in results.moments if m.video_id == hit.video_id})
    target = hit_range(hit)
    if isinstance(hit, MomentHit) or not same:
        if target not in same:
            same = sorted([*same, target])
        current = same.index(target)
    else:  # a video hit: the moment holding its best frame, else the first
        inside = [n for n, (s, e) in enumerate(same) if s <= hit.best_time <= e]
        current = inside[0] if inside else 0
    curve = results.curves.get(hit.video_id)
    everything = list(results.moments) or [
        MomentHit(v.video, v.video_id, *hit_range(v), v.score, v.relevance, v.best_time, v.duration, v.why)
        for v in results.videos
    ]
    q = results.query
    text = q.text or (q.image.name if q.image else q.clip.name if q.clip else "more like this")
    return Opened(
        video=hit.video,
        duration=hit.duration,
        moments=same,
        current=current,
        times=curve.times if curve is not None else None,
        relevance=curve.relevance if curve is not None else None,
        query_text=text,
        all_moments=everything,
    )


def hit_range_text(start: float, end: float) -> str:
    return f"{clock(start)} – {clock(end)}"
