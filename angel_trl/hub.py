"""The Hugging Face Hub side of angel-trl: model and dataset cards, pushing linkers and preference pairs.

A trained linker is a directory (model, tokenizer, ``trie.npz``, ``names.jsonl``, ``kb.jsonl``,
``linker_config.json``, scores). It is pushed whole, once the run has been scored, to a model repo
that ``EntityLinker.from_pretrained("owner/name")`` loads back. Mined pairs are pushed with
``DatasetDict.push_to_hub`` (parquet, one split per corpus split: what ``load_dataset`` and the
dataset viewer expect), and ``stage2.load_pairs`` reads them back by id.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from datasets import Dataset, DatasetDict
from huggingface_hub import CommitInfo, DatasetCard, DatasetCardData, HfApi, ModelCard, ModelCardData
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from angel_trl.data.arguments import DataArguments
from angel_trl.evaluation import scores_table
from angel_trl.data.files import atomic_write_text
from angel_trl.data.kb import read_kb_jsonl
from angel_trl.errors import FieldError
from angel_trl.linking.linker import KB_FILE, LINKER_CONFIG, NAMES_FILE

logger = logging.getLogger(__name__)

CARD_FILE = "README.md"
LINKER_TAGS = ["angel-trl", "entity-linking", "biomedical", "generative-entity-linking", "constrained-decoding"]
PAIRS_TAGS = ["angel-trl", "entity-linking", "biomedical", "preference", "dpo"]
# runs.score_and_save writes one of these; the first found names the stage.
RESULTS_FILES = {
    "stage2_results.json": "stage 2: DPO on preference pairs mined from the stage-1 linker",
    "stage1_results.json": "stage 1: positive-only training on gold names (Seq2SeqTrainer)",
}
# Never uploaded: intermediate checkpoints, optimizer / scheduler / RNG states and any pickle,
# and hidden files (half-written atomic writes).
PUSH_IGNORE = ["checkpoint-*/", "*.pt", "*.pth", "*.bin", "*.pkl", "*.pickle", ".*"]
# The training arguments a card shows, when the run has them (stage 1 and stage 2 differ).
TRAINING_FIELDS = (
    "model_size", "target_top_k", "kb_rows", "max_context_words", "max_source_length", "lowercase",
    "loss_type", "loss_weights", "beta", "label_smoothing", "precompute_ref_log_probs",
    "learning_rate", "lr_scheduler_type", "warmup_steps", "weight_decay", "num_train_epochs", "max_steps",
    "per_device_train_batch_size", "gradient_accumulation_steps", "seed",
)
PAIR_COLUMNS = {
    "prompt": "encoder input: `left context [ST] mention [ET] right context`",
    "decoder_prompt": "forced decoder prefix, `mention is`",
    "chosen": "name of a correct concept: the one the linker ranked highest (a gold name when `chosen_rank` is -1)",
    "rejected": "name of a wrong concept",
    "mention_id": "`document:start-end` of the mention",
    "mention": "mention text",
    "gold_ids": "gold concept ids (canonical KB ids)",
    "rejected_id": "concept id of the rejected name",
    "case": "why the mention gave pairs: `misranked`, `top1_correct`, `no_correct` (gold fallback) or `tfidf`",
    "chosen_rank": "rank of the chosen concept among the linker's candidates (-1: not among them)",
    "rejected_rank": "rank of the rejected concept (TF-IDF rank for rule `tfidf`)",
    "chosen_score": "log-probability of the chosen name given the mention, under the mining linker (null for a gold fallback name)",
    "rejected_score": "log-probability of the rejected name, or its TF-IDF similarity for rule `tfidf`",
}
PAPER = "[ANGEL](https://arxiv.org/abs/2408.16493) (*Learning from Negative Samples in Biomedical Generative Entity Linking*, ACL 2025)"


def hub_id(value: str | None) -> str | None:
    """``value`` when it names a Hub repo (``owner/name``, not an existing local path), else None."""
    if not value or Path(value).exists():
        return None
    try:
        validate_repo_id(value)
    except HFValidationError:
        return None
    return value


def _table(rows: Mapping[str, object], head: tuple[str, str]) -> str:
    lines = [f"| {head[0]} | {head[1]} |", "|---|---|"]
    lines += [f"| {k} | {_cell(v)} |" for k, v in rows.items()]
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(f"`{v}`" for v in value)
    return f"`{value}`" if isinstance(value, str) else str(value)


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


# ---------------------------------------------------------------------------------------- model card
def model_card(output_dir: str | Path, repo_id: str | None = None, base_model: str | None = None, data_files: Mapping[str, str] | None = None, datasets: list[str] | None = None) -> str:
    """A README.md for a linker directory written by a training recipe.

    Everything but the provenance comes from the directory: stage and scores from the results JSON
    of ``runs.score_and_save``, settings from ``training_args.json``, KB counts from ``kb.jsonl`` and
    ``names.jsonl``. ``base_model`` is the starting checkpoint (stage 1) or the stage-1 linker
    (stage 2); ``data_files`` maps roles (KB, train, dev, test, pairs) to the files used; ``datasets``
    are Hub dataset ids for the metadata. Local paths never go into the metadata, only into the text.
    """
    out = Path(output_dir)
    results_file = next((f for f in RESULTS_FILES if (out / f).exists()), None)
    if results_file is None:
        raise FileNotFoundError(f"{out} has none of {', '.join(RESULTS_FILES)}: score the run first (runs.score_and_save)")
    results = _read_json(out / results_file)
    args = _read_json(out / "training_args.json")
    ref = repo_id or str(out)

    data = ModelCardData(
        language="en",
        library_name="transformers",
        tags=LINKER_TAGS,
        base_model=hub_id(base_model),
        datasets=list(dict.fromkeys(d for d in datasets or [] if hub_id(d))) or None,
        metrics=["accuracy"],
    )
    sections = [
        f"# {repo_id.split('/')[-1] if repo_id else out.name}",
        f"A generative biomedical entity linker trained with angel-trl (built on Hugging Face TRL), after {PAPER}. "
        "A BART-family model reads a mention in its context and generates a knowledge-base "
        "name; beam search is constrained by a prefix trie over every KB name, so each prediction is a KB concept. "
        "Plain `generate()` is not constrained: link with angel-trl (below).",
        f"- **Training:** {RESULTS_FILES[results_file]}\n- **Started from:** {_started_from(base_model, args, results)}",
        "## Knowledge base\n\n" + _kb_section(out, results),
    ]
    if data_files:
        sections.append("## Data\n\n" + _table({k: v for k, v in data_files.items() if v}, ("role", "file")))
    settings = {k: args[k] for k in TRAINING_FIELDS if k in args and args[k] is not None and not (k == "max_steps" and args[k] <= 0)}
    if settings:
        sections.append("## Training settings\n\n" + _table(settings, ("setting", "value")))
    if "pairs" in results:
        sections.append(f"Preference pairs: {results['pairs']} train, {results.get('dev_pairs', 0)} dev.")
    scores = {k: results[k] for k in ("dev", "test") if k in results}
    if scores:
        sections.append(
            "## Results\n\n" + scores_table(scores)
            + "\n\nacc@k: a gold concept among the top k distinct concepts; *seen*: the mention text occurs in the "
            "training corpus (n = mentions). Per-mention predictions: `predictions_{dev,test}.jsonl`."
        )
    sections.append(_usage(ref))
    body = "\n\n".join(sections)
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}\n"))


def _started_from(base_model: str | None, args: dict, results: dict) -> str:
    params = f", {results['parameters']:,} parameters" if "parameters" in results else ""
    if base_model:
        return f"`{base_model}`{params}"
    return f"a BART built from scratch (`model_size: {args.get('model_size', '?')}`) with a BPE tokenizer trained on the KB{params}"


def _kb_section(out: Path, results: dict) -> str:
    if (out / KB_FILE).exists():
        stats = read_kb_jsonl(out / KB_FILE).stats()
    else:
        stats = results.get("kb", {})
    counts = {"concepts": stats.get("concepts"), "KB names (with synonyms)": stats.get("names"), "ambiguous names (several concepts)": stats.get("ambiguous_names")}
    if (out / NAMES_FILE).exists():
        with open(out / NAMES_FILE, encoding="utf-8") as f:
            counts["names in the trie (normalised, distinct)"] = sum(1 for _ in f) - 1  # first line: header
    table = _table({k: v for k, v in counts.items() if v is not None}, ("", "count"))
    return (
        table + f"\n\nFiles: `{KB_FILE}` (concepts, names, alternative ids), `{NAMES_FILE}` (name -> concept ids), "
        f"`trie.npz` (token trie of the names), `{LINKER_CONFIG}` (decoding settings)."
    )


def _usage(ref: str) -> str:
    return f"""## Usage

```bash
# with angel-trl installed (pip install -e . in its repository)
angel-trl link {ref} --text "Immunodeficiency due to [ST] ADA [ET] in two infants."
```

```python
from angel_trl.linking.linker import EntityLinker

linker = EntityLinker.from_pretrained("{ref}")  # model, tokenizer, trie, names, KB
for result in linker.link(["Immunodeficiency due to [ST] ADA [ET] in two infants."]):
    for c in result.candidates:  # distinct concepts, best first; score = log p(name | mention)
        print(c.concept_id, c.name, round(c.score, 3))
```"""


def data_files(data_args: DataArguments, **extra: str | None) -> dict[str, str]:
    """The files of a run as its card lists them (as configured): KB, corpus splits and ``extra`` (e.g. pairs)."""
    files = {f"KB ({data_args.kb_format})": data_args.kb_path, "train": data_args.train_file, "dev": data_args.dev_file, "test": data_args.test_file, **extra}
    return {role: f for role, f in files.items() if f}


def write_model_card(output_dir: str | Path, repo_id: str | None = None, **card_kwargs) -> Path:
    """Write :func:`model_card` as ``README.md`` into the linker directory and return its path."""
    path = Path(output_dir) / CARD_FILE
    atomic_write_text(path, model_card(output_dir, repo_id, **card_kwargs))
    return path


# ---------------------------------------------------------------------------------------- dataset card
def dataset_card(summaries: Mapping[str, dict], pairs: Mapping[str, Dataset] | None = None, repo_id: str | None = None, model: str | None = None, mining: Mapping[str, object] | None = None) -> str:
    """A README.md for preference pairs: the mining summary of each split (``mining.mine_pairs``),
    the pairs per case counted from the rows, the mining settings and the columns."""
    data = DatasetCardData(
        language="en",
        pretty_name="ANGEL preference pairs",
        tags=PAIRS_TAGS,
    )
    ref = repo_id or "<dataset id>"
    sections = [
        f"# {repo_id.split('/')[-1] if repo_id else 'Preference pairs'}",
        f"Preference pairs (`prompt`, `chosen`, `rejected`) for stage 2 of {PAPER}, mined with angel-trl from the "
        "ranked, trie-constrained predictions of a stage-1 linker on annotated mentions: `chosen` is a name of a "
        "correct concept, `rejected` a name of a wrong one. Under the paper's rule (`paper`) the wrong concepts are "
        "those ranked above the correct one, or the best wrong one when top-1 is right.",
    ]
    if model:
        sections.append(f"- **Mining linker:** `{model}`")
    if mining:
        sections.append("## Mining settings\n\n" + _table(dict(mining), ("setting", "value")))
    for split, summary in summaries.items():
        rows = {"mentions": summary.get("mentions"), "mentions linked": summary.get("mentions_linked"), "pairs": summary.get("pairs")}
        if "top1_correct_share" in summary:
            rows["top-1 correct share"] = summary["top1_correct_share"]
        rows.update({f"mentions: {k[len('case_'):]}": v for k, v in summary.items() if k.startswith("case_")})
        rows.update({f"skipped: {k[len('skipped_'):]}": v for k, v in summary.items() if k.startswith("skipped_")})
        if pairs is not None and split in pairs and "case" in pairs[split].column_names:
            rows.update({f"pairs: {case}": n for case, n in sorted(Counter(pairs[split]["case"]).items())})
        rule = f" (rule `{summary['rule']}`)" if "rule" in summary else ""
        sections.append(f"## Split `{split}`{rule}\n\n" + _table({k: v for k, v in rows.items() if v is not None}, ("", "count")))
    sections.append("## Columns\n\n| column | meaning |\n|---|---|\n" + "\n".join(f"| `{c}` | {m} |" for c, m in PAIR_COLUMNS.items()))
    sections.append(
        f"""## Usage

```python
from datasets import load_dataset

pairs = load_dataset("{ref}")  # DatasetDict: one split per mined corpus split
```

```bash
python recipes/stage2_dpo.py --config my_dpo.yaml --train_pairs {ref} --dev_pairs {ref}  # train and dev splits
```"""
    )
    return str(DatasetCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n"))


# ---------------------------------------------------------------------------------------- pushing
@dataclass
class HubTarget:
    """Where a finished run is pushed (the ``hub_*`` fields of its TrainingArguments)."""

    repo_id: str
    token: str | None = None
    private: bool | None = None


def take_over_push(args) -> HubTarget | None:
    """The Hub target of ``args`` (TrainingArguments), with the Trainer's own pushing switched off.

    With ``push_to_hub`` the Trainer creates the repo when it is built (a network call before any
    training) and uploads ``output_dir`` at every checkpoint save and in ``save_model``: linkers
    without trie, names or KB until the run ends, plus its pickled ``training_args.bin``. We push
    once instead, after the final scoring: the complete linker directory with its card.
    """
    if not args.push_to_hub:
        return None
    if args.hub_revision:
        raise ValueError("hub_revision is not supported: the finished linker is pushed to the main branch")
    from huggingface_hub import get_token

    if not (args.hub_token or get_token()):
        # The push comes after training: without a token it would fail hours later, the run's work unshared.
        raise FieldError("push_to_hub", "needs a Hugging Face token (`hf auth login`, HF_TOKEN or hub_token), checked before training")
    args.push_to_hub = False
    return HubTarget(args.hub_model_id or Path(args.output_dir).name, args.hub_token, args.hub_private_repo)


def push_checkpoint(output_dir: str | Path, repo_id: str, token: str | None = None, private: bool | None = None, commit_message: str = "Upload angel-trl linker", **card_kwargs) -> CommitInfo:
    """Create the model repo if needed, write the model card with its final id, and upload the linker
    directory (without checkpoints, optimizer states or pickles) in one commit."""
    out = Path(output_dir)
    if not (out / LINKER_CONFIG).exists():
        raise FileNotFoundError(f"{out} has no {LINKER_CONFIG}: not a linker directory")
    api = HfApi(token=token)  # built here: it reads the endpoint (HF_ENDPOINT) when created
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id  # a bare name gets the user's namespace
    write_model_card(out, repo_id, **card_kwargs)
    info = api.upload_folder(repo_id=repo_id, folder_path=out, commit_message=commit_message, ignore_patterns=PUSH_IGNORE)
    logger.info("pushed %s to %s", out, info.commit_url)
    return info


def publish_linker(output_dir: str | Path, hub: HubTarget | None, **card_kwargs) -> CommitInfo | None:
    """End of a training recipe (main process): write the model card, and push when ``hub`` is set."""
    if hub is None:
        write_model_card(output_dir, **card_kwargs)
        return None
    return push_checkpoint(output_dir, hub.repo_id, hub.token, hub.private, **card_kwargs)


def push_pairs(pairs: Mapping[str, Dataset], repo_id: str, summaries: Mapping[str, dict], token: str | None = None, private: bool | None = None, model: str | None = None, mining: Mapping[str, object] | None = None, commit_message: str = "Upload preference pairs") -> str:
    """Push the splits of mined pairs as one parquet dataset with its card; return the repo id."""
    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True).repo_id
    # The card goes first: push_to_hub then adds its own metadata (features, sizes, data files) to
    # the card's YAML and keeps the text.
    card = dataset_card(summaries, pairs, repo_id, model, mining)
    api.upload_file(path_or_fileobj=card.encode(), path_in_repo=CARD_FILE, repo_id=repo_id, repo_type="dataset", commit_message="Add dataset card")
    DatasetDict(dict(pairs)).push_to_hub(repo_id, private=private, token=token, commit_message=commit_message)
    return repo_id
