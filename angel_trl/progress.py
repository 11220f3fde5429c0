"""Progress of long work: a tqdm bar on a terminal, plain timed lines in a log file.

A tqdm bar redrawn into a file leaves a carriage-returned update for every refresh (a stage-1 log on
NCBI: ~1,000 bar lines around ~40 lines of losses and scores), while no bar at all leaves a job under
nohup or Slurm silent for up to an hour of linking, mining or hybrid scoring. So off a terminal each
of our loops writes one newline-terminated status line every ``LOG_LINE_INTERVAL_S`` seconds (and
one at its start and end), the Trainer prints its log dict once per ``logging_steps``, and the bars
of transformers and datasets (weights loading, ``map``, ``save_to_disk``) stay off.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, TextIO

from tqdm.auto import tqdm

LOG_LINE_INTERVAL_S = 60.0  # one line a minute: an hour-long loop leaves ~60 lines in its log


def on_terminal() -> bool:
    """Whether stderr, where progress goes, is a terminal."""
    return sys.stderr.isatty()


class _Lines:
    """A stream for tqdm that keeps each status as its own line: tqdm's carriage returns and
    padding are dropped, and the empty writes that clear a bar are ignored."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").rstrip()
        if line:
            self.stream.write(line + "\n")
            self.stream.flush()

    def flush(self) -> None:
        self.stream.flush()


class LogLineProgress(tqdm):
    """tqdm for a log file: a status line at the start, then at most one every ``mininterval``
    seconds (default ``LOG_LINE_INTERVAL_S``), and a last one when it closes."""

    def __init__(self, iterable: Iterable | None = None, *args: Any, file: TextIO | None = None, **kwargs: Any):
        kwargs.setdefault("mininterval", LOG_LINE_INTERVAL_S)
        kwargs.setdefault("ascii", True)  # a log file may not be read as UTF-8
        super().__init__(iterable, *args, file=_Lines(file or sys.stderr), **kwargs)

    def close(self) -> None:
        if not self.disable and self.n == self.last_print_n:
            self.leave = False  # the last line already shows where it ended: no repeat of it
        super().close()


def progress_bar(iterable: Iterable | None = None, *, show: bool = True, **kwargs: Any) -> tqdm:
    """``tqdm(iterable, **kwargs)``, disabled unless ``show``; off a terminal a ``LogLineProgress``."""
    if not show:
        return tqdm(iterable, disable=True, **kwargs)
    return (tqdm if on_terminal() else LogLineProgress)(iterable, **kwargs)


def reports_progress(args: Any) -> bool:
    """Whether work run under ``args`` (a ``TrainingArguments``) reports its progress. Off a terminal
    ``progress_on_terminal`` has set ``disable_tqdm`` for the Trainer's own bar; our loops then
    still write their log lines."""
    return not args.disable_tqdm or not on_terminal()


def progress_on_terminal(config: Any = None) -> bool:
    """Whether stderr is a terminal; if not, turn off the bars that would redraw into a log file
    (``config.disable_tqdm`` for a ``TrainingArguments``, and those of transformers and datasets).
    Our own loops report either way (``progress_bar``)."""
    if on_terminal():
        return True
    import datasets
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    if config is not None:
        config.disable_tqdm = True
    return False
