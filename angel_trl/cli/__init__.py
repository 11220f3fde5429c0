"""The ``angel-trl`` command line: ``link``, ``evaluate``, ``mine``, ``build-trie`` and ``kb-stats`` (``angel_trl.cli.app``)."""

from angel_trl.cli.app import main

__all__ = ["main"]
