"""What decoding hands out: file kinds by extension, ``MediaError``, ``VideoInfo``, ``SampledFrame`` and
``DecodeStats``. Plain data (NumPy only), so the scanner and the catalog's users can name them without loading
a decoder; ``engine.media.decode`` re-exports them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".mp4", ".m4v", ".mkv", ".mov", ".qt", ".avi", ".webm", ".mpg", ".mpeg", ".mpe", ".m2v", ".wmv",
        ".asf", ".flv", ".f4v", ".ts", ".mts", ".m2ts", ".3gp", ".3g2", ".ogv", ".vob", ".divx", ".dv",
        ".mxf", ".rm", ".rmvb", ".y4m",
    }
)  # fmt: skip
# Sound files: recorded in the catalog as "no video stream" (the speech stage will want them), never failed.
AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    {".mp3", ".m4a", ".m4b", ".aac", ".wav", ".flac", ".ogg", ".oga", ".opus", ".wma", ".aif", ".aiff", ".amr"}
)
# Extensions FFmpeg would happily open as a one-frame "video" (photos) or that are never video: a photo
# library must not be indexed as clips, and probing them is wasted time.
NOT_VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".heic", ".heif", ".avif",
        ".raw", ".cr2", ".nef", ".dng", ".svg", ".txt", ".md", ".json", ".xml", ".csv", ".pdf", ".doc",
        ".docx", ".zip", ".gz", ".srt", ".vtt",
    }
)  # fmt: skip


class MediaError(Exception):
    """A file cannot be probed or decoded; ``str()`` is ``"PATH: reason"`` so logs say which file."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class NoVideoStream(MediaError):
    """The file is a sound file (or a video container holding only audio): nothing to look at, not a failure."""


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    duration_s: float  # end of the last frame, from the container's timestamps
    fps: float  # average frame rate (frames / duration for a variable rate)
    frame_count: int  # video packets in the file
    width: int  # as shown: after rotation and the pixel aspect ratio
    height: int
    codec: str  # FFmpeg's codec name ("h264", "hevc", "av1", "vp9", "mjpeg")
    rotation: int = 0  # degrees (counter-clockwise) the stored pictures are turned to be shown upright
    hdr: str = ""  # "pq" or "hlg" for HDR video (tone-mapped to SDR when sampled); "" for SDR
    keyframe_interval_s: float = 0.0  # median distance between keyframes


@dataclass(frozen=True)
class SampledFrame:
    t: float  # presentation time in seconds from the start of the file
    index: int  # frame number in presentation order, 0-based
    is_cut: bool  # first frame of a detected shot change
    image: np.ndarray  # (H, W, 3) uint8 RGB, C-contiguous, upright


@dataclass
class DecodeStats:
    """What decoding one file cost and how it went (benchmarks, logs, tests)."""

    strategy: str = ""  # see engine.media.timeline: keyframes, keyframes+gops, gops, intra, sequential
    keyframe_interval_s: float = 0.0
    packets: int = 0  # video packets read in the sampling pass
    sent: int = 0  # packets given to the decoder
    decoded: int = 0  # frames the decoder returned (including those decoded again to locate a cut)
    converted: int = 0  # frames converted to RGB at the output size
    probes: int = 0  # tiny conversions for cut detection
    drains: int = 0  # times the decoder was drained and reset before a jump
    yielded: int = 0
    cuts: int = 0
    located_cuts: int = 0  # cuts found between two keyframe samples by decoding that stretch again
    decode_errors: int = 0  # packets the decoder rejected (damaged data)
    seconds: float = 0.0  # wall time spent reading, decoding and converting (not while the caller works)
    stopped: str = ""  # where and why the file ended early ("" when it was read to its end)
