"""Can the app open a window here? Said in words before Qt is asked, because Qt's own answer is an abort.

Without a display, or when the X11 platform plugin cannot load one of its libraries, Qt prints "From 6.5.0,
xcb-cursor0 or libxcb-cursor0 is needed..." (whatever the missing library is) and aborts the process. So
``display_problem`` looks first: no ``DISPLAY``/``WAYLAND_DISPLAY`` on Linux means no display (the user is
told how to run headless), and for X11 it loads the plugin the way Qt would, so a missing system library is
named together with the package that provides it. ``QT_QPA_PLATFORM`` set by the user is respected as is.
"""

from __future__ import annotations

import ctypes
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

HEADLESS_HELP = (
    "To look at the app without a screen, save it as a picture: scenefind gui --screenshot app.png "
    "(add --tab library|search|training, --query TEXT, --theme dark); or run it in a virtual display: "
    "xvfb-run -a scenefind gui"
)
_SONAME = re.compile(r"(lib[\w.+-]+?)\.so\.(\d+)")


def xcb_plugin() -> Path | None:
    """PySide6's X11 platform plugin, if this PySide6 ships one."""
    import PySide6

    plugin = Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return plugin if plugin.is_file() else None


def load_library(path: Path) -> str | None:
    """Load a shared library as Qt would; the loader's error (naming a missing dependency), or None."""
    try:
        ctypes.CDLL(str(path))
    except OSError as exc:
        return str(exc)
    return None


def package_for(soname_error: str) -> str:
    """The Debian/Ubuntu package of the library a loader error names ("libxcb-icccm.so.4: cannot open..."
    -> "libxcb-icccm4"), or "" when the error names none."""
    found = _SONAME.search(soname_error)
    if found is None:
        return ""
    name, version = found.group(1), found.group(2)
    return f"{name}-{version}" if name[-1].isdigit() else f"{name}{version}"


def display_problem(
    env: Mapping[str, str],
    platform: str = sys.platform,
    *,
    plugin: Callable[[], Path | None] = xcb_plugin,
    load: Callable[[Path], str | None] = load_library,
) -> str | None:
    """Why no window can open here, in words for the user, or None when one can (or when it cannot be told
    beforehand: macOS, Windows, an explicit ``QT_QPA_PLATFORM``)."""
    if env.get("QT_QPA_PLATFORM") or not platform.startswith("linux"):
        return None
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        return f"no display was found (neither DISPLAY nor WAYLAND_DISPLAY is set). {HEADLESS_HELP}"
    if not env.get("DISPLAY"):
        return None  # Wayland alone: Qt picks its Wayland plugin
    path = plugin()
    error = load(path) if path is not None else None
    if error is None:
        return None
    package = package_for(error)
    missing = f"; install it with: sudo apt-get install {package}" if package else ""
    return (
        f"the display {env['DISPLAY']} cannot be used: Qt's X11 support needs a system library that is "
        f"missing ({error.split(':')[0] if package else error}){missing}. {HEADLESS_HELP}"
    )
