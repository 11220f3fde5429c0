"""The hybrid linker: fit its ranker on dev over a saved linker's beam and retrieved candidates.

    python recipes/fit_hybrid.py --config recipes/configs/demo/hybrid.yaml
"""

from angel_trl.errors import exit_quietly_on_ctrl_c

if __name__ == "__main__":
    exit_quietly_on_ctrl_c()  # before the imports below: a Ctrl-C while torch and TRL load ends quietly too

import json
import logging
import sys

from angel_trl.data.arguments import DataArguments
from angel_trl.evaluation import scores_table
from angel_trl.hybrid.fit import HybridArguments, fit_hybrid
from angel_trl.hybrid.linker import HybridConfig
from angel_trl.progress import progress_on_terminal
from angel_trl.recipe_args import parse_recipe_args, run_recipe

# What the command line and --config YAML are parsed into, in order (tests parse every config with it).
ARGUMENTS = (HybridArguments, HybridConfig, DataArguments)


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    args, config, data_args = parse_recipe_args(ARGUMENTS, sys.argv[1:])
    progress_on_terminal()  # library bars off in a log file; scoring reports in timed lines there
    summary = fit_hybrid(args, config, data_args, show_progress=True)
    print(json.dumps(summary["fit"], indent=2))
    print(scores_table({k: summary[k] for k in ("dev_beam_only", "dev", "test_beam_only", "test") if k in summary}, f"Hybrid linker over {args.model_dir}"))


if __name__ == "__main__":
    run_recipe(main)
