"""angel-trl: generative biomedical entity linking trained with negative samples (ANGEL), on TRL.

The package follows the pipeline: ``data`` (KB, corpus) -> ``text`` (model inputs and targets) ->
``modeling`` (building and loading models) -> ``linking`` (trie-constrained beam search) ->
``evaluation`` -> ``hybrid`` (retrieved candidates, exact scores, a ranker) -> ``mining`` (preference
pairs) -> ``trainers`` (TRL-style configs and trainers) -> ``training`` (stage 1, stage 2 end to end)
-> ``pretraining``; ``baselines``, ``hub`` and ``cli`` sit on top. A module imports only from its own
layer and those before it (``tests/test_layers.py``).
"""

__version__ = "0.1.0"

# `from angel_trl import EntityLinker` without importing torch for `import angel_trl` (the CLI's --help).
_LAZY = {"EntityLinker": "angel_trl.linking.linker", "LinkerConfig": "angel_trl.linking.linker"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'angel_trl' has no attribute {name!r}")
