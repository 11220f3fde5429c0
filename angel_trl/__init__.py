"""angel-trl: generative biomedical entity linking trained with negative samples (ANGEL), on TRL.

The package follows the pipeline: ``data`` (KB, corpus) -> ``text`` (model inputs and targets) ->
``linking`` (trie-constrained beam search) -> ``evaluation`` -> ``mining`` (preference pairs) ->
``trainers`` (TRL-style configs and trainers) -> ``training`` (stage 1, stage 2 end to end) ->
``pretraining`` -> ``hub``; ``cli`` and ``baselines`` sit on top.
"""

__version__ = "0.1.0"

# `from angel_trl import EntityLinker` without importing torch for `import angel_trl` (the CLI's --help).
_LAZY = {"EntityLinker": "angel_trl.linking.linker", "LinkerConfig": "angel_trl.linking.linker"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'angel_trl' has no attribute {name!r}")
