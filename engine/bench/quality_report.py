"""The table and the goal lines of ``bench quality`` (see ``engine.bench.quality_bench``).

One table: per objective, two rows for ``bench train``'s evaluation of the checkpoint in memory (on its own test
set, and on the library's test clips), then one row per index pooling through search. The goals are the issue's,
each printed as PASS or FAIL with the figures it compares, so a reader never has to recompute one from the table.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

COLUMNS = (
    ("R1", "R@1"),
    ("R5", "R@5"),
    ("twin_reversed", "twin rev"),
    ("twin_colour", "twin col"),
    ("comp_reverse", "comp rev"),
    ("comp_swap_colors", "comp swapC"),
    ("MR_R1@0.5", "MR R1@0.5"),
    ("MR_R1@0.7", "MR R1@0.7"),
    ("MR_mAP", "MR mAP"),
)
TWIN_GAIN = 30.0  # points of twin-pair accuracy head pooling must add over mean pooling
KEEP_GAIN = 0.8  # share of the in-memory compositional gain that must survive through search
R1_SLACK = 2.0  # points of video R@1 component negatives may lose against InfoNCE
WALL_LIMIT_S = 20 * 60


def _cell(value: Any) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1f}"


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of the averaged rows."""
    lines = ["| objective | evaluated | " + " | ".join(h for _, h in COLUMNS) + " |"]
    lines.append("|" + "---|" * (len(COLUMNS) + 2))
    for row in rows:
        cells = [_cell(row.get(key)) for key, _ in COLUMNS]
        lines.append(f"| {row['variant']} | {row['label']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _row(rows: Sequence[dict[str, Any]], objective: str, evaluation: str) -> dict[str, Any]:
    return next(r for r in rows if r["objective"] == objective and r["evaluation"] == evaluation)


def _mean(*values: float) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def goals(
    rows: Sequence[dict[str, Any]], objectives: Sequence[tuple[str, str]], setup: Any, seconds: float, load: float
) -> list[str]:
    """The issue's goals as ``PASS``/``FAIL`` lines, each with the figures it compares; ``objectives`` are
    (label, name) with InfoNCE (``infonce``) and component negatives (``component``) among them."""
    head, lines = f"head-{setup.windows[0]}", []
    for label, objective in objectives:
        h, m = _row(rows, objective, head), _row(rows, objective, "mean")
        for key, name in (("twin_reversed", "time-reversed"), ("twin_colour", "colour-swapped")):
            gain = h[key] - m[key]
            lines.append(
                f"{_verdict(gain >= TWIN_GAIN)}  {label}: twin pairs, {name}: head {h[key]:.1f} vs mean "
                f"{m[key]:.1f} ({gain:+.1f} points; goal ≥ +{TWIN_GAIN:g})"
            )
    info, comp = _row(rows, "infonce", head), _row(rows, "component", head)
    info_bt, comp_bt = _row(rows, "infonce", "bench-train"), _row(rows, "component", "bench-train")
    info_mem, comp_mem = _row(rows, "infonce", "memory"), _row(rows, "component", "memory")
    twins_info = _mean(info["twin_reversed"], info["twin_colour"])
    twins_comp = _mean(comp["twin_reversed"], comp["twin_colour"])
    lines.append(
        f"{_verdict(twins_comp > twins_info)}  component negatives beat InfoNCE through search on twin pairs: "
        f"{twins_comp:.1f} vs {twins_info:.1f} (reversed {comp['twin_reversed']:.1f} vs {info['twin_reversed']:.1f}, "
        f"colour-swapped {comp['twin_colour']:.1f} vs {info['twin_colour']:.1f})"
    )
    gain_search = twins_comp - twins_info

    def binding_gain(a: dict[str, Any], b: dict[str, Any]) -> float:
        return _mean(a["comp_reverse"], a["comp_swap_colors"]) - _mean(b["comp_reverse"], b["comp_swap_colors"])

    gain_bench = binding_gain(comp_bt, info_bt)
    twins_memory = _mean(comp_mem["twin_reversed"], comp_mem["twin_colour"]) - _mean(
        info_mem["twin_reversed"], info_mem["twin_colour"]
    )
    also = (
        f"(in memory on these test clips: {binding_gain(comp_mem, info_mem):+.1f} on reverse and swap-colours, "
        f"{twins_memory:+.1f} on their twin pairs)"
    )
    if gain_bench > 0:
        kept = gain_search / gain_bench
        lines.append(
            f"{_verdict(kept >= KEEP_GAIN)}  the compositional gain survives search: {gain_search:+.1f} points on "
            f"twin pairs through search vs {gain_bench:+.1f} that bench train's evaluation measures (reverse and "
            f"swap-colours accuracy, its test set) = {100 * kept:.0f}% kept (goal ≥ {100 * KEEP_GAIN:.0f}%) {also}"
        )
    else:
        lines.append(
            f"FAIL  the compositional gain survives search: bench train's evaluation measures no gain to keep "
            f"({gain_bench:+.1f} points on reverse and swap-colours, its test set) {also}; through search "
            f"{gain_search:+.1f}"
        )
    lines.append(
        f"{_verdict(comp['R1'] >= info['R1'] - R1_SLACK)}  video R@1 through search, component negatives vs "
        f"InfoNCE: {comp['R1']:.1f} vs {info['R1']:.1f} ({comp['R1'] - info['R1']:+.1f}; goal ≥ −{R1_SLACK:g})"
    )
    for label, objective in objectives:
        h, m = _row(rows, objective, head), _row(rows, objective, "mean")
        lines.append(
            f"{_verdict(h['MR_R1@0.5'] > m['MR_R1@0.5'])}  {label}: moment R1@0.5 on the long videos, head "
            f"{h['MR_R1@0.5']:.1f} vs mean {m['MR_R1@0.5']:.1f} ({h['MR_R1@0.5'] - m['MR_R1@0.5']:+.1f})"
        )
    lines.append(
        f"{_verdict(seconds < WALL_LIMIT_S)}  whole benchmark {seconds / 60:.1f} min (goal < {WALL_LIMIT_S // 60} min) "
        f"on {os.cpu_count()} CPU cores, load average up to {load:.1f} while it ran"
    )
    return lines


def seed_lines(
    per_seed_rows: dict[int, Sequence[dict[str, Any]]], objectives: Sequence[tuple[str, str]], setup: Any
) -> list[str]:
    """Each seed's own verdict on the figure goals (the table and the goals above are the mean over seeds, and
    a mean can pass where one seed fails): how many pass, and every failing line in full."""
    lines = []
    for seed, rows in per_seed_rows.items():
        verdicts = goals(rows, objectives, setup, 0.0, math.nan)[:-1]  # the wall-clock goal is the whole run's
        failed = [line[len("FAIL  ") :] for line in verdicts if line.startswith("FAIL")]
        lines.append(f"seed {seed}: {len(verdicts) - len(failed)} of {len(verdicts)} pass")
        lines += [f"  FAIL  {line}" for line in failed]
    return lines


def format_report(
    rows: Sequence[dict[str, Any]],
    goal_lines: Sequence[str],
    setup: Any,
    seeds: Sequence[int],
    seconds: float,
    loads: Sequence[float],
    per_seed_lines: Sequence[str] = (),
) -> str:
    """The table, a legend saying what each column is, the goal lines and, for several seeds, each seed's."""
    spec = setup.spec
    reversal = getattr(setup, "time_reversal", 0.0)
    legend = [
        "",
        f"{setup.model}, {len(seeds)} seed(s) {', '.join(map(str, seeds))}; {setup.epochs} epochs, batch "
        f"{setup.batch_size}, {spec.n_train} training clips (bench train's budget and clips); {spec.n_test} "
        f"held-out test clips with their twins, {spec.n_long} long videos. "
        + (
            f"Both trainings add the reversed-clip term (engine.train.time_reversal) with weight {reversal:g}."
            if reversal
            else "Both trainings use losses.md's losses alone (the reversed-clip term off, as `train` by default)."
        ),
        "Through search every figure follows the list a user gets (relevance order, ties by score). "
        "R@K through search: the test caption over the whole library (its twins and the long videos included; "
        "pessimistic ties); in memory: among the test clips alone, as bench train ranks them. "
        "twin rev / col: the clip strictly above its time-reversed / colour-swapped twin (a tie is a loss). "
        "comp rev / swapC: bench train's text-side accuracy on the same clips (reversed path / swapped colours; "
        "in memory only). MR: QVHighlights R1@0.5, R1@0.7 and mAP (IoU 0.5:0.95) of each event in its long video. "
        '"pooled only": the component run\'s head index searched with --no-word-scores (the pooled vectors '
        "alone); its head row is what search gives by default, with the word-frame score it was trained with.",
        f"{seconds:.0f} s wall; load average {loads[0]:.1f} at the start, up to {max(loads):.1f}.",
        "",
        "Goals" + (f" (on the mean of the {len(seeds)} seeds):" if len(seeds) > 1 else ":"),
        *(f"  {line}" for line in goal_lines),
    ]
    if len(seeds) > 1 and per_seed_lines:
        legend += ["", "Each seed on its own:", *(f"  {line}" for line in per_seed_lines)]
    return format_table(rows) + "\n" + "\n".join(legend)


__all__ = ["COLUMNS", "format_report", "format_table", "goals", "seed_lines"]
