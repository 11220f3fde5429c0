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


def _spoil_vectors(tmp_path, array) -> None:
    (vectors_file,) = tmp_path.glob("*.npy")
    np.save(vectors_file, array, allow_pickle=True)


def _spoil_texts(tmp_path, content: bytes) -> None:
    (texts_file,) = tmp_path.glob("*.jsonl")
    texts_file.write_bytes(content)


DAMAGED_CHUNKS = {
    "vectors missing": (lambda d: next(d.glob("*.npy")).unlink(), None, r"its vectors file \w+\.npy is missing"),
    "a text not JSON": (lambda d: _spoil_texts(d, b'"a"\nb\n"c"\n'), 2, "expected one JSON string a line"),
    "a text not a string": (lambda d: _spoil_texts(d, b'"a"\n5\n"c"\n'), 2, "expected one JSON string a line"),
    "a blank line": (lambda d: _spoil_texts(d, b'"a"\n\n"b"\n"c"\n'), 2, "a blank line"),
    "texts not UTF-8": (lambda d: _spoil_texts(d, b'"a"\n"\xff"\n"c"\n'), 2, "not valid UTF-8"),
    "vectors cut": (lambda d: (lambda f: f.write_bytes(f.read_bytes()[:-8]))(next(d.glob("*.npy"))), None, r"\w+\.npy is not a readable \.npy array \(mmap length"),
    "vectors garbage": (lambda d: next(d.glob("*.npy")).write_bytes(b"garbage"), None, r"\w+\.npy is not a readable \.npy array"),
    "vectors pickled": (lambda d: _spoil_vectors(d, np.array([{"x": 1}] * 3, dtype=object)), None, r"\w+\.npy is not a readable \.npy array"),
    "vectors 1-d": (lambda d: _spoil_vectors(d, np.ones(3, dtype=np.float32)), None, r"3 texts but \w+\.npy holds a float32 array of shape \(3,\)"),
    "vectors float64": (lambda d: _spoil_vectors(d, np.ones((3, 4))), None, r"3 texts but \w+\.npy holds a float64 array"),
    "vectors NaN": (lambda d: _spoil_vectors(d, np.full((3, 4), np.nan, dtype=np.float32)), None, r"\w+\.npy holds vectors that are not finite"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGED_CHUNKS))
def test_a_damaged_chunk_names_both_files_and_says_to_delete_them(tmp_path, damage):
    from angel_trl.errors import InputFormatError

    spoil, line, problem = DAMAGED_CHUNKS[damage]
    EmbeddingCache(tmp_path).vectors(["a", "b", "c"], FakeEncoder())
    (texts_file,) = tmp_path.glob("*.jsonl")
    spoil(tmp_path)
    where = f"{texts_file}:{line}" if line else str(texts_file)
    with pytest.raises(InputFormatError, match=f"^{where}: {problem}.*; a damaged embedding cache chunk: delete {texts_file.name} and {texts_file.stem}.npy") as e:
        EmbeddingCache(tmp_path).vectors(["a", "b", "c", "d"], FakeEncoder())
    assert "re-encode" in str(e.value)


def test_chunks_of_another_width_are_refused_before_anything_is_mixed(tmp_path):
    from angel_trl.errors import InputFormatError

    EmbeddingCache(tmp_path).vectors(["a"], FakeEncoder())
    narrow = lambda texts: FakeEncoder()(texts)[:, :3]  # another encoder, another width
    with pytest.raises(InputFormatError, match=f"^{tmp_path}: the encoder gives vectors of width 3 but the chunks cached here hold width 4"):
        EmbeddingCache(tmp_path).vectors(["a", "b"], narrow)
    assert len(list(tmp_path.glob("*.jsonl"))) == 1  # nothing of the other width was saved
    EmbeddingCache(tmp_path / "other").vectors(["b"], narrow)
    for f in (tmp_path / "other").iterdir():
        f.rename(tmp_path / f.name)
    with pytest.raises(InputFormatError, match=r"holds width \d: chunks of two encoders in one directory\?"):
        EmbeddingCache(tmp_path).vectors(["a", "b"], FakeEncoder())
