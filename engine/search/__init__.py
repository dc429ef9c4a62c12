"""Query answering: candidates from the indexes, exact re-scoring from stored vectors, ranked hits."""
