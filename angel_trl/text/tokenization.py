"""The one place where source, prompt and name become token ids.

Training, the trie, linking and stage-2 scoring all tokenise through :class:`SequenceEncoder`, so a
name always has exactly the ids stage 1 was trained on. Names are tokenised on their own (with a
leading space), independent of the prompt, so that the trie over names is prompt-free.
"""

from __future__ import annotations

from collections.abc import Sequence

from angel_trl.defaults import END_MARKER, START_MARKER


class SequenceEncoder:
    """Encoder inputs, decoder prompts (``<s> mention is``) and names (`` name`` + ``</s>``)."""

    def __init__(self, tokenizer, max_source_length: int = 256, max_prompt_tokens: int = 32, max_name_tokens: int = 64):
        self.tokenizer = tokenizer
        self.max_source_length = max_source_length
        self.max_prompt_tokens = max_prompt_tokens
        self.max_name_tokens = max_name_tokens
        self.bos = tokenizer.bos_token_id
        self.eos = tokenizer.eos_token_id
        self.pad = tokenizer.pad_token_id
        if self.bos is None or self.eos is None or self.pad is None:
            raise ValueError("the tokenizer needs bos, eos and pad tokens (a BART-family tokenizer)")
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
        return [
            [self.bos, *ids[3 * i], st, *ids[3 * i + 1], et, *ids[3 * i + 2], self.eos] if m else [self.bos, *ids[3 * i], self.eos]
            for i, m in enumerate(marked)
        ]

    def _fit(self, ids: list[int]) -> list[int]:
        limit = self.max_source_length
        if len(ids) <= limit:
            return ids
        body, budget = ids[1:-1], limit - 2
        try:
            start = body.index(self.markers[0])
            end = body.index(self.markers[1], start)
        except (TypeError, ValueError):  # no markers (a tokenizer without them, or plain text): keep the head
            return ids[: limit - 1] + [self.eos]
        if end - start + 1 >= budget:  # the mention alone is too long: its head, closed by [ET]
            return [ids[0], *body[start : start + budget - 1], self.markers[1], ids[-1]]
        room = budget - (end - start + 1)
        right = min(len(body) - end - 1, room - min(start, room // 2))
        left = min(start, room - right)
        return [ids[0], *body[start - left : end + 1 + right], ids[-1]]

    def prompts(self, prompts: Sequence[str]) -> list[list[int]]:
        """``<s>`` + prompt tokens; long prompts keep their last tokens (the ``is`` must stay)."""
        # Plain text, as names: a mention "</s>" must not put an EOS into the prompt.
        ids = self.tokenizer(list(prompts), add_special_tokens=False, split_special_tokens=True)["input_ids"]
        return [[self.bos, *p[-(self.max_prompt_tokens - 1) :]] for p in ids]

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
