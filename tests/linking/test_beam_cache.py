"""The beam cache that skips reordering the encoder keys/values: same rankings, used by the linker."""

from dataclasses import replace

import pytest
import torch

from angel_trl.linking.beam_cache import SharedSourceBeamCache, beam_cache_kwargs
from angel_trl.linking.linker import EntityLinker, LinkerConfig
from angel_trl.modeling import build_model, train_tokenizer
from angel_trl.data.names import NameTable

INPUTS = ["Patients with [ST] lung cancer [ET] were treated.", "Immunodeficiency due to [ST] ADA [ET].", "A [ST] CF [ET] case.", "[ST] something unknown [ET]"]


@pytest.fixture(scope="module")
def linker(toy_kb):
    torch.manual_seed(0)
    table = NameTable.from_kb(toy_kb)
    tokenizer = train_tokenizer(table.names + ["patients with lung cancer were treated"], 400)
    model = build_model("tiny", tokenizer).eval()
    return EntityLinker(model, tokenizer, table, config=LinkerConfig(num_beams=6, top_k=5, batch_size=4), kb=toy_kb)


def ranked(results):
    return [[(c.concept_id, c.name, round(c.score, 4)) for c in r.candidates] for r in results]


def test_reorder_moves_self_attention_rows_and_leaves_cross_attention_alone():
    cache = SharedSourceBeamCache()
    self_kv, cross_kv = torch.arange(4.0).view(4, 1, 1, 1), torch.arange(4.0).view(4, 1, 1, 1) + 10
    cache.self_attention_cache.update(self_kv, self_kv, 0)
    cache.cross_attention_cache.update(cross_kv, cross_kv, 0)
    cache.reorder_cache(torch.tensor([1, 1, 3, 2]))
    assert cache.self_attention_cache.layers[0].keys.flatten().tolist() == [1.0, 1.0, 3.0, 2.0]
    assert cache.cross_attention_cache.layers[0].keys.flatten().tolist() == [10.0, 11.0, 12.0, 13.0]


def test_linker_decodes_with_it_and_ranks_as_the_default_cache(linker, monkeypatch):
    reorders = []
    original = SharedSourceBeamCache.reorder_cache
    monkeypatch.setattr(SharedSourceBeamCache, "reorder_cache", lambda self, idx: reorders.append(len(idx)) or original(self, idx))
    shared = linker.link(INPUTS)
    assert reorders and set(reorders) == {len(INPUTS) * linker.config.num_beams}
    seen = len(reorders)
    default_cache = EntityLinker(linker.model, linker.tokenizer, linker.table, linker.trie, replace(linker.config, beam_cache=False), linker.kb)
    assert ranked(shared) == ranked(default_cache.link(INPUTS))
    assert len(reorders) == seen  # beam_cache=False: transformers' own cache did the reordering


def test_the_cache_goes_under_the_name_the_model_takes(linker):
    (name, cache), = beam_cache_kwargs(linker.model).items()
    assert name in ("cache", "past_key_values") and isinstance(cache, SharedSourceBeamCache)
    assert beam_cache_kwargs(torch.nn.Linear(2, 2)) == {}
