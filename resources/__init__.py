"""Data files shipped with Scenefind: model configs, icons, style sheets, prompt templates."""
