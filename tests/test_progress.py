"""Progress: bars on a terminal; in a log file, timed plain lines from our loops and none of the
bars that transformers, datasets or the Trainer would redraw into it."""

import io

from transformers import TrainingArguments

from angel_trl import progress
from angel_trl.progress import LogLineProgress, progress_bar, progress_on_terminal, reports_progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class _Clock:
    """A stand-in for ``time.time`` that moves only when told."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_library_bars_stay_on_a_terminal_and_go_in_a_log(monkeypatch, tmp_path):
    import datasets
    from transformers.utils import logging as transformers_logging

    config = TrainingArguments(output_dir=str(tmp_path), disable_tqdm=False, report_to=[])
    monkeypatch.setattr("sys.stderr", _Terminal())
    assert progress_on_terminal(config) is True and config.disable_tqdm is False
    assert reports_progress(config)
    monkeypatch.setattr("sys.stderr", io.StringIO())  # redirected to a file
    try:
        assert progress_on_terminal(config) is False
        assert config.disable_tqdm is True  # the Trainer prints its log dicts instead of a bar
        assert not transformers_logging.is_progress_bar_enabled() and not datasets.is_progress_bar_enabled()
        assert reports_progress(config)  # ...and our loops still write their lines
    finally:
        transformers_logging.enable_progress_bar()
        datasets.enable_progress_bars()


def test_disable_tqdm_on_a_terminal_silences_our_loops(monkeypatch, tmp_path):
    monkeypatch.setattr("sys.stderr", _Terminal())
    assert not reports_progress(TrainingArguments(output_dir=str(tmp_path), disable_tqdm=True, report_to=[]))


def test_a_log_gets_one_plain_line_per_interval(monkeypatch):
    log = io.StringIO()
    clock = _Clock()
    monkeypatch.setattr("tqdm.std.time", clock)  # what each bar takes as its clock
    bar = LogLineProgress(total=100, desc="linking", unit="batch", file=log, mininterval=60)
    for step in range(100):
        clock.now += 5  # 5 s a batch: 500 s in all
        bar.update(1)
    bar.close()
    lines = log.getvalue().split("\n")
    assert lines[-1] == "" and all(lines[:-1])  # newline-terminated, no blank lines
    assert "\r" not in log.getvalue()
    lines = lines[:-1]
    assert lines[0].startswith("linking:") and "0/100" in lines[0]  # at the start
    assert "100/100" in lines[-1]  # at the end
    # 500 s at one line a minute at most: the start, <= 8 updates and the end
    assert 3 <= len(lines) <= 10
    assert all(line.startswith("linking:") for line in lines)


def test_progress_bar_picks_the_form_by_where_stderr_goes(monkeypatch):
    monkeypatch.setattr("sys.stderr", io.StringIO())
    with progress_bar(range(3), show=True, desc="x") as bar:
        assert isinstance(bar, LogLineProgress)
        assert list(bar) == [0, 1, 2]
    assert "3/3" in progress.sys.stderr.getvalue()
    monkeypatch.setattr("sys.stderr", _Terminal())
    with progress_bar(range(3), show=True, desc="x") as bar:
        assert not isinstance(bar, LogLineProgress) and not bar.disable
    with progress_bar(range(3), show=False, desc="x") as bar:
        assert bar.disable and list(bar) == [0, 1, 2]
