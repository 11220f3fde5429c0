"""Print stage results side by side: `python recipes/compare.py "stage 1=outputs/demo-stage1/stage1_results.json" ...`."""

from angel_trl.errors import exit_quietly_on_ctrl_c

if __name__ == "__main__":
    exit_quietly_on_ctrl_c()  # before the imports below: a Ctrl-C while torch and TRL load ends quietly too

import argparse

from angel_trl.data.files import read_json_object
from angel_trl.errors import InputFormatError
from angel_trl.evaluation import comparison_table
from angel_trl.recipe_args import run_recipe

SPLITS = ("dev", "test")


def run_spec(text: str) -> tuple[str, str]:
    """argparse type: ``NAME=PATH``."""
    name, sep, path = text.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=PATH (e.g. 'stage 1=outputs/demo-stage1/stage1_results.json'), got {text!r}")
    return name, path


def main() -> None:
    parser = argparse.ArgumentParser(prog="compare.py", description="Stage results (stage1_results.json, stage2_results.json) side by side: dev and test acc@1 / acc@5.")
    parser.add_argument("runs", nargs="+", type=run_spec, metavar="NAME=PATH", help="A row's name and the results file it reads.")
    args = parser.parse_args()
    runs = {}
    for name, path in args.runs:
        if name in runs:
            parser.error(f"the row name {name!r} is given twice: one row would hide the other")
        scores = read_json_object(path)
        # A results file scores at least one split: another JSON (a mining summary) has no row to give.
        if not any(isinstance(scores.get(s), dict) and "acc@1" in scores[s] and "acc@5" in scores[s] for s in SPLITS):
            raise InputFormatError(path, None, "not a stage results file: no dev or test scores (acc@1, acc@5)")
        runs[name] = scores
    print(comparison_table(runs, SPLITS))


if __name__ == "__main__":
    run_recipe(main)
