"""Data collators: batches for encoder-decoder training with a decoder prompt."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


def pad(seqs: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    out = torch.full((len(seqs), width), value, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out


@dataclass
class PromptedSeq2SeqCollator:
    """Builds ``decoder_input_ids`` explicitly: ``[start] prompt target[:-1]``, labels masked on the prompt.

    Passing only ``labels`` would let BART shift them into decoder inputs with every -100 turned
    into pad, so the decoder would never see the prompt ``mention is`` it is conditioned on at
    inference. Features need ``input_ids``, ``prompt_ids`` and ``target_ids`` (name + EOS).
    """

    pad_token_id: int
    decoder_start_token_id: int
    label_pad_token_id: int = -100

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        input_ids = pad([f["input_ids"] for f in features], self.pad_token_id)
        decoder_inputs, labels = [], []
        for f in features:
            prompt, target = list(f["prompt_ids"]), list(f["target_ids"])
            decoder_inputs.append([self.decoder_start_token_id, *prompt, *target[:-1]])
            labels.append([self.label_pad_token_id] * len(prompt) + target)
        return {
            "input_ids": input_ids,
            "attention_mask": (input_ids != self.pad_token_id).long(),
            "decoder_input_ids": pad(decoder_inputs, self.pad_token_id),
            "labels": pad(labels, self.label_pad_token_id),
        }
