"""Progress bars only on a terminal: redirected output keeps one line per logging step."""

import io

from transformers import TrainingArguments

from angel_trl.training.progress import progress_on_terminal


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_stay_on_a_terminal_and_go_in_a_log(monkeypatch, tmp_path):
    import datasets
    from transformers.utils import logging as transformers_logging

    config = TrainingArguments(output_dir=str(tmp_path), disable_tqdm=False, report_to=[])
    monkeypatch.setattr("sys.stderr", _Terminal())
    assert progress_on_terminal(config) is True and config.disable_tqdm is False
    monkeypatch.setattr("sys.stderr", io.StringIO())  # redirected to a file
    try:
        assert progress_on_terminal(config) is False
        assert config.disable_tqdm is True
        assert not transformers_logging.is_progress_bar_enabled() and not datasets.is_progress_bar_enabled()
    finally:
        transformers_logging.enable_progress_bar()
        datasets.enable_progress_bars()
