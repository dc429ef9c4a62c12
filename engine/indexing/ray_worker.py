"""``VideoEmbedder``: the body of a Ray indexing worker, which decodes and embeds one video at a time.

A worker builds its encoder once, from the registry name (weights load on the first video), and then turns a
video path on shared storage into an ``EmbeddedVideo``: the same decoder thread and frame handling as a
local run (``FrameProducer``), the same encoder, so the writer commits exactly what a local run would.
It writes nothing: the one writer is the process that started the run. A file that cannot be decoded comes
back as a failure with the reason, as locally; an encoder error is raised, failing the run, as locally.

The class is plain Python (``ray.remote`` wraps it when a run starts), so it imports no Ray at module level.
"""

from __future__ import annotations

import os
import queue
import socket
from dataclasses import dataclass

import numpy as np

from engine.indexing.pipeline import EmbeddedVideo
from engine.indexing.producer import Ended, Failed, FrameProducer, Frames, Started
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


class VideoEmbedder:
    """Decodes and embeds whole videos with one encoder, on whatever node Ray placed it."""

    def __init__(self, model: str, settings: EngineSettings, device: str) -> None:
        from engine.models.registry import create_encoder

        self.settings = settings
        self.encoder: Encoder = create_encoder(model, device=device, batch_size=settings.batch_size)

    def info(self) -> WorkerInfo:
        e = self.encoder
        return WorkerInfo(e.model_id, e.dim, e.device, os.getpid(), socket.gethostname())

    def embed(self, video: VideoRow) -> EmbedResult:
        """Decode ``video['path']`` (a background thread) while embedding its frames in batches here."""
        s = self.settings
        side = self.encoder.image_size
        producer = FrameProducer([video], every_s=s.sample_every_s, cuts=s.detect_cuts, side=side).start()
        info: VideoInfo | None = None
        times: list[float] = []
        indices: list[int] = []
        cuts: list[bool] = []
        images: list[np.ndarray] = []
        batches: list[np.ndarray] = []
        try:
            while True:
                try:
                    item = producer.queue.get(timeout=1.0)
                except queue.Empty:
                    continue
                if item is None:
                    break
                if isinstance(item, Started):
                    info = item.info
                elif isinstance(item, Frames):
                    for frame in item.frames:
                        times.append(frame.t)
                        indices.append(frame.index)
                        cuts.append(frame.is_cut)
                        images.append(frame.image)
                    while len(images) >= s.batch_size:
                        batches.append(self.encoder.encode_images(np.stack(images[: s.batch_size])))
                        images = images[s.batch_size :]
                elif isinstance(item, Failed):
                    return EmbedResult(video["id"], os.getpid(), error=item.error, info=info)
                elif isinstance(item, Ended) and images:
                    batches.append(self.encoder.encode_images(np.stack(images)))
                    images = []
        finally:
            producer.stop()
        if info is None:  # the producer always sends Started or Failed first; this is a bug, not a bad file
            raise RuntimeError(f"{video['path']}: the decoder ended without describing the video")
        dim = self.encoder.dim
        vectors = np.concatenate(batches).astype(np.float32) if batches else np.zeros((0, dim), np.float32)
        embedded = EmbeddedVideo(video, info, times, indices, cuts, vectors)
        return EmbedResult(video["id"], os.getpid(), embedded=embedded, info=info)
