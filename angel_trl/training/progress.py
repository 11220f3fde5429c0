"""Progress bars on a terminal only: a log file keeps one line per logging step.

A tqdm bar redrawn into a file leaves a line for every update (a stage-1 log on NCBI: ~1,000 bar
lines around ~40 lines of losses and scores). Redirected, the Trainer prints its log dict once per
``logging_steps`` instead, and the other bars (weights loading, datasets, linking) stay off.
"""

from __future__ import annotations

import sys


def progress_on_terminal(config=None) -> bool:
    """Whether stderr is a terminal; if not, turn the progress bars off (``config.disable_tqdm``
    for a ``TrainingArguments``, and those of transformers and datasets)."""
    if sys.stderr.isatty():
        return True
    import datasets
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    if config is not None:
        config.disable_tqdm = True
    return False
