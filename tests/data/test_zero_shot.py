"""The zero-shot protocol: train and dev lose every mention of a concept that occurs in test."""

import pytest

from angel_trl.data.arguments import DataArguments
from angel_trl.data.zero_shot import DROPPED
from tests.conftest import TOY_MENTIONS, toy_documents, write_jsonl


def test_train_and_dev_lose_the_test_concepts_and_count_them(toy_dir, tmp_path):
    # test: C1 (by two names) and C6 by its alt id; train: the toy corpus (two C1 mentions, one C6).
    test = [("A {} was resected.", "lung tumour", "C1"), ("Serology suggested {}.", "IDDM", "OMIM:222100")]
    write_jsonl(tmp_path / "test.jsonl", toy_documents(test, prefix="t"))
    args = DataArguments(kb_path=str(toy_dir / "kb.jsonl"), train_file=str(toy_dir / "train.jsonl"), dev_file=str(toy_dir / "train.jsonl"), test_file=str(tmp_path / "test.jsonl"), zero_shot=True)
    train, dev, kept_test = args.load_split("train"), args.load_split("dev"), args.load_split("test")
    expected = [m for _, m, cid in TOY_MENTIONS if cid not in ("C1", "C6")]
    assert [m.text for m in train.mentions] == [m.text for m in dev.mentions] == expected
    assert train.stats()[DROPPED] == 3 and len(train.documents) == len(TOY_MENTIONS)  # documents stay
    assert len(kept_test.mentions) == 2  # test itself is untouched
    assert DROPPED not in DataArguments(kb_path=args.kb_path, train_file=args.train_file).load_split("train").stats()


def test_zero_shot_needs_a_test_file(toy_dir):
    # Refused when the arguments are made (a recipe parses them), not once the data is being read.
    with pytest.raises(ValueError, match="needs test_file"):
        DataArguments(kb_path=str(toy_dir / "kb.jsonl"), train_file=str(toy_dir / "train.jsonl"), zero_shot=True)
