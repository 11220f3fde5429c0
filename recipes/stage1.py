"""Stage 1 (positive-only) training of a generative entity linker.

    accelerate launch --config_file recipes/accelerate/cpu.yaml recipes/stage1.py --config recipes/configs/demo/stage1.yaml
"""

from angel_trl.errors import exit_quietly_on_ctrl_c

if __name__ == "__main__":
    exit_quietly_on_ctrl_c()  # before the imports below: a Ctrl-C while torch and TRL load ends quietly too

import logging
import sys

from accelerate import PartialState

from angel_trl.data.arguments import DataArguments
from angel_trl.evaluation import scores_table
from angel_trl.hub import data_files, publish_linker, take_over_push
from angel_trl.training.finish import end_processes
from angel_trl.training.stage1 import ModelArguments, train_stage1
from angel_trl.trainers import Stage1Config
from angel_trl.progress import progress_on_terminal
from angel_trl.recipe_args import parse_recipe_args, run_recipe


# What the command line and --config YAML are parsed into, in order (tests parse every config with it).
ARGUMENTS = (DataArguments, ModelArguments, Stage1Config)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data_args, model_args, config = parse_recipe_args(ARGUMENTS, sys.argv[1:])
    progress_on_terminal(config)
    hub = take_over_push(config)  # --push_to_hub: the scored linker is pushed once, below, not by the Trainer
    summary = train_stage1(data_args, model_args, config)
    if PartialState().is_main_process:
        publish_linker(config.output_dir, hub, base_model=model_args.model_name_or_path, data_files=data_files(data_args))
    print(scores_table({k: summary[k] for k in ("dev", "test") if k in summary}, f"Stage 1 ({config.output_dir})"))
    end_processes()


if __name__ == "__main__":
    run_recipe(main)
