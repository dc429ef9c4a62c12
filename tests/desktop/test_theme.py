"""Both themes, measured on rendered pixels: no bright line across the dark window, a disabled primary
button that looks disabled, check boxes whose box can be seen."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication, QCheckBox, QPushButton, QVBoxLayout, QWidget

from desktop import theme
from desktop.main_window import MainWindow
from desktop.screenshot import _pixels, settle

pytestmark = pytest.mark.gui


@pytest.fixture
def dark():
    app = QApplication.instance()
    theme.apply_theme(app, "dark")
    yield
    theme.apply_theme(app, "light")


def _rgb(image) -> np.ndarray:
    p = _pixels(image)
    return np.stack([(p >> 16) & 255, (p >> 8) & 255, p & 255], axis=-1).astype(float)


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.2126, 0.7152, 0.0722])


def test_the_dark_window_has_no_bright_line_under_the_menu_bar(qtbot, fake_engine, dark) -> None:
    window = MainWindow(fake_engine)
    qtbot.addWidget(window)
    window.resize(1100, 700)
    window.show()
    settle(window, lambda: False, 5)
    lum = _luminance(_rgb(window.grab().toImage()))
    top = lum[: window.tabs.geometry().top() + 60, 150:1000]  # menu bar, tab bar and the line between
    assert top.mean(axis=1).max() < 120, "a row across the top of the dark window is bright"


def _relative_luminance(rgb: np.ndarray) -> np.ndarray:
    c = rgb / 255.0
    linear = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return linear @ np.array([0.2126, 0.7152, 0.0722])


def _contrast(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """The button's fill (its commonest colour) and the WCAG contrast ratio of its label against it (the
    label's colour: the pixel whose luminance is furthest from the fill's)."""
    flat = rgb.reshape(-1, 3)
    colours, counts = np.unique(flat, axis=0, return_counts=True)
    fill = colours[counts.argmax()]
    lum = _relative_luminance(flat)
    fill_lum = float(_relative_luminance(fill))
    text_lum = float(lum[np.abs(lum - fill_lum).argmax()])
    high, low = max(fill_lum, text_lum), min(fill_lum, text_lum)
    return fill, (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("name", ["light", "dark"])
def test_a_disabled_primary_button_looks_disabled(qtbot, name) -> None:
    theme.apply_theme(QApplication.instance(), name)
    try:
        holder = QWidget()
        qtbot.addWidget(holder)
        layout = QVBoxLayout(holder)
        on, off = QPushButton("Start training"), QPushButton("Start training")
        for button in (on, off):
            button.setObjectName("primary")
            layout.addWidget(button)
        off.setEnabled(False)
        holder.show()
        settle(holder, lambda: False, 2)
        on_bg, on_text = _contrast(_rgb(on.grab().toImage()))
        off_bg, off_text = _contrast(_rgb(off.grab().toImage()))
        window = _rgb(holder.grab().toImage())[1, 1]
        assert np.abs(on_bg - off_bg).sum() > 90, "the disabled button's fill is too close to the enabled one"
        assert off_text < 0.75 * on_text, "the disabled button's label stands out as much as an enabled one"
        assert np.abs(off_bg - window).sum() < np.abs(on_bg - window).sum()  # it recedes into the window
    finally:
        theme.apply_theme(QApplication.instance(), "light")


@pytest.mark.parametrize("name", ["light", "dark"])
def test_a_check_box_can_be_seen(qtbot, name) -> None:
    theme.apply_theme(QApplication.instance(), name)
    try:
        box = QCheckBox("Watch folders for changes")
        qtbot.addWidget(box)
        box.show()
        settle(box, lambda: False, 2)
        rgb = _rgb(box.grab().toImage())
        indicator = rgb[:, : box.height()]  # the box sits at the left, about as wide as the widget is high
        background = rgb[0, -1]
        edge = np.abs(indicator - background).sum(axis=-1).max()
        assert edge > 150, f"the unticked box is nearly invisible in the {name} theme"
    finally:
        theme.apply_theme(QApplication.instance(), "light")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["light", "dark"])
def test_the_results_scroll_bar_is_drawn_in_a_real_x_window(name: str, tmp_path) -> None:
    """Found by looking at an Xvfb screenshot: the results grid's transparent background made its scroll bar's
    page a black bar beside the cards (3,938 of 6,454 pixels in the light theme). Offscreen rendering hides it,
    so the screen's own pixels are read in an X window, and no pixel of the bar may be black."""
    import json
    import subprocess
    import sys

    from tests.desktop.xwindow import REPO, x_env, x_window_problem

    if (why := x_window_problem()) is not None:
        pytest.skip(f"no X window can open here: {why}")
    env = x_env(tmp_path, tmp_path / "home")
    out = tmp_path / "scroll.json"
    command = ["xvfb-run", "-a", sys.executable, "-m", "tests.desktop.scrollbar_probe", name, str(out)]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    figures = json.loads(out.read_text())
    assert figures["visible"] and figures["maximum"] > 0 and figures["pixels"] > 1000, figures  # more cards than fit
    assert figures["black"] == 0, figures


@pytest.mark.parametrize("name", ["light", "dark"])
def test_an_empty_charts_sentence_stays_inside_its_axes(qtbot, name: str) -> None:
    """Seen in a 1000×560 window: the Training tab's empty charts wrote "The loss appears as epochs finish"
    across the y tick labels and the grid lines. The sentence now fills the plot area, on the chart's own
    background, in both themes."""
    from desktop.views.plot import LivePlot

    app = QApplication.instance()
    theme.apply_theme(app, name)
    try:
        plot = LivePlot("Training loss", "loss", empty_text="The loss appears as epochs finish")
        qtbot.addWidget(plot)
        plot.resize(240, 180)
        plot.show()
        qtbot.waitExposed(plot)
        qtbot.wait(50)
        area = plot.mapFromScene(plot._chart.plotArea()).boundingRect()
        label = plot._empty.geometry()
        assert area.width() > 40 and area.contains(label), (area, label)  # right of the tick labels, above "epoch"
        image = _rgb(plot.grab().toImage())
        inside = image[label.top() + 2, label.left() + 2 : label.right() - 2]  # a row of the box above the words
        assert (inside == inside[0]).all()  # no grid line shows through the box
        assert tuple(inside[0]) == QColor(theme.colors().base).getRgb()[:3]
        plot.add_point("loss", 1.0, 0.5)
        assert plot._empty.isHidden()
    finally:
        theme.apply_theme(app, "light")
