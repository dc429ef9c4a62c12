"""Player of the desktop app."""
