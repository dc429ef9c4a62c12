"""The embedder leaves the decoder thread its share of the CPU while both run (``engine.indexing.core_sharing``);
the speed it buys is a ``scenefind bench decode`` figure, not a test."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from engine.indexing import core_sharing
from engine.indexing.core_sharing import embedding_threads


class _Torch(SimpleNamespace):
    def __init__(self, threads: int) -> None:
        super().__init__(threads=threads, calls=[])

    def get_num_threads(self) -> int:
        return self.threads

    def set_num_threads(self, n: int) -> None:
        self.calls.append(n)
        self.threads = n


@pytest.mark.parametrize(("cores", "inside"), [(2, 1), (1, 1), (16, 8)])
def test_half_the_threads_while_decoding_then_all_back(
    monkeypatch: pytest.MonkeyPatch, cores: int, inside: int
) -> None:
    torch = _Torch(cores)
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setattr(core_sharing, "_process_threads", [])
    for _ in range(2):  # the count is the process's own every time, never a halved one halved again
        with embedding_threads("cpu", decoding=True):
            assert torch.threads == inside
        assert torch.threads == cores
    with pytest.raises(RuntimeError), embedding_threads("cpu", decoding=True):
        raise RuntimeError("a failed batch gives the threads back too")
    assert torch.threads == cores


@pytest.mark.parametrize(("device", "decoding"), [("cpu", False), ("cuda:0", True), ("mps", True)])
def test_all_threads_when_decoding_is_over_or_off_the_cpu(
    monkeypatch: pytest.MonkeyPatch, device: str, decoding: bool
) -> None:
    torch = _Torch(2)
    monkeypatch.setitem(sys.modules, "torch", torch)
    with embedding_threads(device, decoding=decoding):
        assert torch.threads == 2
    assert torch.calls == []


def test_torch_is_never_imported_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    with embedding_threads("cpu", decoding=True):  # a weightless model's run: torch stays out
        pass
    assert "torch" not in sys.modules
