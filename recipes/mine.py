"""Mine preference pairs with a stage-1 linker (ANGEL stage-2 data).

    accelerate launch --config_file recipes/accelerate/cpu.yaml recipes/mine.py --config recipes/configs/demo_mine.yaml
"""

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from accelerate import PartialState
from trl import TrlParser

from angel_trl.data import DataArguments
from angel_trl.io_utils import write_json
from angel_trl.linking import EntityLinker
from angel_trl.mining import MiningConfig, mine_pairs


@dataclass
class MineArguments:
    # Linker and output
    model_dir: str = field(metadata={"help": "Stage-1 output directory (or Hub id) whose predictions are mined."})
    output_dir: str = field(metadata={"help": "Pairs go to <output_dir>/<split> (save_to_disk) with <output_dir>/mining_summary.json."})
    splits: list[str] = field(default_factory=lambda: ["train", "dev"], metadata={"help": "Corpus splits to mine (train; dev for eval loss)."})
    link_batch_size: int = field(default=32, metadata={"help": "Mentions per constrained-decoding batch."})
    # Hub
    push_to_hub: bool = field(default=False, metadata={"help": "Also push the pairs to the Hub."})
    hub_dataset_id: str | None = field(default=None, metadata={"help": "Hub dataset id for push_to_hub."})


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    args, mining, data_args = TrlParser((MineArguments, MiningConfig, DataArguments)).parse_args_and_config()
    state = PartialState()
    linker = EntityLinker.from_pretrained(args.model_dir, device=str(state.device), batch_size=args.link_batch_size)
    kb = linker.kb or data_args.load_kb()
    summaries = {}
    for split in args.splits:
        corpus = data_args.load_split(split)
        if corpus is None:
            raise ValueError(f"split {split!r} has no file in the data arguments")
        pairs, summaries[split] = mine_pairs(linker, corpus, kb, mining, show_progress=state.is_main_process)
        if state.is_main_process:
            pairs.save_to_disk(str(Path(args.output_dir) / split))
            if args.push_to_hub:
                pairs.push_to_hub(args.hub_dataset_id, split=split)
    if state.is_main_process:
        write_json(Path(args.output_dir) / "mining_summary.json", summaries)
        print(json.dumps(summaries, indent=2))


if __name__ == "__main__":
    main()
