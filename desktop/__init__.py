"""Scenefind's desktop app: a thin PySide6 layer (views, a job runner, a player) over ``engine``."""
