"""How the embedder shares the CPU with the decoder thread while indexing.

Indexing decodes on a background thread while the model embeds the batches already decoded. On a CPU, torch's
intra-op pool takes every core by default; with the decoder busy on one of them, its threads wait on each other
and spin: measured on 2 cores with random ViT-B-32 on 4K HEVC (``scenefind bench decode``), 3.2x real time
with 2 torch threads beside the decoder against 5.3-7.2x with 1, and 6.3x against 10-11x when counted in CPU
seconds. So while the decoder still runs, the embedder takes half the cores (at least one) and gives them back
after each batch; once decoding is over, the last batches get them all.

Torch is looked up, never imported: a run with a weightless model (``fake:color``) must not load it, and a
model built lazily has imported it by the time its device is asked for.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

_process_threads: list[int] = []  # torch's own thread count, read once (before any halving)


@contextmanager
def embedding_threads(device: str, *, decoding: bool) -> Iterator[None]:
    """Run the body with half of torch's CPU threads when ``decoding`` on a CPU device, else unchanged."""
    torch = sys.modules.get("torch")
    if torch is None or not decoding or not device.startswith("cpu"):
        yield
        return
    if not _process_threads:
        _process_threads.append(torch.get_num_threads())
    full = _process_threads[0]
    torch.set_num_threads(max(1, full // 2))
    try:
        yield
    finally:
        torch.set_num_threads(full)
