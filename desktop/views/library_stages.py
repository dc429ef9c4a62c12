"""The Library's view of the stages after the pictures: how far speech and screen text have got, per library
and per folder, which of them failed on which file, and which stage the running index job is in.

Why apart from the library view: these are the engine's stage counts (``desktop.speech_text.StageStatus``)
put in words, plus one small widget; the view only places them. The counts are for the speech model and
OCR release in use now, like the picture counts are for the current search model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

from desktop import theme
from desktop.speech_text import StageStatus

PICTURES = "Pictures"
STEP_PREFIXES = (("Speech", "Speech"), ("Screen text", "Screen text"))  # message prefix -> step
DONE_WORDS = {"speech": "transcribed", "text": "read"}


def stages_summary(stages: Sequence[StageStatus]) -> str:
    """One line for the library: "Speech: 5 transcribed · 2 waiting · 1 without sound · 1 failed   Screen
    text: 7 read" (a stage that is off says so; zero counts are left out)."""
    parts = []
    for s in stages:
        if not s.enabled and not (s.done or s.no_audio):
            parts.append(f"{s.name}: off")
            continue
        counts = {"done": s.done, "pending": s.pending, "no_audio": s.no_audio, "failed": s.failed}
        said = " · ".join(_counts(s, counts, always_done=True))
        parts.append(f"{s.name}: {said}" + ("" if s.enabled else " (now off)"))
    return "      ".join(parts)


def folder_stage_text(stages: Sequence[StageStatus], folder: str) -> str:
    """How far speech and screen text have got in one folder, for its row: "Speech: 5 transcribed, 2 waiting,
    1 without sound · Screen text: 7 read" ("" when neither has anything there; zero counts are left out)."""
    parts = []
    for s in stages:
        said = ", ".join(_counts(s, s.folders.get(folder, {}), always_done=False))
        if said:
            parts.append(f"{s.name}: {said}")
    return " · ".join(parts)


def _counts(s: StageStatus, counts: Mapping[str, int], *, always_done: bool) -> list[str]:
    """A stage's counts in words: done, waiting (while the stage is on), without sound (speech), failed."""
    done, pending = counts.get("done", 0), counts.get("pending", 0)
    no_audio, failed = counts.get("no_audio", 0), counts.get("failed", 0)
    out = [f"{done} {DONE_WORDS.get(s.stage, 'done')}"] if done or always_done else []
    out += [f"{pending} waiting"] if pending and s.enabled else []
    out += [f"{no_audio} without sound"] if no_audio and s.stage == "speech" else []
    out += [f"{failed} failed"] if failed else []
    return out


def stage_failures(stages: Sequence[StageStatus]) -> list[tuple[str, str]]:
    """(path, reason) of each file a stage failed on, the reason saying which stage: shown under its folder."""
    return [(path, f"{s.name} failed: {why or 'unknown error'}") for s in stages for path, why in s.failed_files]


def step_of(message: str) -> str:
    """Which step a progress message of the index job belongs to (the picture stage's messages name no step)."""
    for prefix, step in STEP_PREFIXES:
        if message.startswith(prefix):
            return step
    return PICTURES


class StageSteps(QLabel):
    """ "Pictures ✓ → Speech → Screen text" over the index progress bar, the running step in the accent colour:
    indexing has up to three steps, and a bar that fills twice would otherwise look like it started over."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.steps: list[str] = [PICTURES]
        self.current = PICTURES
        self.hide()

    def set_steps(self, speech: bool, screen_text: bool) -> None:
        self.steps = [PICTURES] + ["Speech"] * speech + ["Screen text"] * screen_text
        self.current = PICTURES
        self.setVisible(len(self.steps) > 1)
        self._render()

    def set_current(self, message: str) -> None:
        step = step_of(message)
        if step in self.steps and step != self.current and self.steps.index(step) > self.steps.index(self.current):
            self.current = step
            self._render()

    def _render(self) -> None:
        c = theme.colors()
        at = self.steps.index(self.current)
        parts = []
        for n, step in enumerate(self.steps):
            if n < at:
                parts.append(f'<span style="color:{c.muted}">{step} ✓</span>')
            elif n == at:
                parts.append(f'<span style="color:{c.accent}; font-weight:600">{step}</span>')
            else:
                parts.append(f'<span style="color:{c.muted}">{step}</span>')
        self.setText(
            f'<span style="color:{c.muted}">Step {at + 1} of {len(self.steps)}:</span>&nbsp; ' + " → ".join(parts)
        )
