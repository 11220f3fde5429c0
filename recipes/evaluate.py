"""Link every mention of a corpus with a saved linker, write predictions JSONL and scores.

    python recipes/evaluate.py --model_dir outputs/demo-stage1 --kb_path data/demo/kb.jsonl \
        --test_file data/demo/test.jsonl --train_file data/demo/train.jsonl
"""

from angel_trl.errors import exit_quietly_on_ctrl_c

if __name__ == "__main__":
    exit_quietly_on_ctrl_c()  # before the imports below: a Ctrl-C while torch and TRL load ends quietly too

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from angel_trl.data.arguments import DataArguments
from angel_trl.errors import check_at_least
from angel_trl.evaluation import TrainingSeen, link_and_score
from angel_trl.data.files import write_json, write_jsonl
from angel_trl.linking.linker import EntityLinker
from angel_trl.progress import progress_on_terminal
from angel_trl.recipe_args import parse_recipe_args, run_recipe


@dataclass
class EvaluateArguments:
    # Linker
    model_dir: str = field(metadata={"help": "Directory written by a stage recipe (model, tokenizer, trie, names)."})
    output_dir: str | None = field(default=None, metadata={"help": "Where predictions and scores go (model_dir when unset)."})
    # Decoding
    num_beams: int | None = field(default=None, metadata={"help": "Beams (the saved linker config when unset)."})
    top_k: int | None = field(default=None, metadata={"help": "Distinct concepts kept per mention, at most num_beams (the saved linker config when unset)."})
    batch_size: int | None = field(default=None, metadata={"help": "Mentions per batch (the saved linker config when unset)."})
    max_source_length: int | None = field(default=None, metadata={"help": "Encoder tokens per source (the saved linker config when unset): raise it when the log says sources were cut, e.g. for a KB pre-trained linker saved with 128 tokens (the pre-training configs before they set 192)."})
    exact_match_first: bool = field(default=False, metadata={"help": "Rank concepts whose name equals the mention first, then the model's ranking."})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, ... (model default when unset)."})

    def __post_init__(self) -> None:
        for name in ("num_beams", "top_k", "batch_size", "max_source_length"):
            check_at_least(name, getattr(self, name), 1)  # main() would read 0 as unset


# What the command line and --config YAML are parsed into, in order (tests parse every config with it).
ARGUMENTS = (EvaluateArguments, DataArguments)


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    eval_args, data_args = parse_recipe_args(ARGUMENTS, sys.argv[1:])
    progress_on_terminal()  # library bars off in a log file; linking reports in timed lines there
    overrides = {k: getattr(eval_args, k) for k in ("num_beams", "top_k", "batch_size", "max_source_length", "exact_match_first") if getattr(eval_args, k)}
    linker = EntityLinker.from_pretrained(eval_args.model_dir, device=eval_args.device, **overrides)
    data_args = data_args.following_linker(linker.config.expand_abbreviations)
    kb = data_args.load_kb()
    linker = linker.over_kb(kb)  # the trie decides what can be predicted: it must hold the KB scored against
    train = data_args.load_split("train")
    seen = TrainingSeen.of(train.mentions, kb) if train else None
    out = Path(eval_args.output_dir or eval_args.model_dir)
    scores = {}
    for split in ("dev", "test"):
        corpus = data_args.load_split(split)
        if corpus is None:
            continue
        scores[split], rows = link_and_score(linker, corpus, kb, seen, show_progress=True, what=f"{split} ({getattr(data_args, f'{split}_file')})")
        write_jsonl(out / f"predictions_{split}.jsonl", rows)
    write_json(out / "eval_results.json", scores)
    print(json.dumps(scores, indent=2))


if __name__ == "__main__":
    run_recipe(main)
