"""The ``scenefind bench search`` figures as the plain-text table a user reads in the terminal.

Apart from the measuring so the table can change (columns, wording) without touching what is measured; it
reads only the figures dictionary, the same one ``--json`` prints.
"""

from __future__ import annotations

from typing import Any


def format_report(figures: dict[str, Any]) -> str:
    """The figures as a plain-text table (latencies in ms, memory in MB per million vectors)."""
    lines = []
    target = figures["recall_target"]
    text = figures.get("text_encoding")
    if text:
        lines.append(
            f"text encoding ({text['model']} on {text['device']}, {text['queries']} queries one at a time): "
            f"p50 {text['p50_ms']:.1f} ms  p95 {text['p95_ms']:.1f} ms"
        )
    s = figures["settings"]
    lines.append(
        f"frame index: HNSW M {s['hnsw_m']}, ef_construction {s['hnsw_ef_construction']}, ef_search "
        f"{s['hnsw_ef_search']}; {figures['candidates']} candidates re-scored from float16; "
        f"{figures['queries']} queries; dim {figures['dim']}"
    )
    lines.append(
        "latency ms of ANN + re-scoring, cold: first pass after opening the index (vector pages fault in); warm: "
        "a later pass; memory MB per million vectors"
    )
    lines.append(
        f"{'kind':13} {'vectors':>9} {'ANN R@10':>8} {'R@10':>6} {'p50 cold':>8} {'p95 cold':>8} {'p50 warm':>8} "
        f"{'p95 warm':>8} {'files':>6} {'RSS heap+mapped':>17} {'build s':>7}  ef for R@10>={target} (p50 ms)"
    )
    for r in figures["indexes"]:
        rss = "-"
        if r["rss_mb_per_million"] is not None:
            heap, mapped = (r[f"rss_{part}_delta_mb"] * 1e6 / r["size"] for part in ("heap", "mapped"))
            rss = f"{r['rss_mb_per_million']:.0f} = {heap:.0f}+{mapped:.0f}"
        met = [row for row in r["sweep"] if row["recall_at_10"] >= target]
        reached = f"{met[0]['effective_ef']} ({met[0]['p50_ms']:.2f})" if met else f"> {r['sweep'][-1]['ef']}"
        lines.append(
            f"{r['kind']:13} {r['size']:>9,} {r['ann_recall_at_10']:8.4f} {r['recall_at_10']:6.4f} "
            f"{r['p50_ms']:8.2f} {r['p95_ms']:8.2f} {r.get('warm_p50_ms', float('nan')):8.2f} "
            f"{r.get('warm_p95_ms', float('nan')):8.2f} {r['files_mb_per_million']:6.0f} {rss:>17} "
            f"{r['build_s']:7.0f}  {reached}"
        )
    lines.append("ef sweep, warm (ef: R@10 after re-scoring / raw ANN R@10 / p50 / p95 ms):")
    for r in figures["indexes"]:
        cells = "  ".join(
            f"{row['ef']}: {row['recall_at_10']:.3f}/{row['ann_recall_at_10']:.3f}/{row['p50_ms']:.1f}/"
            f"{row['p95_ms']:.1f}"
            for row in r["sweep"]
        )
        lines.append(f"  {r['kind']:13} {r['size']:>9,}  {cells}")
    return "\n".join(lines)
