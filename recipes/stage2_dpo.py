"""Stage 2 (negative-aware): DPO from a stage-1 linker on mined preference pairs.

    accelerate launch --config_file recipes/accelerate/cpu.yaml recipes/stage2_dpo.py --config recipes/configs/demo_dpo.yaml
"""

import logging

from accelerate import PartialState
from trl import TrlParser

from angel_trl.data import DataArguments
from angel_trl.evaluation import scores_table
from angel_trl.hub import data_files, publish_linker, take_over_push
from angel_trl.stage2 import Stage2Arguments, train_stage2
from angel_trl.trainers import Seq2SeqDPOConfig


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stage2_args, data_args, config = TrlParser((Stage2Arguments, DataArguments, Seq2SeqDPOConfig)).parse_args_and_config()
    hub = take_over_push(config)  # --push_to_hub: the scored linker is pushed once, below, not by the Trainer
    summary = train_stage2(data_args, stage2_args, config)
    if PartialState().is_main_process:
        pairs = {"train pairs": stage2_args.train_pairs, "dev pairs": stage2_args.dev_pairs}
        publish_linker(config.output_dir, hub, base_model=stage2_args.stage1_model, data_files=data_files(data_args, **pairs), datasets=list(pairs.values()))
    print(scores_table({k: summary[k] for k in ("dev", "test") if k in summary}, f"Stage 2 ({config.output_dir})"))


if __name__ == "__main__":
    main()
