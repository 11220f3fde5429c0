"""EmbeddingCache: by-text reuse, resumption after an interruption, and refusal of a damaged chunk."""

import numpy as np
import pytest

from angel_trl.text.embedding_cache import EmbeddingCache


class FakeEncoder:
    """Deterministic 4-d vectors from the text, recording every batch it is asked to encode."""

    def __init__(self, fail_on_call: int | None = None):
        self.calls: list[list[str]] = []
        self.fail_on_call = fail_on_call

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        if len(self.calls) == self.fail_on_call:
            raise KeyboardInterrupt("killed mid-encoding")
        return np.array([[len(t), sum(map(ord, t)) % 97, t.count("a"), 1.0] for t in texts], dtype=np.float32)


def test_vectors_come_back_in_order_and_only_new_texts_are_encoded(tmp_path):
    cache = EmbeddingCache(tmp_path / "enc")
    first = FakeEncoder()
    got = cache.vectors(["alpha", "beta", "gamma"], first, chunk_size=2)
    assert first.calls == [["alpha", "beta"], ["gamma"]]
    assert np.array_equal(got, FakeEncoder()(["alpha", "beta", "gamma"]))
    assert len(list((tmp_path / "enc").glob("*.npy"))) == len(list((tmp_path / "enc").glob("*.jsonl"))) == 2

    # A table that adds a name (KB + training mentions) encodes only that name; order follows the request.
    second = FakeEncoder()
    got = EmbeddingCache(tmp_path / "enc").vectors(["gamma", "delta", "alpha", "delta"], second)
    assert second.calls == [["delta"]]
    assert np.array_equal(got, FakeEncoder()(["gamma", "delta", "alpha", "delta"]))


def test_an_interrupted_encoding_keeps_its_saved_chunks_and_resumes(tmp_path):
    texts = [f"name {i}" for i in range(5)]
    with pytest.raises(KeyboardInterrupt):
        EmbeddingCache(tmp_path).vectors(texts, FakeEncoder(fail_on_call=2), chunk_size=2)
    resumed = FakeEncoder()
    got = EmbeddingCache(tmp_path).vectors(texts, resumed, chunk_size=2)
    assert resumed.calls == [["name 2", "name 3"], ["name 4"]]
    assert np.array_equal(got, FakeEncoder()(texts))
    assert not list(tmp_path.glob("*.tmp"))  # no half-written chunk left behind


def test_a_chunk_whose_texts_and_rows_disagree_is_refused_with_its_file(tmp_path):
    EmbeddingCache(tmp_path).vectors(["a", "b"], FakeEncoder())
    (texts_file,) = tmp_path.glob("*.jsonl")
    texts_file.write_text('"a"\n')
    with pytest.raises(ValueError, match=texts_file.name):
        EmbeddingCache(tmp_path).vectors(["a"], FakeEncoder())
