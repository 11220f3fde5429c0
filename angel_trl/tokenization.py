"""The one place where source, prompt and name become token ids.

Training, the trie, linking and stage-2 scoring all tokenise through :class:`SequenceEncoder`, so a
name always has exactly the ids stage 1 was trained on. Names are tokenised on their own (with a
leading space), independent of the prompt, so that the trie over names is prompt-free.
"""

from __future__ import annotations

from collections.abc import Sequence


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

    def sources(self, texts: Sequence[str]) -> tuple[list[list[int]], int]:
        """Token ids of encoder inputs (BOS/EOS added) and how many were truncated."""
        full = self.tokenizer(list(texts), add_special_tokens=True)["input_ids"]
        truncated = sum(len(ids) > self.max_source_length for ids in full)
        out = [ids if len(ids) <= self.max_source_length else ids[: self.max_source_length - 1] + [self.eos] for ids in full]
        return out, truncated

    def prompts(self, prompts: Sequence[str]) -> list[list[int]]:
        """``<s>`` + prompt tokens; long prompts keep their last tokens (the ``is`` must stay)."""
        ids = self.tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
        return [[self.bos, *p[-(self.max_prompt_tokens - 1) :]] for p in ids]

    def names(self, names: Sequence[str]) -> list[list[int]]:
        """Name tokens followed by EOS; names longer than ``max_name_tokens`` are cut (rare).

        A name is plain text: a KB name that contains ``</s>`` or ``[ST]`` is tokenised as those
        characters, never as the special token (an EOS inside a name would break the trie).
        """
        ids = self.tokenizer([" " + n for n in names], add_special_tokens=False, split_special_tokens=True)["input_ids"]
        return [[*n[: self.max_name_tokens], self.eos] for n in ids]
