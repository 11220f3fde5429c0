"""Print stage results side by side: `python recipes/compare.py "stage 1=outputs/demo-stage1/stage1_results.json" ...`."""

from angel_trl.errors import exit_quietly_on_ctrl_c

if __name__ == "__main__":
    exit_quietly_on_ctrl_c()  # before the imports below: a Ctrl-C while torch and TRL load ends quietly too

import json
import sys

from angel_trl.evaluation import comparison_table


def main() -> None:
    runs = {}
    for arg in sys.argv[1:]:
        name, _, path = arg.partition("=")
        with open(path) as f:
            runs[name] = json.load(f)
    print(comparison_table(runs))


if __name__ == "__main__":
    main()
