"""Stage 2 (negative-aware): DPO from a stage-1 linker on mined preference pairs.

    accelerate launch --config_file recipes/accelerate/cpu.yaml recipes/stage2_dpo.py --config recipes/configs/demo/stage2_dpo.yaml
    # iterative mode: 2 more rounds, each on pairs mined with the previous round's model
    accelerate launch --config_file recipes/accelerate/cpu.yaml recipes/stage2_dpo.py --config recipes/configs/demo/stage2_dpo.yaml --rounds 3 --rule paper --top_k 5
"""

from angel_trl.errors import exit_quietly_on_ctrl_c

if __name__ == "__main__":
    exit_quietly_on_ctrl_c()  # before the imports below: a Ctrl-C while torch and TRL load ends quietly too

import logging
import sys
from dataclasses import dataclass, field

from accelerate import PartialState

from angel_trl.data.arguments import DataArguments
from angel_trl.errors import check_at_least
from angel_trl.hub import data_files, publish_linker, take_over_push
from angel_trl.training.iterative import train_stage2_rounds
from angel_trl.mining import MiningConfig
from angel_trl.training.finish import end_processes
from angel_trl.training.stage2 import Stage2Arguments
from angel_trl.trainers import Seq2SeqDPOConfig
from angel_trl.progress import progress_on_terminal
from angel_trl.recipe_args import parse_recipe_args, run_recipe


@dataclass
class RoundsArguments:
    rounds: int = field(
        default=1,
        metadata={
            "help": "Stage-2 rounds. 1: plain stage 2 in output_dir. More (iterative mode): each later round mines train pairs with the previous "
            "round's model (mining fields: rule, top_k, num_beams, gold_fallback) and trains from it, as the reference, in output_dir/round-<r>; "
            "output_dir/rounds_summary.json names the best round by dev acc@1."
        },
    )

    def __post_init__(self) -> None:
        check_at_least("rounds", self.rounds, 1)


# What the command line and --config YAML are parsed into, in order (tests parse every config with it).
ARGUMENTS = (Stage2Arguments, DataArguments, Seq2SeqDPOConfig, RoundsArguments, MiningConfig)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stage2_args, data_args, config, rounds_args, mining = parse_recipe_args(ARGUMENTS, sys.argv[1:])
    progress_on_terminal(config)
    hub = take_over_push(config)  # --push_to_hub: the scored linker is pushed once, below, not by the Trainer
    run = train_stage2_rounds(data_args, stage2_args, config, mining, rounds_args.rounds)
    if PartialState().is_main_process:
        # Only the linker that is kept (the best round's) gets a card, and is pushed.
        pairs = {"train pairs": run.train_pairs, "dev pairs": stage2_args.dev_pairs}
        publish_linker(run.linker_dir, hub, base_model=run.reference, data_files=data_files(data_args, **pairs), datasets=list(pairs.values()))
    print(run.table)
    end_processes()


if __name__ == "__main__":
    run_recipe(main)
