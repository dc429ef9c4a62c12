"""Search filters as one SQL condition over the catalog's videos (folder, file date, duration, resolution)."""

from __future__ import annotations

from engine.library.catalog import Catalog
from engine.search.query import SearchFilters


def allowed_videos(catalog: Catalog, filters: SearchFilters) -> set[int] | None:
    """Ids of the videos the filters allow, or None when there are no filters (everything is allowed)."""
    if filters.is_empty():
        return None
    clauses: list[str] = []
    params: list[object] = []
    if filters.folders:
        parts = []
        for folder in filters.folders:
            prefix = folder.rstrip("/\\")
            parts.append("(path = ? OR substr(path, 1, ?) = ?)")
            params += [prefix, len(prefix) + 1, prefix + "/"]
        clauses.append("(" + " OR ".join(parts) + ")")
    bounds = [
        ("mtime_ns >= ?", filters.modified_after, 1e9),
        ("mtime_ns <= ?", filters.modified_before, 1e9),
        ("duration >= ?", filters.min_duration, 1),
        ("duration <= ?", filters.max_duration, 1),
        ("height >= ?", filters.min_height, 1),
        ("height <= ?", filters.max_height, 1),
    ]
    for clause, value, scale in bounds:
        if value is not None:
            clauses.append(clause)
            params.append(int(value * scale) if scale != 1 else value)
    return catalog.select_video_ids(" AND ".join(clauses), params)
