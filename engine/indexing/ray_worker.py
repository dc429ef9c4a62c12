"""``VideoEmbedder``: the body of a Ray indexing worker, which decodes and embeds one video at a time.

A worker builds its encoder once, from the registry name (weights load on the first video), and then turns a
video path on shared storage into an ``EmbeddedVideo``: the same decoder thread and frame handling as a
local run (``embed_videos``), the same encoder, so the writer commits exactly what a local run would.
It writes nothing: the one writer is the process that started the run. A file that cannot be decoded comes
back as a failure with the reason, as locally; an encoder error is raised, failing the run, as locally.

The class is plain Python (``ray.remote`` wraps it when a run starts), so it imports no Ray at module level.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from engine.indexing.pipeline import EmbeddedVideo, embed_videos
from engine.library.catalog import VideoRow
from engine.media.decode import VideoInfo
from engine.models.base import Encoder
from engine.settings import EngineSettings


@dataclass(frozen=True)
class WorkerInfo:
    """Who a worker is: its model (checked against the writer's), and its process, for logs and tests."""

    model_id: str
    dim: int
    device: str
    pid: int
    host: str


@dataclass(frozen=True)
class EmbedResult:
    """A worker's answer for one video: embedded, or failed with the reason (``info`` when it was probed)."""

    video_id: int
    pid: int
    embedded: EmbeddedVideo | None = None
    error: str = ""
    info: VideoInfo | None = None
    no_video: bool = False  # the error is "no video stream": a sound file, not a failure


class VideoEmbedder:
    """Decodes and embeds whole videos with one encoder, on whatever node Ray placed it."""

    def __init__(self, model: str, settings: EngineSettings, device: str) -> None:
        from engine.models.registry import create_encoder

        self.settings = settings
        self.encoder: Encoder = create_encoder(
            model,
            device=device,
            batch_size=settings.batch_size,
            pooling=settings.pooling,
            head_windows=settings.head_windows,
        )

    def info(self) -> WorkerInfo:
        e = self.encoder
        return WorkerInfo(e.model_id, e.dim, e.device, os.getpid(), socket.gethostname())

    def embed(self, video: VideoRow) -> EmbedResult:
        """Decode ``video['path']`` (a background thread) while embedding its frames here, with the local run's
        own loop (``engine.indexing.pipeline.embed_videos``); the writer back home commits or records it."""
        kept = _Kept()
        embed_videos([video], self.encoder, self.settings, kept)
        if kept.embedded is None and not kept.error:  # the loop always ends a video one way or the other
            raise RuntimeError(f"{video['path']}: the decoder ended without describing the video")
        return EmbedResult(
            video["id"], os.getpid(), embedded=kept.embedded, error=kept.error, info=kept.info, no_video=kept.no_video
        )


class _Kept:
    """A sink for one video: what ``embed_videos`` hands over stays here to travel back to the writer."""

    def __init__(self) -> None:
        self.info: VideoInfo | None = None
        self.embedded: EmbeddedVideo | None = None
        self.error = ""
        self.no_video = False

    def record_info(self, video: VideoRow, info: VideoInfo) -> None:
        self.info = info

    def commit(self, embedded: EmbeddedVideo) -> bool:
        self.embedded = embedded
        return True

    def fail(self, video: VideoRow, error: str, *, no_video: bool = False) -> bool:
        self.error, self.no_video = error, no_video
        return True
