"""Saved models get the usual file permissions, not the 0600 safetensors leaves."""

from __future__ import annotations

from angel_trl.data.files import usual_permissions


class UsualPermissionsMixin:
    """Every ``save_model`` (the final one, and each checkpoint's) leaves files others can read."""

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        super().save_model(output_dir, _internal_call)
        if self.args.should_save:
            usual_permissions(output_dir or self.args.output_dir)
