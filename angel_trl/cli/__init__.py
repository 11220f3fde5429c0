"""The ``angel-trl`` command line."""

from angel_trl.cli.main import main

__all__ = ["main"]
