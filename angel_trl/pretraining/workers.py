"""Shards of the KB pre-training corpus generated in parallel, by forked worker processes.

Shards are independent, so ``num_proc`` workers can make them at the same time; they are forked
from the process holding the :class:`~angel_trl.pretraining.corpus.PretrainRowGenerator`, so they
share its TF-IDF index (copy-on-write) instead of each fitting its own. The caller receives each
result as it finishes and alone decides what to do with it (e.g. record it in a manifest).
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import TypeVar

from tqdm.auto import tqdm

from angel_trl.pretraining.corpus import PretrainRowGenerator

logger = logging.getLogger(__name__)
T = TypeVar("T")
# What is run for each shard: ``task(generator, index, progress)``; ``progress`` is None in a worker.
ShardTask = Callable[[PretrainRowGenerator, int, tqdm | None], T]


def map_shards(generator: PretrainRowGenerator, task: ShardTask, indices: list[int], num_proc: int, progress: tqdm) -> Iterator[tuple[int, T]]:
    """``(index, task(generator, index, ...))`` for each shard, as they finish (in any order when
    ``num_proc`` > 1). The progress bar moves per similarity chunk in this process, per shard in workers."""
    num_proc = min(num_proc, len(indices))
    if num_proc > 1 and "fork" not in multiprocessing.get_all_start_methods():
        logger.warning("num_proc=%d needs the 'fork' start method, not available here: building the corpus in one process", num_proc)
        num_proc = 1
    if num_proc <= 1:
        for index in indices:
            yield index, task(generator, index, progress)
        return
    # Built here, before forking: the workers share the TF-IDF index (copy-on-write) instead of
    # each fitting its own, and the generator reaches them by fork, never pickled.
    _ = generator.matcher._names_by_ngram
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(num_proc, mp_context=context, initializer=_set_worker_generator, initargs=(generator,)) as pool:
        pending = {pool.submit(_run_in_worker, task, index): index for index in indices}
        try:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(finished, key=pending.get):
                    index = pending.pop(future)
                    result = future.result()  # a worker's exception is raised here
                    progress.update(generator.num_sources([index]))
                    yield index, result
        finally:
            # On an error (or the caller stopping early), shards not started yet are dropped,
            # and the pool's exit waits only for the running ones.
            for future in pending:
                future.cancel()


# Set in each worker process by the pool's initializer (inherited through fork).
_worker_generator: PretrainRowGenerator | None = None


def _set_worker_generator(generator: PretrainRowGenerator) -> None:
    global _worker_generator
    _worker_generator = generator


# ``task`` reaches a worker by name (what ``submit`` sends is pickled): it must be a module-level
# function (or a ``functools.partial`` of one) or a method such as ``PretrainRowGenerator.shard``.
def _run_in_worker(task: ShardTask, index: int) -> T:
    return task(_worker_generator, index, None)
