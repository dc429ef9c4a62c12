"""One file fetched over HTTPS with progress, cancel, resume and verification (model weights of every kind).

The language model (``engine.train.llm``) and the speech models (``engine.speech.models``) download through
here, so both refuse plain HTTP (a model file must not travel in the clear; only this machine's loopback
address is exempt: a local mirror or a test server), resume a ``.part`` file, check size and SHA-256 when
known, and rename into place only when complete, so a killed download never leaves a file that looks whole.
"""

from __future__ import annotations

import hashlib
import os
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from engine.jobs import CancelToken, ProgressCallback, check_cancel, report

CHUNK = 1 << 20


class DownloadError(OSError):
    """A download was refused, failed or did not verify; the message names the file and the cause."""


def check_url(url: str, target: Path) -> None:
    """Refuse anything but HTTPS, except from this machine's own loopback address."""
    parts = urllib.parse.urlsplit(url)
    loopback = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not loopback:
        raise DownloadError(f"{target}: refusing to download over a non-HTTPS URL ({url})")


def download_file(
    url: str,
    target: Path,
    *,
    size: int | None = None,
    sha256: str | None = None,
    label: str | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    timeout_s: float = 30.0,
) -> Path:
    """Fetch ``url`` to ``target`` through ``target.part`` (resumed if present), verify it, rename it in."""
    check_url(url, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:  # not a prefix of this file: start over
        part.unlink()
        have = 0
    digest = hashlib.sha256()
    if have:
        with open(part, "rb") as fh:
            for block in iter(lambda: fh.read(CHUNK), b""):
                digest.update(block)
    if size is None or have < size:
        have, digest = _fetch(url, part, have, digest, size, label or target.name, progress, cancel, timeout_s)
    if size is not None and have != size:
        raise DownloadError(f"{target}: download incomplete ({have:,} of {size:,} bytes); run again to resume")
    if sha256 is not None and digest.hexdigest() != sha256:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{target}: checksum mismatch (sha256 {digest.hexdigest()}, expected {sha256}); deleted")
    os.replace(part, target)
    return target


def _fetch(
    url: str,
    part: Path,
    have: int,
    digest: Any,
    size: int | None,
    label: str,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
    timeout_s: float,
) -> tuple[int, Any]:
    """Append the rest of the file to ``part`` (all of it when the server ignores the range)."""
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            if have and response.status != 206:  # the server ignored the range: start over
                have, digest = 0, hashlib.sha256()
            total = size or (have + int(response.headers.get("Content-Length") or 0)) or None
            with open(part, "ab" if have else "wb") as out:
                while block := response.read(CHUNK):
                    check_cancel(cancel)
                    out.write(block)
                    digest.update(block)
                    have += len(block)
                    if total:
                        report(progress, have / total, f"Downloading {label}: {have / 1e6:.0f} of {total / 1e6:.0f} MB")
    except OSError as exc:
        raise DownloadError(f"{part.with_suffix('')}: could not download {url} ({exc})") from exc
    return have, digest
