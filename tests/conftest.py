"""Shared fixtures: a toy KB and corpus, and a tiny BART trained on them (once per session)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from angel_trl.data.arguments import shared_data_dir

# The repository's real-benchmark folder, ../shared/data beside the repo root; $ANGEL_TRL_DATA overrides it.
REPO_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"

TOY_KB = [
    {"id": "C1", "names": ["lung cancer", "carcinoma of the lung", "pulmonary carcinoma"]},
    {"id": "C2", "names": ["adenosine deaminase deficiency", "ADA", "ADA deficiency"]},
    {"id": "C3", "names": ["American Diabetes Association", "ADA"]},
    {"id": "C4", "names": ["breast cancer", "mammary carcinoma", "carcinoma of the breast"]},
    {"id": "C5", "names": ["cystic fibrosis", "CF", "mucoviscidosis"]},
    {"id": "C6", "names": ["type 1 diabetes", "insulin-dependent diabetes"], "alt_ids": ["OMIM:222100"]},
    {"id": "C7", "names": ["type 2 diabetes", "non-insulin-dependent diabetes"]},
]

# (context with {} for the mention, mention, gold id)
TOY_MENTIONS = [
    ("Patients with {} were treated with surgery.", "lung cancer", "C1"),
    ("Severe combined immunodeficiency due to {} in two children.", "ADA", "C2"),
    ("The guidelines of the {} recommend yearly screening.", "ADA", "C3"),
    ("Women with {} received tamoxifen.", "breast cancer", "C4"),
    ("A sweat test confirmed {} in the infant.", "CF", "C5"),
    ("Autoantibodies predict {} in children.", "type 1 diabetes", "C6"),
    ("Obesity raises the risk of {} in adults.", "type 2 diabetes", "C7"),
    ("A case of {} was found on imaging.", "pulmonary carcinoma", "C1"),
]


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def toy_documents(mentions=TOY_MENTIONS, prefix="d"):
    docs = []
    for i, (ctx, m, cid) in enumerate(mentions):
        text = ctx.format(m)
        s = text.index(m)
        docs.append({"id": f"{prefix}{i}", "text": text, "mentions": [{"start": s, "end": s + len(m), "text": m, "ids": [cid], "type": "Disease"}]})
    return docs


@pytest.fixture(scope="session")
def toy_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("toy")
    write_jsonl(d / "kb.jsonl", TOY_KB)
    write_jsonl(d / "train.jsonl", toy_documents())
    return d


@pytest.fixture(scope="session")
def toy_kb(toy_dir):
    from angel_trl.data.kb import read_kb_jsonl

    return read_kb_jsonl(toy_dir / "kb.jsonl")


@pytest.fixture(scope="session")
def trained_toy(toy_dir, tmp_path_factory):
    """A tiny BART trained by the stage-1 pipeline until it reproduces its training names."""
    from angel_trl.data.arguments import DataArguments
    from angel_trl.training.stage1 import ModelArguments, train_stage1
    from angel_trl.trainers import Stage1Config

    out = tmp_path_factory.mktemp("toy_model")
    data = DataArguments(kb_path=str(toy_dir / "kb.jsonl"), train_file=str(toy_dir / "train.jsonl"), dev_file=str(toy_dir / "train.jsonl"))
    config = Stage1Config(
        output_dir=str(out),
        model_size="tiny",
        num_train_epochs=80,
        learning_rate=3e-3,
        warmup_steps=10,
        per_device_train_batch_size=16,
        eval_strategy="no",
        save_strategy="no",
        logging_steps=50,
        seed=0,
        use_cpu=True,
        disable_tqdm=True,
        link_num_beams=6,
    )
    summary = train_stage1(data, ModelArguments(), config)
    return out, summary


def assert_input_error(reader, path: Path, text: str, match: str) -> None:
    """``reader(path)`` on a file holding ``text`` raises an InputFormatError matching ``match``
    (the readers' shared contract: the error names the file, the line and the problem)."""
    from angel_trl.errors import InputFormatError

    path.write_text(text)
    with pytest.raises(InputFormatError, match=match):
        reader(path)


def require_shared_data() -> Path:
    d = shared_data_dir(REPO_DATA_DIR)
    if not (d / "README.md").exists():
        pytest.skip(f"real benchmark data not found at {d} (set ANGEL_TRL_DATA to its folder)")
    return d


def interrupt_when_ready(child: str) -> tuple[int, str]:
    """Run Python source ``child`` (the repo importable) until it prints ``ready``, send it SIGINT,
    and return its exit status and stderr. The child gets Ctrl-C's default action first, as in a
    terminal: a shell that starts a job in the background hands it SIGINT ignored, and Python then
    never raises KeyboardInterrupt."""
    import os
    import signal
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return proc.returncode, err
