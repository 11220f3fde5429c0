"""The ``angel-trl`` command line: ``app`` (the parser and ``main``), one module per command (``link``,
``evaluate``, ``mine``, ``build_trie``, ``kb_stats``), and what they share (``common``: errors, output,
loading; ``options``: option groups)."""

from angel_trl.cli.app import main

__all__ = ["main"]
