"""The one place where source, prompt and name become token ids.

Training, the trie, linking and stage-2 scoring all tokenise through :class:`SequenceEncoder`, so a
name always has exactly the ids stage 1 was trained on. Names are tokenised on their own (with a
leading space), independent of the prompt, so that the trie over names is prompt-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from angel_trl.defaults import END_MARKER, START_MARKER


@dataclass(frozen=True)
class SpecialTokens:
    """Where a model family puts its special tokens, read from its tokenizer (no id is assumed).

    ============  ==============  ==============  =============  =========
    family        source          decoder prompt  name end       start
    ============  ==============  ==============  =============  =========
    BART          ``<s> … </s>``  ``<s> …``       ``</s>``       ``</s>``
    T5            ``… </s>``      ``…``           ``</s>``       ``<pad>``
    BERT2BERT     ``[CLS] … [SEP]`` ``…``         ``[SEP]``      ``[CLS]``
    ============  ==============  ==============  =============  =========

    The source frame is the tokenizer's own template (``add_special_tokens``). The decoder sees
    ``start + prompt prefix + prompt + name + end``: the prompt prefix is the template's prefix (a
    target tokenised as BART fine-tuning tokenises it), less a leading token equal to the start
    token, which already plays its part (bert2bert starts at ``[CLS]``).
    """

    source_prefix: tuple[int, ...]
    source_suffix: tuple[int, ...]
    prompt_prefix: tuple[int, ...]
    end: int
    pad: int

    @classmethod
    def of(cls, tokenizer, decoder_start_token_id: int | None = None) -> SpecialTokens:
        plain = tokenizer("a", add_special_tokens=False)["input_ids"]
        framed = tokenizer("a", add_special_tokens=True)["input_ids"]
        at = next((i for i in range(len(framed) - len(plain) + 1) if framed[i : i + len(plain)] == plain), None)
        if not plain or at is None:
            raise ValueError(f"cannot tell the special tokens of {type(tokenizer).__name__}: its template does not frame the text")
        prefix, suffix = tuple(framed[:at]), tuple(framed[at + len(plain) :])
        end = suffix[-1] if suffix else tokenizer.eos_token_id
        if end is None:
            raise ValueError(f"{type(tokenizer).__name__} has no end-of-sequence token (eos or a template suffix such as [SEP]): names could not end")
        if tokenizer.pad_token_id is None:
            raise ValueError(f"{type(tokenizer).__name__} has no pad token: batches could not be padded")
        prompt_prefix = prefix[1:] if prefix and prefix[0] == decoder_start_token_id else prefix
        return cls(prefix, suffix, prompt_prefix, end, tokenizer.pad_token_id)


class SequenceEncoder:
    """Encoder inputs, decoder prompts (BART: ``<s> mention is``) and names (`` name`` + end token).

    ``decoder_start_token_id`` (the model config's) decides whether the tokenizer's target prefix
    is already played by the start token (:class:`SpecialTokens`).
    """

    def __init__(self, tokenizer, max_source_length: int = 256, max_prompt_tokens: int = 32, max_name_tokens: int = 64, decoder_start_token_id: int | None = None):
        self.tokenizer = tokenizer
        self.max_source_length = max_source_length
        self.max_prompt_tokens = max_prompt_tokens
        self.max_name_tokens = max_name_tokens
        self.special = SpecialTokens.of(tokenizer, decoder_start_token_id)
        self.bos = tokenizer.bos_token_id  # for generate's config only; prompts use special.prompt_prefix
        self.eos = self.special.end
        self.pad = self.special.pad
        if max_source_length <= len(self.special.source_prefix) + len(self.special.source_suffix) + 2:
            raise ValueError(f"max_source_length {max_source_length} leaves no room for a mention")
        # [ST] / [ET] ids, for truncation around the mention (None: a tokenizer without them).
        to_ids = getattr(tokenizer, "convert_tokens_to_ids", None)
        markers = to_ids([START_MARKER, END_MARKER]) if to_ids else [None]
        self.markers = None if None in markers or getattr(tokenizer, "unk_token_id", None) in markers else tuple(markers)

    def sources(self, texts: Sequence[str]) -> tuple[list[list[int]], int]:
        """Token ids of encoder inputs (BOS/EOS added) and how many were truncated.

        An overlong source keeps its ``[ST] mention [ET]`` span and loses context from both sides
        (the side with more to spare first): cutting only the tail would drop the mention itself when
        the left context alone fills ``max_source_length`` (a tokenizer trained on KB names splits
        running text into many pieces)."""
        full = self._source_ids(texts)
        truncated = sum(len(ids) > self.max_source_length for ids in full)
        return [self._fit(ids) for ids in full], truncated

    def _source_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """BOS + text + EOS of each text, where the two markers are the only special tokens.

        Everything else is plain text (``split_special_tokens``): a document that says ``</s>`` or
        ``<mask>`` must not end the input early or hide a word. The marker tokens absorb the spaces
        around them (``lstrip`` / ``rstrip``), so the pieces between them are tokenised stripped:
        the ids are the ones the tokenizer gives the whole string when it holds nothing special.
        """
        if self.markers is None:
            return self.tokenizer(list(texts), add_special_tokens=True, split_special_tokens=True)["input_ids"]
        pieces, marked = [], []
        for text in texts:
            left, st, rest = text.partition(START_MARKER)
            mention, et, right = rest.partition(END_MARKER)
            marked.append(bool(st and et))
            pieces += [left.rstrip(), mention.strip(), right.lstrip()] if marked[-1] else [text, "", ""]
        ids = self.tokenizer(pieces, add_special_tokens=False, split_special_tokens=True)["input_ids"]
        st, et = self.markers
        head, tail = self.special.source_prefix, self.special.source_suffix
        return [
            [*head, *ids[3 * i], st, *ids[3 * i + 1], et, *ids[3 * i + 2], *tail] if m else [*head, *ids[3 * i], *tail]
            for i, m in enumerate(marked)
        ]

    def _fit(self, ids: list[int]) -> list[int]:
        limit = self.max_source_length
        if len(ids) <= limit:
            return ids
        n_head, n_tail = len(self.special.source_prefix), len(self.special.source_suffix)
        head, body, tail = ids[:n_head], ids[n_head : len(ids) - n_tail], ids[len(ids) - n_tail :]
        budget = limit - n_head - n_tail
        try:
            start = body.index(self.markers[0])
            end = body.index(self.markers[1], start)
        except (TypeError, ValueError):  # no markers (a tokenizer without them, or plain text): keep the head
            return [*head, *body[:budget], *tail]
        if end - start + 1 >= budget:  # the mention alone is too long: its head, closed by [ET]
            return [*head, *body[start : start + budget - 1], self.markers[1], *tail]
        room = budget - (end - start + 1)
        right = min(len(body) - end - 1, room - min(start, room // 2))
        left = min(start, room - right)
        return [*head, *body[start - left : end + 1 + right], *tail]

    def prompts(self, prompts: Sequence[str]) -> list[list[int]]:
        """The prompt prefix (BART: ``<s>``) + prompt tokens; long prompts keep their last tokens (the ``is`` must stay)."""
        # Plain text, as names: a mention "</s>" must not put an EOS into the prompt.
        ids = self.tokenizer(list(prompts), add_special_tokens=False, split_special_tokens=True)["input_ids"]
        prefix = list(self.special.prompt_prefix)
        keep = self.max_prompt_tokens - len(prefix)
        return [[*prefix, *p[-keep:]] if keep > 0 else prefix for p in ids]

    def names(self, names: Sequence[str]) -> list[list[int]]:
        """Name tokens followed by EOS; names longer than ``max_name_tokens`` are cut (rare).

        A name is plain text: a KB name that contains ``</s>`` or ``[ST]`` is tokenised as those
        characters, never as the special token (an EOS inside a name would break the trie).
        """
        return [[*n[: self.max_name_tokens], self.eos] for n in self._name_tokens(names)]

    def count_truncated_names(self, names: Sequence[str]) -> int:
        """How many of ``names`` are longer than ``max_name_tokens`` (cut: names equal up to the cut
        share one trie path, each concept still reachable; reported so it is never silent)."""
        return sum(len(n) > self.max_name_tokens for n in self._name_tokens(names))

    def _name_tokens(self, names: Sequence[str]) -> list[list[int]]:
        return self.tokenizer([" " + n for n in names], add_special_tokens=False, split_special_tokens=True)["input_ids"]
