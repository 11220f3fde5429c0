"""Mine preference pairs with a stage-1 linker (ANGEL stage-2 data).

    accelerate launch --config_file recipes/accelerate/cpu.yaml recipes/mine.py --config recipes/configs/demo/mine.yaml
"""

from angel_trl.errors import exit_quietly_on_ctrl_c

if __name__ == "__main__":
    exit_quietly_on_ctrl_c()  # before the imports below: a Ctrl-C while torch and TRL load ends quietly too

import json
import logging
import sys
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace

import torch
from accelerate import PartialState

from angel_trl.data.arguments import DataArguments
from angel_trl.hub import CARD_FILE, dataset_card, push_pairs
from angel_trl.data.files import exclusive_output_dir
from angel_trl.errors import FieldError, OutputDirBusyError, check_at_least, check_choice
from angel_trl.linking.linker import EntityLinker
from angel_trl.mining import MiningConfig, also_rule_dirs, mine_pairs_by_rule, save_mined_pairs, training_corpus_to_mine
from angel_trl.training.finish import end_processes
from angel_trl.progress import progress_on_terminal
from angel_trl.recipe_args import parse_recipe_args, run_recipe


@dataclass
class MineArguments:
    # Linker and output
    model_dir: str = field(metadata={"help": "Stage-1 output directory (or Hub id) whose predictions are mined."})
    output_dir: str = field(metadata={"help": "Pairs go to <output_dir>/<split> (save_to_disk) with <output_dir>/mining_summary.json."})
    splits: list[str] = field(default_factory=lambda: ["train", "dev"], metadata={"help": "Corpus splits to mine (train; dev for eval loss)."})
    link_batch_size: int = field(default=32, metadata={"help": "Mentions per constrained-decoding batch."})
    also_rules: list[str] = field(default_factory=list, metadata={"help": "More mining rules fed by the same decoding (decoding is nearly all of mining's time), each into <output_dir>-<rule>: e.g. [official] beside rule paper gives what a second run with --rule official --output_dir <output_dir>-official would."})
    # Hub
    push_to_hub: bool = field(default=False, metadata={"help": "Also push the pairs (one split per mined split) and their card to the Hub."})
    hub_dataset_id: str | None = field(default=None, metadata={"help": "Hub dataset id for push_to_hub."})
    hub_private_repo: bool | None = field(default=None, metadata={"help": "Create the Hub dataset private (the Hub's default when unset)."})

    def __post_init__(self) -> None:
        if not self.splits:
            raise FieldError("splits", "names no split to mine: give at least one of train, dev, test")
        for split in self.splits:
            check_choice("splits", split, ("train", "dev", "test"))
        check_at_least("link_batch_size", self.link_batch_size, 1)
        if self.push_to_hub and not self.hub_dataset_id:
            raise FieldError("push_to_hub", "needs hub_dataset_id")  # at parse time, not after mining
        if self.hub_dataset_id and not self.push_to_hub:
            raise FieldError("hub_dataset_id", "is set but push_to_hub is not: nothing would be pushed (set push_to_hub: true)")
        if self.push_to_hub and self.also_rules:
            raise FieldError("also_rules", "push_to_hub pushes the pairs of one rule; push each rule's pairs from its own run")


# What the command line and --config YAML are parsed into, in order (tests parse every config with it).
ARGUMENTS = (MineArguments, MiningConfig, DataArguments)


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    args, mining, data_args = parse_recipe_args(ARGUMENTS, sys.argv[1:])
    progress_on_terminal()  # library bars off in a log file; mining reports in timed lines there
    # cpu=True on a CPU-only machine: otherwise each launched process sets up alone (no gloo group).
    state = PartialState(cpu=not torch.cuda.is_available())
    if state.is_main_process:
        print(f"mining on {state.num_processes} process(es)")
    outputs = {mining.rule: args.output_dir, **also_rule_dirs(args.output_dir, mining.rule, args.also_rules)}
    try:  # each further rule with the same settings: one that cannot go with them fails before any work
        configs = {rule: replace(mining, rule=rule) for rule in outputs}
    except ValueError as e:
        raise FieldError("also_rules", str(e)) from None
    try:
        # The main process alone writes the outputs, so it alone holds their locks, from before any work.
        with ExitStack() as locks:
            if state.is_main_process:
                for directory in outputs.values():
                    locks.enter_context(exclusive_output_dir(directory))
            _mine(args, configs, outputs, data_args, state)
    except OutputDirBusyError as e:
        sys.exit(f"recipes/mine.py: error: {e}")
    end_processes()


def _mine(args: MineArguments, configs: dict[str, MiningConfig], outputs: dict, data_args: DataArguments, state: PartialState) -> None:
    """Mine every split with each config of ``configs`` into its rule's directory of ``outputs``
    (the first: the run's own rule and output_dir)."""
    linker = EntityLinker.from_pretrained(args.model_dir, device=str(state.device), batch_size=args.link_batch_size)
    kb = data_args.load_kb()
    linker = linker.over_kb(kb)  # decode over the KB the gold ids come from (kb_path), as evaluate does
    data_args = data_args.following_linker(linker.config.expand_abbreviations)
    summaries = {rule: {} for rule in outputs}
    pairs_by_split = {rule: {} for rule in outputs}
    for split in args.splits:
        corpus = data_args.load_split(split)
        if corpus is None:
            raise ValueError(f"split {split!r} has no file in the data arguments")
        if split == "train":
            corpus = training_corpus_to_mine(corpus, kb, next(iter(configs.values())))
        mined = mine_pairs_by_rule(linker, corpus, kb, list(configs.values()), show_progress=state.is_main_process)
        for rule, (pairs, summary) in zip(outputs, mined):
            pairs_by_split[rule][split], summaries[rule][split] = pairs, summary
    if state.is_main_process:
        for rule, config in configs.items():
            card = dataset_card(summaries[rule], pairs_by_split[rule], args.hub_dataset_id, args.model_dir, asdict(config))
            save_mined_pairs(outputs[rule], pairs_by_split[rule], summaries[rule], files={CARD_FILE: card})
        rule, config = next(iter(configs.items()))
        if args.push_to_hub:  # one rule only (MineArguments refuses also_rules with it)
            push_pairs(pairs_by_split[rule], args.hub_dataset_id, summaries[rule], private=args.hub_private_repo, model=args.model_dir, mining=asdict(config))
        print(json.dumps(summaries[rule] if len(configs) == 1 else {str(outputs[r]): summaries[r] for r in outputs}, indent=2))


if __name__ == "__main__":
    run_recipe(main)
