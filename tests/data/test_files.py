"""Output-directory helpers: the exclusive lock and the one-step directory replacement."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from angel_trl.data.files import LOCK_FILE, exclusive_output_dir, replaced_dir
from angel_trl.errors import OutputDirBusyError

ROOT = Path(__file__).resolve().parents[2]


def hold_lock(path: Path) -> subprocess.Popen:
    """Another process holding ``path``'s lock until its stdin closes."""
    child = textwrap.dedent(
        f"""
        import sys
        from angel_trl.data.files import exclusive_output_dir
        with exclusive_output_dir({str(path)!r}):
            print("locked", flush=True)
            sys.stdin.read()
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", child], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_writer_of_an_output_dir_fails_at_once(tmp_path):
    out = tmp_path / "out"
    holder = hold_lock(out)
    try:
        with pytest.raises(OutputDirBusyError, match=r"out: another run is writing to this output directory") as e:
            with exclusive_output_dir(out):
                pass
        assert "\n" not in str(e.value)
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    with exclusive_output_dir(out), exclusive_output_dir(out):  # free again; nested use in one process is fine
        assert (out / LOCK_FILE).exists()


def test_a_run_that_fails_before_writing_leaves_no_directory_it_made(tmp_path):
    with pytest.raises(RuntimeError), exclusive_output_dir(tmp_path / "new" / "out"):
        raise RuntimeError("failed before writing")
    assert not (tmp_path / "new" / "out").exists()
    (tmp_path / "kept").mkdir()  # a directory the user made stays, with its lock file
    with pytest.raises(RuntimeError), exclusive_output_dir(tmp_path / "kept"):
        raise RuntimeError("failed before writing")
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == [LOCK_FILE]
    with exclusive_output_dir(tmp_path / "written") as out:  # a run that wrote keeps everything
        (out / "summary.json").write_text("{}")
    assert sorted(p.name for p in (tmp_path / "written").iterdir()) == sorted([LOCK_FILE, "summary.json"])


def test_a_killed_writer_leaves_no_stale_lock(tmp_path):
    holder = hold_lock(tmp_path / "out")
    holder.kill()
    holder.wait(timeout=60)
    with exclusive_output_dir(tmp_path / "out"):
        pass


def test_replaced_dir_swaps_in_the_new_content_and_keeps_the_rest(tmp_path):
    out = tmp_path / "out"
    (out / "train").mkdir(parents=True)
    (out / "train" / "data").write_text("old train")
    (out / "test").mkdir()
    (out / "test" / "data").write_text("old test")
    (out / "summary").write_text("old")
    with replaced_dir(out, ["train", "summary"]) as new:
        (new / "train").mkdir()
        (new / "train" / "data").write_text("new train")
        (new / "summary").write_text("new")
        assert (out / "summary").read_text() == "old"
    assert (out / "train" / "data").read_text() == "new train" and (out / "summary").read_text() == "new"
    assert (out / "test" / "data").read_text() == "old test"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary sibling left

    with pytest.raises(KeyboardInterrupt), replaced_dir(out, ["summary"]) as new:
        (new / "summary").write_text("half")
        raise KeyboardInterrupt
    assert (out / "summary").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_replaced_dir_keeps_a_held_lock(tmp_path):
    """The lock file is carried over as the same file: a run started after the swap still sees it held."""
    out = tmp_path / "out"
    with exclusive_output_dir(out):
        with replaced_dir(out, ["summary"]) as new:
            (new / "summary").write_text("new")
        child = f"from angel_trl.data.files import exclusive_output_dir\nwith exclusive_output_dir({str(out)!r}): pass"
        done = subprocess.run([sys.executable, "-c", child], cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 1 and "OutputDirBusyError" in done.stderr


def test_an_output_that_cannot_be_created_is_named_not_its_temporary_sibling(tmp_path, monkeypatch):
    import angel_trl.data.files as files

    def refuse(path, mode="r", **kwargs):
        raise PermissionError(13, "Permission denied", str(path))  # as sysfs refuses a root user

    monkeypatch.setattr(files, "open", refuse, raising=False)
    target = tmp_path / "out.jsonl"
    with pytest.raises(OSError) as caught:
        files.atomic_write_text(target, "x\n")
    assert caught.value.filename == str(target) and caught.value.strerror == "Permission denied"
    assert list(tmp_path.iterdir()) == []
