"""Trie-constrained beam search: mentions in, ranked distinct KB concepts out.

Decoding starts from the decoder-start token; the prompt ``<s> mention is`` is forced token by
token, then only continuations of KB names in the trie are allowed. Two traps, both measured with
transformers 5, are handled by :class:`TrieConstrainedLogitsProcessor`:

* generate() adds the forced prompt tokens' log-probs to the beam score; they are masked out of the
  training loss, so they are very low and, with a length penalty, favour long names. Forced tokens
  get log-prob 0 here and the length penalty is 0, so a beam's score is exactly the summed
  log-prob of the name (+ EOS): the quantity stage 2 optimises.
* an empty allowed set makes beam search pick arbitrary tokens; we never produce one.

Beams hold synonym variants of the same concept (5 beams ~ 2.5 concepts in a prototype), so we
decode ``num_beams`` > ``top_k`` and deduplicate concepts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList

from angel_trl.linking.beam_cache import beam_cache_kwargs
from angel_trl.data.corpus import Mention
from angel_trl.progress import progress_bar
from angel_trl.text.examples import ExampleConfig, parse_marked
from angel_trl.data.files import read_json_object, read_jsonl_objects, write_json
from angel_trl.data.kb import KnowledgeBase, read_kb_jsonl
from angel_trl.data.names import NameTable
from angel_trl.text.tokenization import SequenceEncoder
from angel_trl.linking.trie import NameTrie
from angel_trl.defaults import MAX_NAME_TOKENS, check_beams
from angel_trl.errors import InputFormatError
from angel_trl.machine import check_device

logger = logging.getLogger(__name__)

LINKER_CONFIG = "linker_config.json"
TRIE_FILE = "trie.npz"
NAMES_FILE = "names.jsonl"
KB_FILE = "kb.jsonl"
# What a linker needs from a Hub repo: config, weights and tokenizer files, trie, names and KB, all
# at the top level. Checkpoint sub-folders, predictions and pickled weights (*.bin) stay on the Hub.
LINKER_HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", TRIE_FILE, NAMES_FILE, KB_FILE]


class PromptForcingLogitsProcessor(LogitsProcessor):
    """Forces each row's prompt token by token (log-prob 0) and leaves every later token free.

    Rows are ``batch * num_beams`` running beams, ``num_beams`` per prompt. On its own this is
    decoding without the trie (``LinkerConfig(constrained=False)``): the baseline the speed
    benchmark times constrained decoding against.
    """

    def __init__(self, prompts: Sequence[Sequence[int]], num_beams: int):
        self.prompts = [list(p) for p in prompts]
        self.num_beams = num_beams

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        step = input_ids.shape[1] - 1  # tokens generated after the decoder-start token
        rows = [r for r in range(scores.shape[0]) if step < len(self.prompts[r // self.num_beams])]
        if not rows:
            return scores
        return self._force(scores.clone(), rows, [self.prompts[r // self.num_beams][step] for r in rows])

    @staticmethod
    def _force(scores: torch.FloatTensor, rows: list[int], tokens: list[int]) -> torch.FloatTensor:
        """Allow only ``tokens[i]`` in row ``rows[i]``, at log-prob 0 (in place)."""
        rows_t = torch.tensor(rows)
        scores[rows_t] = -math.inf
        scores[rows_t, torch.tensor(tokens)] = 0.0
        return scores


class TrieConstrainedLogitsProcessor(PromptForcingLogitsProcessor):
    """Forces each row's prompt (log-prob 0), then restricts tokens to KB-name continuations.

    Beam search reorders the rows between steps, so a row's trie node is looked up from its
    generated name tokens (cached by prefix: each step adds one trie step per new prefix). The
    mask is built with one scatter for the whole batch.
    """

    def __init__(self, trie: NameTrie, prompts: Sequence[Sequence[int]], num_beams: int, eos_token_id: int):
        super().__init__(prompts, num_beams)
        self.trie = trie
        self.eos_token_id = eos_token_id
        self._cache: dict[tuple[int, ...], int] = {(): 0}

    def _node(self, name_tokens: tuple[int, ...]) -> int:
        node = self._cache.get(name_tokens)
        if node is None:
            parent = self._node(name_tokens[:-1])
            node = self.trie.step(parent, name_tokens[-1]) if parent >= 0 else -1
            self._cache[name_tokens] = node
        return node

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        step = input_ids.shape[1] - 1  # tokens generated after the decoder-start token
        forced_rows, forced_tokens, free_rows, nodes = [], [], [], []
        for row, seq in enumerate(input_ids.tolist()):
            prompt = self.prompts[row // self.num_beams]
            if step < len(prompt):
                forced_rows.append(row)
                forced_tokens.append(prompt[step])
            else:
                free_rows.append(row)
                nodes.append(self._node(tuple(seq[1 + len(prompt) :])))
        mask = torch.full_like(scores, -math.inf)
        if free_rows:
            rows = np.asarray(free_rows)
            node_arr = np.asarray(nodes)
            live = node_arr >= 0
            lo = np.where(live, self.trie.first_child[np.maximum(node_arr, 0)], 0)
            hi = np.where(live, self.trie.first_child[np.maximum(node_arr, 0) + 1], 0)
            counts = hi - lo
            # A finished or impossible beam may only end (EOS): the allowed set is never empty.
            dead = rows[counts == 0]
            starts = np.repeat(lo - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
            tokens = self.trie.node_token[starts + np.arange(counts.sum())].astype(np.int64)
            row_idx = np.concatenate((np.repeat(rows, counts), dead))
            tok_idx = np.concatenate((tokens, np.full(len(dead), self.eos_token_id)))
            mask[torch.from_numpy(row_idx), torch.from_numpy(tok_idx)] = 0.0
        out = scores + mask
        if forced_rows:
            out = self._force(out, forced_rows, forced_tokens)
        return out


@dataclass
class Candidate:
    """A concept the beam found: its best-scoring name and score, and every name of it the beam
    found (best first). A name shared by several concepts appears under each of them."""

    concept_id: str
    name: str
    score: float
    names: list[str] = field(default_factory=list)


@dataclass
class BeamName:
    """One finished beam: the decoded name, its score and the concepts it names."""

    name: str
    score: float
    concept_ids: list[str]


@dataclass
class LinkingResult:
    mention: str
    candidates: list[Candidate] = field(default_factory=list)
    # Every finished beam in score order (names, not concepts): what the official ANGEL code mines.
    beam: list[BeamName] = field(default_factory=list)

    @property
    def top_ids(self) -> list[str]:
        return [c.concept_id for c in self.candidates]


@dataclass
class LinkerConfig:
    """How linking runs; saved as ``linker_config.json`` beside the model."""

    num_beams: int = 10
    top_k: int = 5
    batch_size: int = 32
    max_source_length: int = 256
    max_prompt_tokens: int = 32
    max_name_tokens: int = MAX_NAME_TOKENS
    max_context_words: int = 64
    lowercase: bool = True
    # Off by default: training-time evaluation and mining score the model's own ranking.
    exact_match_first: bool = False
    # What the model was trained on: corpora linked with it should have abbreviations expanded too
    # (the data layer does it: link() takes marked text, not documents).
    expand_abbreviations: bool = False
    # 0: a beam's score is the summed log-prob of the name (what DPO optimises; exact beam search).
    # 1: the official ANGEL code's ranking (fairseq's normalize_scores): that sum divided by the
    # decoded length, prompt tokens included; favours long names.
    length_penalty: float = 0.0
    # Switches for speed benchmarking only (benchmarks/speed_bench.py times what each part of
    # decoding costs); leave them on. constrained=False forces the prompt but drops the trie:
    # decoded names that are no KB name link nothing. beam_cache=False decodes with transformers'
    # default cache, which copies the encoder keys/values at every beam reorder (see beam_cache).
    constrained: bool = True
    beam_cache: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` for settings that cannot decode as asked (run again after editing fields)."""
        check_beams(self.num_beams, self.top_k)

    @property
    def example_config(self) -> ExampleConfig:
        return ExampleConfig(max_context_words=self.max_context_words, lowercase=self.lowercase)


def read_linker_config(path: Path, overrides: dict | None = None) -> LinkerConfig:
    """The :class:`LinkerConfig` saved at ``path``, with ``overrides`` (this run's settings) in place
    of saved fields; a damaged file, an unknown field or a value of the wrong type or range is an
    :class:`InputFormatError` naming it and the field (not a TypeError from deep inside loading).
    A missing field takes its default (files written before it). Settings that cannot decode
    together are judged with the overrides in: ``num_beams`` given for this run may make room for
    a saved ``top_k``; where the overrides alone are at fault, the error is a ``ValueError``."""
    saved = read_json_object(path)
    overrides = dict(overrides or {})
    known = [f.name for f in fields(LinkerConfig)]
    if unknown_overrides := [key for key in overrides if key not in known]:
        raise ValueError(f"unknown linker setting(s) {', '.join(map(repr, unknown_overrides))}; a linker config has {', '.join(known)}")
    for f in fields(LinkerConfig):  # this run's settings pass the checks the saved ones do
        if f.name in overrides and (problem := _config_value_problem(f.type, overrides[f.name], _CONFIG_LEAST.get(f.name, 1))):
            raise ValueError(f"linker setting {f.name} {problem}, not {overrides[f.name]!r}")
    for name in _SAVED_WITH_THE_TRIE:
        if name in overrides and name in saved and overrides[name] != saved[name]:
            raise ValueError(f"linker setting {name} is {saved[name]!r} in {path}: the saved names and trie were built with it, so a run cannot change it")
    unknown = [key for key in saved if key not in known]
    if unknown:
        raise InputFormatError(path, None, f"unknown field(s) {', '.join(map(repr, unknown))}; a linker config has {', '.join(known)}")
    for f in fields(LinkerConfig):
        problem = _config_value_problem(f.type, saved[f.name], _CONFIG_LEAST.get(f.name, 1)) if f.name in saved else None
        if problem:
            raise InputFormatError(path, None, f"{f.name} {problem}, not {json.dumps(saved[f.name])}")
    try:
        return LinkerConfig(**{**saved, **overrides})
    except ValueError as e:  # settings that cannot decode together (more top_k than beams)
        if overrides and _valid_config(saved):
            settings = ", ".join(f"{k}={v}" for k, v in overrides.items())
            raise ValueError(f"{e} (the saved linker config with {settings})") from None
        raise InputFormatError(path, None, str(e)) from None


def _valid_config(saved: dict) -> bool:
    try:
        LinkerConfig(**saved)
    except ValueError:
        return False
    return True


# Settings the saved name table and trie were built with: loading cannot change them.
_SAVED_WITH_THE_TRIE = ("lowercase", "max_name_tokens")

# The least value of LinkerConfig's integer fields: 1, but no context words is a setting.
_CONFIG_LEAST = {"max_context_words": 0}


def _config_value_problem(kind: str, value: object, least: int) -> str | None:
    """What is wrong with ``value`` for a LinkerConfig field of type ``kind`` (its annotation: bool,
    int or float, the only types LinkerConfig has), or None."""
    if kind == "bool":
        return None if isinstance(value, bool) else "must be true or false"
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "int":
        return None if number and isinstance(value, int) and value >= least else f"must be an integer of at least {least}"
    return None if number and abs(value) < math.inf else "must be a finite number"  # NaN fails the test too


@dataclass
class LinkInput:
    """One mention to link: the encoder text (``left [ST] mention [ET] right``) and the mention."""

    source: str
    mention: str

    @classmethod
    def from_marked(cls, text: str, config: ExampleConfig) -> LinkInput:
        """Parse ``... [ST] mention [ET] ...`` (marked by the user); exactly one span."""
        inputs = cls.all_from_marked(text, config)
        if len(inputs) > 1:
            # One input, one result: linking only the first span would drop the others silently.
            raise ValueError(f"{len(inputs)} marked mentions in {text!r}; one input links one mention (LinkInput.all_from_marked reads them all)")
        return inputs[0]

    @classmethod
    def all_from_marked(cls, text: str, config: ExampleConfig) -> list[LinkInput]:
        """One input per ``[ST] mention [ET]`` span of ``text``; the other spans are context, unmarked."""
        plain, spans = parse_marked(text)
        return [cls(config.source(plain, start, end), plain[start:end]) for start, end in spans]


def same_concepts(a: KnowledgeBase, b: KnowledgeBase) -> bool:
    """Whether two KBs hold the same concepts with the same names."""
    return a.concepts.keys() == b.concepts.keys() and all(a.concepts[c].names == b.concepts[c].names for c in a.concepts)


def as_link_inputs(inputs: Sequence[LinkInput | str], config: ExampleConfig) -> list[LinkInput]:
    """``inputs`` as :class:`LinkInput` objects, marked strings parsed. One string or one input
    given alone (read as a sequence of characters, or not at all), or an item of another type, is a
    ``TypeError`` saying what ``link`` takes; an input with no mention a ``ValueError``."""
    if isinstance(inputs, (str, LinkInput)):
        raise TypeError(f"link() takes a list of inputs, not one {type(inputs).__name__}: link([x])")
    items = []
    for i, x in enumerate(inputs):
        if isinstance(x, str):
            items.append(LinkInput.from_marked(x, config))
        elif isinstance(x, LinkInput):
            if not x.mention.strip():
                raise ValueError(f"input {i}: LinkInput with an empty mention")
            items.append(x)
        else:
            raise TypeError(f"input {i} is a {type(x).__name__}: link() takes strings marked '[ST] mention [ET]' or LinkInput objects")
    return items


def put_exact_matches_first(result: LinkingResult, table: NameTable, top_k: int) -> LinkingResult:
    """Rank first the concepts having a name equal to the mention (normalised as ``table`` does).

    Among those, the model's order; one the beam missed comes next with score 0.0 (log-prob 0: a
    dictionary hit), then the remaining model candidates. Constrained decoding can prefer another
    concept's name even when the mention is itself a KB name (NCBI test: 93.6 vs 98.3 acc@1 for
    TF-IDF on mentions within 0.8-1.0 TF-IDF similarity of their gold name).
    """
    i = table.index_of(result.mention)
    if i is None:
        return result
    exact = table.concept_ids[i]
    ranked = [c for c in result.candidates if c.concept_id in exact]
    missing = [Candidate(cid, table.names[i], 0.0) for cid in exact if cid not in {c.concept_id for c in ranked}]
    rest = [c for c in result.candidates if c.concept_id not in exact]
    return LinkingResult(result.mention, (ranked + missing + rest)[:top_k])


def build_name_trie(table: NameTable, encoder: SequenceEncoder) -> NameTrie:
    """The trie over every name of ``table``, tokenised exactly as training and linking tokenise names.

    A name that tokenises to nothing (EOS alone: a tokenizer may drop every character of it) is left
    out, with a warning: in the trie it would let decoding stop right after the prompt.
    """
    sequences = encoder.names(table.names)
    if all(len(s) > 1 for s in sequences):
        return _report_collisions(NameTrie.build(sequences, encoder.eos), table)
    keep = np.flatnonzero([len(s) > 1 for s in sequences])
    empty = [table.names[i] for i, s in enumerate(sequences) if len(s) <= 1]
    logger.warning("%d name(s) tokenise to nothing and are left out of the trie, e.g. %r", len(empty), empty[:3])
    if len(keep) == 0:
        raise ValueError("every name tokenises to nothing: no trie to decode with")
    trie = NameTrie.build([sequences[i] for i in keep], encoder.eos)
    # The trie numbers the kept names 0..len(keep)-1: map them back to indices of ``table``.
    trie.terminal_name = np.where(trie.terminal_name >= 0, keep[trie.terminal_name], -1).astype(trie.terminal_name.dtype)
    trie.alias_rep, trie.alias_name = keep[trie.alias_rep], keep[trie.alias_name]
    return _report_collisions(trie, table)


def _report_collisions(trie: NameTrie, table: NameTable) -> NameTrie:
    if trie.num_collisions:
        example = [(table.names[int(r)], table.names[int(n)]) for r, n in zip(trie.alias_rep[:2], trie.alias_name[:2])]
        logger.warning("%d name(s) tokenise to the same tokens as another name (one trie path; every concept of it stays reachable), e.g. %r", trie.num_collisions, example)
    return trie


def resolve_linker_dir(dir_or_hub_id: str | Path, revision: str | None = None, token: str | None = None) -> Path:
    """``dir_or_hub_id`` if it is a local directory, else the snapshot of the linker files of that Hub
    model repo (downloaded into the Hub cache, or found there when offline)."""
    directory = Path(dir_or_hub_id)
    if directory.is_dir():
        if revision is not None:
            raise ValueError(f"revision={revision!r} applies to Hub ids, but {dir_or_hub_id} is a local directory")
        return directory
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    try:
        snapshot = Path(snapshot_download(str(dir_or_hub_id), revision=revision, token=token, allow_patterns=LINKER_HUB_PATTERNS, ignore_patterns=["*/*"]))
    except HFValidationError:
        raise FileNotFoundError(f"{dir_or_hub_id}: no such linker directory, and not a Hub id 'owner/name'") from None
    if not (snapshot / LINKER_CONFIG).exists():
        raise FileNotFoundError(f"Hub repo {dir_or_hub_id} has no {LINKER_CONFIG}: not a linker saved by angel-trl")
    return snapshot


class EntityLinker:
    """Batched constrained beam search over a trie of KB names."""

    def __init__(self, model, tokenizer, table: NameTable, trie: NameTrie | None = None, config: LinkerConfig | None = None, kb: KnowledgeBase | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.table = table
        self.kb = kb
        self.config = config or LinkerConfig(lowercase=table.lowercase)
        self.config.validate()
        if self.config.lowercase != table.lowercase:
            raise ValueError("linker config and name table disagree on lowercasing")
        positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)  # a stand-in model may have no config
        if positions is not None and self.config.max_source_length > positions:
            # A longer source would index past the position embeddings (an IndexError deep in torch).
            raise ValueError(f"max_source_length ({self.config.max_source_length}) is more than the model's {positions} positions (max_position_embeddings)")
        self.encoder = SequenceEncoder(tokenizer, self.config.max_source_length, self.config.max_prompt_tokens, self.config.max_name_tokens, decoder_start_token_id(model))
        self.trie = trie if trie is not None else build_name_trie(table, self.encoder)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_kb(cls, model, tokenizer, kb: KnowledgeBase, config: LinkerConfig | None = None) -> EntityLinker:
        config = config or LinkerConfig()
        return cls(model, tokenizer, NameTable.from_kb(kb, config.lowercase), config=config, kb=kb)

    def over_kb(self, kb: KnowledgeBase, warn: Callable[[str], object] = logger.warning) -> EntityLinker:
        """This linker, or one that decodes over ``kb`` with its own trie when ``kb`` has other
        concepts or names than the linker's (``warn`` says so). The trie decides what can be
        predicted: scoring against a KB the trie does not hold would report the saved KB's results
        under ``kb``'s name. A linker saved without its KB takes ``kb`` when its names are ``kb``'s."""
        if self.kb is not None and same_concepts(kb, self.kb):
            return self
        if self.kb is None:
            table = NameTable.from_kb(kb, self.config.lowercase)
            if table.names == self.table.names and table.concept_ids == self.table.concept_ids:
                self.kb = kb
                return self
        saved = "its saved KB differs" if self.kb is not None else "its saved names differ"
        warn(f"linking over {kb.source} ({len(kb)} concepts, {kb.num_names} names): {saved}, so its name trie is rebuilt")
        return EntityLinker.from_kb(self.model, self.tokenizer, kb, self.config)

    def save_artifacts(self, directory: str | Path) -> None:
        """Write trie, name table, KB and linker config next to a saved model."""
        directory = Path(directory)
        self.trie.save(directory / TRIE_FILE)
        self.table.save(directory / NAMES_FILE)
        if self.kb is not None:
            self.kb.to_jsonl(directory / KB_FILE)
        write_json(directory / LINKER_CONFIG, asdict(self.config))

    @classmethod
    def from_pretrained(cls, dir_or_hub_id: str | Path, revision: str | None = None, token: str | None = None, device: str | None = None, **config_overrides) -> EntityLinker:
        """Load model, tokenizer, trie, names (and KB when saved) from a linker directory, or from a
        Hub model repo holding one (``revision`` and ``token`` apply to Hub ids)."""
        from angel_trl.modeling import load_pretrained

        directory = resolve_linker_dir(dir_or_hub_id, revision, token)
        config = read_linker_config(directory / LINKER_CONFIG, config_overrides)  # checked before the model loads
        if device:
            check_device(device)
        model, tokenizer = load_pretrained(str(directory))
        if device:
            model.to(device)
        kb = read_kb_jsonl(directory / KB_FILE) if (directory / KB_FILE).exists() else None
        table, trie = NameTable.load(directory / NAMES_FILE), NameTrie.load(directory / TRIE_FILE)
        check_linker_files(directory, config, table, trie, kb)
        linker = cls(model, tokenizer, table, trie, config, kb)
        check_trie_tokens(directory, linker)
        return linker

    # ------------------------------------------------------------------ linking
    def inputs_for(self, mentions: Sequence[Mention], texts: dict[str, str]) -> list[LinkInput]:
        ex = self.config.example_config
        return [LinkInput(ex.source_for(m, texts[m.doc_id]), m.text) for m in mentions]

    def link(self, inputs: Sequence[LinkInput | str], show_progress: bool = False) -> list[LinkingResult]:
        """Link each input (a :class:`LinkInput` or a string with ``[ST] mention [ET]``); with
        ``config.exact_match_first``, exact name matches are ranked first (:func:`put_exact_matches_first`)."""
        ex = self.config.example_config
        items = as_link_inputs(inputs, ex)
        results: list[LinkingResult] = []
        bs = self.config.batch_size
        batches = range(0, len(items), bs)
        for lo in progress_bar(batches, show=show_progress, desc="linking", unit="batch"):
            results.extend(self._link_batch(items[lo : lo + bs]))
        if self.config.exact_match_first:
            results = [put_exact_matches_first(r, self.table, self.config.top_k) for r in results]
        return results

    @torch.no_grad()
    def _link_batch(self, items: Sequence[LinkInput]) -> list[LinkingResult]:
        input_ids, attention, prompts = self._encode(items)
        out = self._generate(input_ids, attention, prompts)
        sequences = out.sequences.tolist()
        scores = out.sequences_scores.tolist() if self.config.num_beams > 1 else self._greedy_scores(out, prompts)
        n = self.config.num_beams  # generate returns each mention's n beams as consecutive rows
        results = []
        for i, it in enumerate(items):
            rows = slice(i * n, (i + 1) * n)
            results.append(self._ranked_concepts(it.mention, sequences[rows], scores[rows], 1 + len(prompts[i])))
        return results

    def _greedy_scores(self, out, prompts: Sequence[Sequence[int]]) -> list[float]:
        """What beam search would score the one sequence of each row, for ``num_beams=1``.

        transformers decodes greedily then and returns no sequence scores; its ``scores`` are the
        processed logits, not log-probabilities. Beam search's score is the summed log-softmax of
        the raw logits over the name tokens (the forced prompt adds 0), divided by the decoded
        length to the power ``length_penalty``: recomputed here from the raw logits.
        """
        log_probs = torch.stack(out.logits, dim=1).float().log_softmax(-1)
        generated = out.sequences[:, 1:]  # after the decoder-start token, one per step
        token_log_probs = log_probs.gather(-1, generated.unsqueeze(-1)).squeeze(-1).tolist()
        scores = []
        for i, prompt in enumerate(prompts):
            name = _until_eos(generated[i, len(prompt) :].tolist(), self.encoder.eos)
            total = sum(token_log_probs[i][len(prompt) : len(prompt) + len(name)])
            scores.append(total / (len(prompt) + len(name)) ** self.config.length_penalty)
        return scores

    def _encode(self, items: Sequence[LinkInput]) -> tuple[torch.Tensor, torch.Tensor, list[list[int]]]:
        """A batch's encoder input ids and attention mask (right-padded) and its decoder prompts."""
        ex = self.config.example_config
        sources, _ = self.encoder.sources([it.source for it in items])
        prompts = self.encoder.prompts([ex.prompt(it.mention) for it in items])
        width = max(map(len, sources))
        input_ids = torch.full((len(items), width), self.encoder.pad, dtype=torch.long)
        attention = torch.zeros_like(input_ids)
        for i, s in enumerate(sources):
            input_ids[i, : len(s)] = torch.tensor(s)
            attention[i, : len(s)] = 1
        return input_ids, attention, prompts

    def _generation_config(self, prompts: Sequence[Sequence[int]]) -> GenerationConfig:
        """Exact beam search returning every beam with its score, nothing from the checkpoint's config."""
        cfg = self.config
        # Exact beam search: with length penalty 0 a running beam's score can only fall, so stopping
        # once no running beam beats the worst finished one ("never" or False, the same test at
        # length penalty 0) loses nothing. True stops as soon as num_beams hypotheses have finished,
        # while a running beam may still end above them. With a positive length penalty "never"
        # bounds a running beam by the longest length allowed (transformers). One beam is greedy
        # search, where both settings mean nothing (transformers warns if they are set).
        beam = {"length_penalty": cfg.length_penalty, "early_stopping": "never"} if cfg.num_beams > 1 else {}
        return GenerationConfig(
            num_beams=cfg.num_beams,
            num_return_sequences=cfg.num_beams,
            max_new_tokens=max(map(len, prompts)) + cfg.max_name_tokens + 1,
            **beam,
            do_sample=False,
            decoder_start_token_id=self.model.config.decoder_start_token_id,
            bos_token_id=self.encoder.bos,
            eos_token_id=self.encoder.eos,
            pad_token_id=self.encoder.pad,
            forced_bos_token_id=None,
            forced_eos_token_id=None,
            no_repeat_ngram_size=0,
            return_dict_in_generate=True,
            output_scores=True,
            # One beam is greedy search, which returns no sequence scores: _greedy_scores needs the raw logits.
            output_logits=cfg.num_beams == 1,
        )

    def _logits_processor(self, prompts: Sequence[Sequence[int]]) -> PromptForcingLogitsProcessor:
        if self.config.constrained:
            return TrieConstrainedLogitsProcessor(self.trie, prompts, self.config.num_beams, self.encoder.eos)
        return PromptForcingLogitsProcessor(prompts, self.config.num_beams)

    def _generate(self, input_ids: torch.Tensor, attention: torch.Tensor, prompts: Sequence[Sequence[int]]):
        """Beam search over one batch, in eval mode (a model being trained is put back in training mode)."""
        gen_config = self._generation_config(prompts)
        cache = beam_cache_kwargs(self.model) if self.config.beam_cache else {}
        device = self.model.device
        was_training = self.model.training
        self.model.eval()
        with own_generation_config(self.model, gen_config):
            out = self.model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention.to(device),
                generation_config=gen_config,
                logits_processor=LogitsProcessorList([self._logits_processor(prompts)]),
                **cache,
            )
        if was_training:
            self.model.train()
        return out

    def _ranked_concepts(self, mention: str, sequences: list[list[int]], scores: list[float], offset: int) -> LinkingResult:
        """One mention's beams (decoded tokens, the name starting at ``offset``, and scores, best
        first) as its finished beams and its ``top_k`` distinct concepts."""
        result = LinkingResult(mention)
        by_concept: dict[str, Candidate] = {}
        for sequence, score in zip(sequences, scores):
            if not math.isfinite(score):
                continue
            name_idx = self.trie.name_of(_until_eos(sequence[offset:], self.encoder.eos))
            if name_idx < 0:
                continue
            # Every name on this token path (several when names collide), each with its concepts.
            named = [(self.table.names[j], cid) for j in self.trie.names_at(name_idx) for cid in self.table.concept_ids[j]]
            result.beam.append(BeamName(named[0][0], score, list(dict.fromkeys(cid for _, cid in named))))
            for name, cid in named:
                cand = by_concept.get(cid)
                if cand is not None:
                    if name not in cand.names:
                        cand.names.append(name)
                elif len(result.candidates) < self.config.top_k:
                    by_concept[cid] = Candidate(cid, name, score, [name])
                    result.candidates.append(by_concept[cid])
        return result


def check_linker_files(directory: Path, config: LinkerConfig, table: NameTable, trie: NameTrie, kb: KnowledgeBase | None) -> None:
    """Refuse a linker directory whose files do not belong together (one replaced by another
    linker's, or damaged) with an :class:`InputFormatError` naming the file, where linking would
    otherwise fail with an IndexError or silently predict ids the KB lacks. Vectorised or one pass:
    cheap beside loading the files, even for a 676k-name KB."""
    names, trie_file = directory / NAMES_FILE, directory / TRIE_FILE
    if table.lowercase != config.lowercase:
        raise InputFormatError(names, 1, f"written with lowercase={json.dumps(table.lowercase)} but {LINKER_CONFIG} says lowercase={json.dumps(config.lowercase)}: the two files are not from one linker")
    indices = np.concatenate([trie.terminal_name[trie.terminal_name >= 0], trie.alias_rep, trie.alias_name])
    if len(indices) and int(indices.max()) >= len(table):
        raise InputFormatError(trie_file, None, f"its paths end in name #{int(indices.max())} but {NAMES_FILE} holds {len(table)} names: the two files are not from one linker (a cut {NAMES_FILE}?)")
    if kb is not None:
        _check_names_in_kb(directory, table, kb)


def _check_names_in_kb(directory: Path, table: NameTable, kb: KnowledgeBase) -> None:
    """The concepts of ``names.jsonl`` must be those of ``kb.jsonl``: both were written from one KB."""
    ids = {cid for row in table.concept_ids for cid in row}
    unknown = ids - kb.concepts.keys()
    if unknown:
        row = next(i for i, row in enumerate(table.concept_ids) if not unknown.isdisjoint(row))
        example = next(cid for cid in table.concept_ids[row] if cid in unknown)
        raise InputFormatError(
            directory / NAMES_FILE, _names_line(directory / NAMES_FILE, row),
            f"concept id {example!r}{f' (and {len(unknown) - 1} more of this file)' if len(unknown) > 1 else ''} is not in {KB_FILE}: the two files are not from one linker",
        )
    unnamed = kb.concepts.keys() - ids
    if unnamed:
        raise InputFormatError(directory / KB_FILE, None, f"{len(unnamed)} concept(s) have no name in {NAMES_FILE}, e.g. {', '.join(sorted(unnamed)[:3])}: the two files are not from one linker")


def _names_line(path: Path, index: int) -> int:
    """The line of ``names.jsonl`` holding name ``index`` (read again: only an error needs it)."""
    rows = read_jsonl_objects(path)
    next(rows)  # the header
    return next(lineno for i, (lineno, _) in enumerate(rows) if i == index)


# Names of the table that the spot check of check_trie_tokens walks through the trie.
_SPOT_CHECKS = 16


def check_trie_tokens(directory: Path, linker: EntityLinker) -> None:
    """Refuse a ``trie.npz`` that was not built from this directory's names with its tokenizer: its
    EOS and token ids must be the tokenizer's, every name it leaves out must tokenise to nothing (as
    :func:`build_name_trie` leaves them out), and a sample of names must walk to themselves."""
    trie, table, encoder = linker.trie, linker.table, linker.encoder
    path = directory / TRIE_FILE
    if trie.eos_token_id != encoder.eos:
        raise InputFormatError(path, None, f"built with EOS token {trie.eos_token_id} but the tokenizer's is {encoder.eos}: not this model's trie")
    if int(trie.node_token.max()) >= len(linker.tokenizer):
        raise InputFormatError(path, None, f"holds token id {int(trie.node_token.max())} but the tokenizer has {len(linker.tokenizer)}: not this model's trie")
    reached = np.zeros(len(table), dtype=bool)
    reached[trie.terminal_name[trie.terminal_name >= 0]] = True
    reached[trie.alias_name] = True
    # Usually none is left out: tokenise those in slices, stopping at the first that should not be.
    left_out = np.flatnonzero(~reached).tolist()
    for lo in range(0, len(left_out), 1000):
        part = left_out[lo : lo + 1000]
        found = next((i for i, s in zip(part, encoder.names([table.names[i] for i in part])) if len(s) > 1), None)
        if found is not None:
            raise InputFormatError(path, None, f"has no path for name {table.names[found]!r} of {NAMES_FILE} ({len(left_out)} names left out): the two files are not from one linker")
    sample = np.unique(np.linspace(0, len(table) - 1, _SPOT_CHECKS).astype(np.int64)).tolist()
    for i, tokens in zip(sample, encoder.names([table.names[i] for i in sample])):
        end = trie.name_of(tokens)
        if len(tokens) > 1 and (end < 0 or i not in trie.names_at(end)):
            raise InputFormatError(path, None, f"the tokens of name {table.names[i]!r} of {NAMES_FILE} do not lead to it: the trie and the names are not from one linker (or the tokenizer changed)")


def decoder_start_token_id(model) -> int | None:
    """The token every decoder sequence starts with (the model config's; an EncoderDecoderModel's
    own config holds it, not its decoder's)."""
    return getattr(getattr(model, "config", None), "decoder_start_token_id", None)


@contextlib.contextmanager
def own_generation_config(model, config: GenerationConfig) -> Iterator[None]:
    """Make ``config`` the model's own generation config while decoding.

    transformers 5 fills every field a passed config leaves unset (``None``) from
    ``model.generation_config``: a checkpoint shipping ``min_length: 56`` (bart-large-cnn),
    ``no_repeat_ngram_size``, ``suppress_tokens`` or ``repetition_penalty`` would silently change
    constrained decoding (``min_length`` longer than every name links nothing). With ours in its
    place only transformers' neutral global defaults fill the gaps.
    """
    saved = model.generation_config
    model.generation_config = config
    try:
        yield
    finally:
        model.generation_config = saved


def _until_eos(tokens: list[int], eos: int) -> list[int]:
    return tokens[: tokens.index(eos) + 1] if eos in tokens else tokens
