import random

import numpy as np
import pytest

from angel_trl.linking.trie import NameTrie

EOS = 2


def random_sequences(n, seed=0):
    rng = random.Random(seed)
    return [[rng.randint(3, 40) for _ in range(rng.randint(1, 7))] + [EOS] for _ in range(n)]


def test_trie_matches_brute_force():
    seqs = random_sequences(3000)
    trie = NameTrie.build(seqs, EOS)
    continuations = {}
    for s in seqs:
        for k in range(len(s)):
            continuations.setdefault(tuple(s[:k]), set()).add(s[k])
    for prefix, allowed in continuations.items():
        node = trie.walk(prefix)
        assert set(trie.allowed(node).tolist()) == allowed
        assert len(trie.allowed(node)) > 0
    for i, s in enumerate(seqs):
        assert trie.name_of(s) == seqs.index(s)  # duplicates map to the first name
    assert trie.walk([41]) == -1 and trie.name_of(seqs[0][:-1]) == -1


def test_trie_over_names_of_very_different_lengths():
    """One long name next to short ones that share its prefix, duplicates, and names that are prefixes of others bar EOS."""
    long_name = [7] * 300 + [9, EOS]
    seqs = [long_name, [7, EOS], [7, 7, EOS], [7, EOS], [7] * 150 + [EOS], [8, EOS], long_name]
    trie = NameTrie.build(seqs, EOS)
    assert [trie.name_of(s) for s in seqs] == [0, 1, 2, 1, 4, 5, 0]
    assert sorted(trie.allowed(trie.walk([7] * 150)).tolist()) == [EOS, 7]
    assert trie.allowed(trie.walk([7] * 300)).tolist() == [9]
    assert sorted(trie.allowed(0).tolist()) == [7, 8]
    assert trie.num_nodes == 1 + 302 + 3 + 2  # root; 7^300 9 EOS; an EOS after 7, 7 7 and 7^150; 8 EOS


def test_trie_rejects_bad_sequences():
    with pytest.raises(ValueError, match="EOS"):
        NameTrie.build([[5, 6]], EOS)
    with pytest.raises(ValueError, match="EOS"):
        NameTrie.build([[5, EOS, 6, EOS]], EOS)
    with pytest.raises(ValueError, match="zero names"):
        NameTrie.build([], EOS)


def test_trie_save_load_round_trip(tmp_path):
    seqs = random_sequences(500, seed=1)
    trie = NameTrie.build(seqs, EOS)
    trie.save(tmp_path / "trie.npz")
    again = NameTrie.load(tmp_path / "trie.npz")
    for a, b in zip((trie.first_child, trie.node_token, trie.terminal_name), (again.first_child, again.node_token, again.terminal_name)):
        assert np.array_equal(a, b)
    assert again.eos_token_id == EOS
    assert [again.name_of(s) for s in seqs] == [trie.name_of(s) for s in seqs]
    with np.load(tmp_path / "trie.npz", allow_pickle=False) as z:  # plain arrays, no pickle
        assert set(z.files) >= {"first_child", "node_token", "terminal_name"}


def test_colliding_token_paths_keep_every_name_reachable(tmp_path):
    """Names a tokenizer maps to one token sequence (accents stripped, truncation) share a path:
    each of them, and so each of their concepts, is still returned."""
    from angel_trl.linking.trie import NameTrie

    eos = 2
    trie = NameTrie.build([[5, 6, eos], [7, eos], [5, 6, eos], [5, eos], [5, 6, eos]], eos)
    rep = trie.name_of([5, 6, eos])
    assert rep == 0 and trie.names_at(rep) == [0, 2, 4] and trie.num_collisions == 2
    assert trie.names_at(trie.name_of([7, eos])) == [1]
    trie.save(tmp_path / "t.npz")
    loaded = NameTrie.load(tmp_path / "t.npz")
    assert loaded.names_at(0) == [0, 2, 4] and loaded.num_collisions == 2


def test_linker_returns_every_concept_of_a_colliding_path():
    import torch

    from angel_trl.linking.linker import EntityLinker, LinkerConfig
    from angel_trl.modeling import build_model, train_tokenizer
    from angel_trl.data.names import NameTable

    torch.manual_seed(0)
    names = ["meniere disease", "ménière disease"]  # as an accent-stripping tokenizer would see them: one path
    tokenizer = train_tokenizer(["meniere disease"], 300)
    model = build_model("tiny", tokenizer).eval()
    table = NameTable(names, [["D1"], ["D2"]], lowercase=True)
    linker = EntityLinker(model, tokenizer, table, config=LinkerConfig(num_beams=2, top_k=2))  # one path, two concepts: top-2 from one beam
    seq = linker.encoder.names(["meniere disease"])[0]
    from angel_trl.linking.trie import NameTrie

    linker.trie = NameTrie.build([seq, seq], linker.encoder.eos)  # both names on one path
    (result,) = linker.link(["[ST] meniere disease [ET]"])
    assert {c.concept_id for c in result.candidates} == {"D1", "D2"}
    assert {n for c in result.candidates for n in c.names} == set(names)
