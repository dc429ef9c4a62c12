"""Argument parsers for testing one CLI extension without the whole ``scenefind`` parser."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def train_cli() -> tuple[argparse.ArgumentParser, dict[str, Callable[[Any], int]]]:
    """The ``train`` sub-command under a parser with the global flags it reads: (parser, handlers)."""
    from engine.cli import train as cli_train

    parser = argparse.ArgumentParser()
    parser.add_argument("--model")
    parser.add_argument("--no-progress", action="store_true")
    return parser, cli_train.register(parser.add_subparsers(dest="command"))
