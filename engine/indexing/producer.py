"""Decode videos on a background thread while the encoder works on the caller's thread.

PyAV (FFmpeg) and torch both release the GIL in their heavy calls, so a thread is enough for decoding to
overlap embedding; a bounded queue keeps memory flat (a few batches of small frames) however long the video.
Each file is opened once: its description goes out with its first frames (the rotation is only known once a
frame is decoded). Frames leave here centre-cropped to the encoder's square input so batches stack.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from engine.jobs import CancelToken, JobCancelled
from engine.library.catalog import VideoRow
from engine.media.decode import DecodeStats, MediaError, NoVideoStream, SampledFrame, VideoFile, VideoInfo
from engine.media.images import centre_crop


@dataclass(frozen=True)
class Started:
    video: VideoRow
    info: VideoInfo


@dataclass(frozen=True)
class Frames:
    video_id: int
    frames: list[SampledFrame]


@dataclass(frozen=True)
class Ended:
    video_id: int
    note: str = ""  # where a damaged or truncated file stopped ("" when it was read to its end)


@dataclass(frozen=True)
class Failed:
    video_id: int
    error: str
    no_video: bool = False  # a sound file: recorded as "no video stream", not as a failure


Item = Started | Frames | Ended | Failed | None  # None: every video has been produced


class FrameProducer:
    """Runs ``sample_frames`` over a list of videos on a daemon thread, feeding a bounded queue."""

    def __init__(
        self,
        videos: Sequence[VideoRow],
        *,
        every_s: float,
        cuts: bool,
        side: int,
        chunk: int = 16,
        max_chunks: int = 8,
    ) -> None:
        self._videos = list(videos)
        self._every_s = every_s
        self._cuts = cuts
        self._side = side
        self._chunk = chunk
        self.queue: queue.Queue[Item] = queue.Queue(maxsize=max_chunks)
        self._stop = CancelToken()
        self._thread = threading.Thread(target=self._run, name="scenefind-decode", daemon=True)

    def start(self) -> FrameProducer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the thread to stop and wait for it (draining the queue so it is never stuck on a put)."""
        self._stop.cancel()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self.queue.get(timeout=0.05)
        self._thread.join()

    def _put(self, item: Item) -> None:
        while True:
            self._stop.raise_if_cancelled()
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        try:
            for video in self._videos:
                self._produce(video)
            self._put(None)
        except JobCancelled:
            return

    def _produce(self, video: VideoRow) -> None:
        from pathlib import Path

        path = Path(video["path"])
        try:
            with VideoFile(path) as source:
                stats = DecodeStats()
                frames = source.sample(self._every_s, cuts=self._cuts, short_side=self._side, stats=stats,
                                       cancel=self._stop)  # fmt: skip
                batch: list[SampledFrame] = []
                started = False
                for frame in frames:
                    if not started:
                        self._put(Started(video, source.info))
                        started = True
                    cropped = centre_crop(frame.image, self._side)
                    batch.append(SampledFrame(t=frame.t, index=frame.index, is_cut=frame.is_cut, image=cropped))
                    if len(batch) >= self._chunk:
                        self._put(Frames(video["id"], batch))
                        batch = []
                if batch:
                    self._put(Frames(video["id"], batch))
                self._put(Ended(video["id"], stats.stopped))
        except JobCancelled:
            raise
        except NoVideoStream as exc:
            self._put(Failed(video["id"], exc.reason, no_video=True))
        except MediaError as exc:
            self._put(Failed(video["id"], exc.reason))
        except Exception as exc:  # a decoder bug must fail one file, not the whole run
            self._put(Failed(video["id"], f"{type(exc).__name__}: {exc}"))
