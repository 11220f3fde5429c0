"""KB-guided pre-training (ANGEL_PT), positive-only: template sentences from the KB -> stage-1 training.

    accelerate launch --config_file recipes/accelerate/cpu.yaml recipes/pretrain.py --config recipes/configs/demo/pretrain.yaml

Builds (or resumes) the KB corpus in `corpus_dir`, saves its preference pairs in `pairs_dir` when
set, and trains through the stage-1 code; `output_dir` is a linker that `recipes/stage1.py
--model_name_or_path` fine-tunes and `recipes/stage2_dpo.py --stage1_model` (with
`--train_pairs <pairs_dir>`: negative-aware pre-training) starts from.
"""

from angel_trl.errors import exit_quietly_on_ctrl_c

if __name__ == "__main__":
    exit_quietly_on_ctrl_c()  # before the imports below: a Ctrl-C while torch and TRL load ends quietly too

import logging
import sys

from angel_trl.data.arguments import DataArguments
from angel_trl.evaluation import scores_table
from angel_trl.pretraining.corpus import PretrainCorpusConfig
from angel_trl.pretraining.training import train_pretrain
from angel_trl.training.finish import end_processes
from angel_trl.training.stage1 import ModelArguments
from angel_trl.trainers import Stage1Config
from angel_trl.progress import progress_on_terminal
from angel_trl.recipe_args import parse_recipe_args, run_recipe


# What the command line and --config YAML are parsed into, in order (tests parse every config with it).
ARGUMENTS = (DataArguments, ModelArguments, PretrainCorpusConfig, Stage1Config)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data_args, model_args, corpus_config, config = parse_recipe_args(ARGUMENTS, sys.argv[1:])
    progress_on_terminal(config)
    summary = train_pretrain(data_args, model_args, corpus_config, config)
    scores = {k: summary[k] for k in ("dev", "test") if k in summary}
    print(f"KB corpus: {summary['pretrain_corpus']['positive_rows']} rows, {summary['pretrain_corpus']['pairs']} pairs")
    if scores:
        print(scores_table(scores, f"Zero-shot after KB pre-training ({config.output_dir})"))
    end_processes()


if __name__ == "__main__":
    run_recipe(main)
