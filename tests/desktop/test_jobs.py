"""JobRunner: results, progress with ETA, cancel, failure, one job per owner."""

from __future__ import annotations

import threading
import time

import pytest

from desktop.jobs import EtaEstimator, JobRunner, format_eta
from engine.jobs import check_cancel

pytestmark = pytest.mark.gui


def test_finished_carries_the_result_and_progress_arrives(qtbot) -> None:
    runner = JobRunner()
    seen: list[tuple[float, str, float]] = []
    runner.progress.connect(lambda f, m, eta: seen.append((f, m, eta)))

    def work(x, *, progress, cancel):
        for i in range(5):
            progress(i / 5, f"step {i}")
            time.sleep(0.06)
        progress(1.0, "done")
        return x * 2

    with qtbot.waitSignal(runner.finished, timeout=5000) as blocker:
        runner.start(work, 21)
    assert blocker.args == [42]
    assert seen and seen[-1][:2] == (1.0, "done")
    assert not runner.running


def test_cancel_maps_to_cancelled_not_finished(qtbot) -> None:
    runner = JobRunner()
    finished: list[object] = []
    runner.finished.connect(finished.append)
    started = threading.Event()

    def work(*, progress, cancel):
        started.set()
        while True:
            check_cancel(cancel)
            time.sleep(0.01)

    runner.start(work)
    assert started.wait(2)
    with qtbot.waitSignal(runner.cancelled, timeout=5000):
        runner.cancel()
    assert finished == [] and not runner.running


def test_failure_is_reported_with_its_reason(qtbot) -> None:
    runner = JobRunner()

    def work(*, progress, cancel):
        raise OSError("/videos/a.mp4: permission denied")

    with qtbot.waitSignal(runner.failed, timeout=5000) as blocker:
        runner.start(work)
    assert "permission denied" in str(blocker.args[0])


def test_one_job_per_owner_drops_the_superseded_one(qtbot) -> None:
    runner = JobRunner()
    results: list[object] = []
    runner.finished.connect(results.append)
    release = threading.Event()

    def slow(*, progress, cancel):
        release.wait(2)
        return "old"

    def fast(*, progress, cancel):
        return "new"

    runner.start(slow)
    with qtbot.waitSignal(runner.finished, timeout=5000):
        runner.start(fast)
    release.set()
    runner.wait(3000)
    qtbot.wait(50)
    assert results == ["new"]


def test_eta_and_its_text() -> None:
    now = [0.0]
    est = EtaEstimator(lambda: now[0])
    assert est.eta(0.5) == -1.0  # unknown for the first second
    now[0] = 10.0
    assert est.eta(0.25) == pytest.approx(30.0)
    assert format_eta(-1) == "" and format_eta(30) == "about 30 s left"
    assert format_eta(300) == "about 5 min left" and format_eta(7200) == "about 2.0 h left"
