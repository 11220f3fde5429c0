"""Mine preference pairs with a stage-1 linker (ANGEL stage-2 data).

    accelerate launch --config_file recipes/accelerate/cpu.yaml recipes/mine.py --config recipes/configs/demo/mine.yaml
"""

from angel_trl.errors import exit_quietly_on_ctrl_c

if __name__ == "__main__":
    exit_quietly_on_ctrl_c()  # before the imports below: a Ctrl-C while torch and TRL load ends quietly too

import json
import logging
import sys
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field

import torch
from accelerate import PartialState

from angel_trl.data.arguments import DataArguments
from angel_trl.hub import CARD_FILE, dataset_card, push_pairs
from angel_trl.data.files import exclusive_output_dir
from angel_trl.errors import FieldError, OutputDirBusyError
from angel_trl.linking.linker import EntityLinker
from angel_trl.mining import MiningConfig, mine_pairs, save_mined_pairs
from angel_trl.training.finish import end_processes
from angel_trl.training.progress import progress_on_terminal
from angel_trl.recipe_args import parse_recipe_args, run_recipe


@dataclass
class MineArguments:
    # Linker and output
    model_dir: str = field(metadata={"help": "Stage-1 output directory (or Hub id) whose predictions are mined."})
    output_dir: str = field(metadata={"help": "Pairs go to <output_dir>/<split> (save_to_disk) with <output_dir>/mining_summary.json."})
    splits: list[str] = field(default_factory=lambda: ["train", "dev"], metadata={"help": "Corpus splits to mine (train; dev for eval loss)."})
    link_batch_size: int = field(default=32, metadata={"help": "Mentions per constrained-decoding batch."})
    # Hub
    push_to_hub: bool = field(default=False, metadata={"help": "Also push the pairs (one split per mined split) and their card to the Hub."})
    hub_dataset_id: str | None = field(default=None, metadata={"help": "Hub dataset id for push_to_hub."})
    hub_private_repo: bool | None = field(default=None, metadata={"help": "Create the Hub dataset private (the Hub's default when unset)."})

    def __post_init__(self) -> None:
        if self.push_to_hub and not self.hub_dataset_id:
            raise FieldError("push_to_hub", "needs hub_dataset_id")  # at parse time, not after mining


# What the command line and --config YAML are parsed into, in order (tests parse every config with it).
ARGUMENTS = (MineArguments, MiningConfig, DataArguments)


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    args, mining, data_args = parse_recipe_args(ARGUMENTS, sys.argv[1:])
    on_terminal = progress_on_terminal()
    # cpu=True on a CPU-only machine: otherwise each launched process sets up alone (no gloo group).
    state = PartialState(cpu=not torch.cuda.is_available())
    if state.is_main_process:
        print(f"mining on {state.num_processes} process(es)")
    try:
        # The main process alone writes the output, so it alone holds the lock, from before any work.
        lock = exclusive_output_dir(args.output_dir) if state.is_main_process else nullcontext()
        with lock:
            _mine(args, mining, data_args, state, on_terminal)
    except OutputDirBusyError as e:
        sys.exit(f"recipes/mine.py: error: {e}")
    end_processes()


def _mine(args: MineArguments, mining: MiningConfig, data_args: DataArguments, state: PartialState, on_terminal: bool) -> None:
    linker = EntityLinker.from_pretrained(args.model_dir, device=str(state.device), batch_size=args.link_batch_size)
    kb = linker.kb or data_args.load_kb()
    data_args = data_args.following_linker(linker.config.expand_abbreviations)
    summaries, pairs_by_split = {}, {}
    for split in args.splits:
        corpus = data_args.load_split(split)
        if corpus is None:
            raise ValueError(f"split {split!r} has no file in the data arguments")
        pairs_by_split[split], summaries[split] = mine_pairs(linker, corpus, kb, mining, show_progress=state.is_main_process and on_terminal)
    if state.is_main_process:
        card = dataset_card(summaries, pairs_by_split, args.hub_dataset_id, args.model_dir, asdict(mining))
        save_mined_pairs(args.output_dir, pairs_by_split, summaries, files={CARD_FILE: card})
        if args.push_to_hub:
            push_pairs(pairs_by_split, args.hub_dataset_id, summaries, private=args.hub_private_repo, model=args.model_dir, mining=asdict(mining))
        print(json.dumps(summaries, indent=2))


if __name__ == "__main__":
    run_recipe(main)
