"""``train_loss`` of the whole run, also when it was resumed from a checkpoint.

The Trainer averages the loss of the steps run in this process: on resume its running sum
(``_total_loss_scalar``) restarts at zero and is divided by ``global_step - _initial_global_step``, so
``train_loss`` covers the resumed part only. The checkpoint's ``log_history`` cannot make up for it:
the steps since the last logging step are in no log entry. So each checkpoint records the run's loss
sum so far in ``run_loss.json``, and a resumed ``train`` adds it back.
"""

from __future__ import annotations

import json
from pathlib import Path

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint

from angel_trl.data.files import write_json

RUN_LOSS_FILE = "run_loss.json"


def read_run_loss(checkpoint: str | Path | None) -> tuple[int, float]:
    """``(global step, loss sum)`` of the run up to ``checkpoint``; ``(0, 0.0)`` without one (or its file)."""
    path = Path(checkpoint) / RUN_LOSS_FILE if checkpoint else None
    if path is None or not path.exists():
        return 0, 0.0
    saved = json.loads(path.read_text(encoding="utf-8"))
    return int(saved["global_step"]), float(saved["loss_sum"])


class WholeRunLossMixin:
    """Reports ``train_loss`` over every step of the run (the steps before the checkpoint resumed from too)."""

    _loss_before: tuple[int, float] = (0, 0.0)

    def train(self, resume_from_checkpoint: str | bool | None = None, *args, **kwargs):
        checkpoint = get_last_checkpoint(self.args.output_dir) if resume_from_checkpoint is True and Path(self.args.output_dir).is_dir() else resume_from_checkpoint
        self._loss_before = read_run_loss(checkpoint or None)
        output = super().train(resume_from_checkpoint, *args, **kwargs)
        steps_before, sum_before = self._loss_before
        if not steps_before or output.global_step <= steps_before:
            return output
        # The Trainer's train_loss is this process's sum over its own steps, divided by their number.
        loss = (sum_before + output.training_loss * (output.global_step - steps_before)) / output.global_step
        output.metrics["train_loss"] = loss
        return output._replace(training_loss=loss)

    def _save_checkpoint(self, model, trial) -> None:
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            # What the Trainer's own train_loss would add up at this step: logged sums plus the unlogged rest.
            loss_sum = self._loss_before[1] + self._total_loss_scalar + self._tr_loss.item()
            folder = Path(self._get_output_dir(trial=trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            write_json(folder / RUN_LOSS_FILE, {"global_step": self.state.global_step, "loss_sum": loss_sum})
