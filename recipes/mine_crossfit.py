"""Held-out mining: train stage 1 on k-1 folds, mine the held-out fold, for every fold.

    python recipes/mine_crossfit.py --config recipes/configs/ncbi/stage1_cpu.yaml --folds 5 --pairs_dir outputs/ncbi-pairs-crossfit \
        --output_dir outputs/ncbi-crossfit
    # one fold only (e.g. one per job, each with its own --pairs_dir); a run without --only_folds then
    # reuses the finished fold models and mines every fold into one --pairs_dir
    python recipes/mine_crossfit.py ... --folds 2 --only_folds 0
"""

from angel_trl.errors import exit_quietly_on_ctrl_c

if __name__ == "__main__":
    exit_quietly_on_ctrl_c()  # before the imports below: a Ctrl-C while torch and TRL load ends quietly too

import json
import logging
import sys
from dataclasses import dataclass, field

from angel_trl.training.crossfit import cross_fit_mine
from angel_trl.data.arguments import DataArguments
from angel_trl.errors import FieldError, check_at_least
from angel_trl.mining import MiningConfig, save_mined_pairs
from angel_trl.training.stage1 import ModelArguments
from angel_trl.trainers import Stage1Config
from angel_trl.progress import progress_on_terminal
from angel_trl.recipe_args import parse_recipe_args, run_recipe


@dataclass
class CrossFitArguments:
    folds: int = field(default=5, metadata={"help": "Number of folds of the training documents."})
    only_folds: list[int] | None = field(default=None, metadata={"help": "Run only these folds (all when unset): one fold per job, or fewer for a budget. A fold with a finished model in <output_dir>/fold-<k> is mined without retraining."})
    pairs_dir: str = field(default="outputs/pairs-crossfit", metadata={"help": "Where the pairs (save_to_disk) and mining_summary.json go."})

    def __post_init__(self) -> None:
        # At parse time: cross_fit_mine checks them only after loading the data.
        check_at_least("folds", self.folds, 2)
        if self.only_folds is not None and not (self.only_folds and all(0 <= k < self.folds for k in self.only_folds)):
            raise FieldError("only_folds", f"must name folds in 0..{self.folds - 1}, not {self.only_folds}")


# What the command line and --config YAML are parsed into, in order (tests parse every config with it).
ARGUMENTS = (CrossFitArguments, MiningConfig, DataArguments, ModelArguments, Stage1Config)


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    cf, mining, data_args, model_args, stage1 = parse_recipe_args(ARGUMENTS, sys.argv[1:])
    progress_on_terminal(stage1)
    pairs, summary = cross_fit_mine(data_args, model_args, stage1, mining, cf.folds, cf.only_folds)
    save_mined_pairs(cf.pairs_dir, {"train": pairs}, {"train": summary})  # pairs and summary as one unit
    print(json.dumps({k: v for k, v in summary.items() if k != "per_fold"}, indent=2))
    if len(summary["folds_mined"]) < cf.folds:
        # Another fold job writing the same pairs_dir would replace these pairs with its own.
        logging.getLogger(__name__).warning(
            "%s holds the pairs of fold(s) %s of %d only; run again without only_folds to mine every fold into it (finished fold models are reused)",
            cf.pairs_dir, summary["folds_mined"], cf.folds,
        )


if __name__ == "__main__":
    run_recipe(main)
