"""Benchmark metrics and the ``scenefind eval`` harness.

``metrics`` (retrieval R@K, MdR, MnR) and ``moments`` (QVHighlights MR/HL exactly as the official script,
Charades-STA grounding) are pure NumPy functions; ``run`` indexes a dataset's videos and scores the product's
answers with them. Importing this package loads no model and no index.
"""

from __future__ import annotations

from engine.evaluation.metrics import ground_truth_ranks, rank_metrics, retrieval_metrics
from engine.evaluation.moments import eval_submission, grounding_metrics

__all__ = ["eval_submission", "ground_truth_ranks", "grounding_metrics", "rank_metrics", "retrieval_metrics"]
