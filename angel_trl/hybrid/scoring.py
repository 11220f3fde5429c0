"""Teacher-forced scores of given names: log p(name + EOS | mention in context, prompt).

This is the quantity a beam carries at length penalty 0 (the forced prompt counts 0) and the
log-prob stage 2 optimises, so a retrieved candidate the beam never reached gets a score on the
same scale as the beam's own. The encoder runs once per mention; its states are shared by all the
names scored for that mention.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers.modeling_outputs import BaseModelOutput

from angel_trl.text.tokenization import SequenceEncoder


def _padded(rows: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids, mask


@torch.no_grad()
def name_log_probs(
    model,
    encoder: SequenceEncoder,
    sources: Sequence[str],
    prompts: Sequence[str],
    names: Sequence[Sequence[str]],
    mentions_per_batch: int = 16,
    names_per_batch: int = 256,
) -> list[list[float]]:
    """``names[i]``'s scores for mention ``i`` (its encoder text ``sources[i]``, decoder prompt
    ``prompts[i]``), tokenised exactly as the trie and training tokenise them."""
    was_training = model.training
    model.eval()
    device = model.device
    start = model.config.decoder_start_token_id
    scores: list[list[float]] = []
    try:
        for lo in range(0, len(sources), mentions_per_batch):
            hi = min(lo + mentions_per_batch, len(sources))
            source_ids, _ = encoder.sources(sources[lo:hi])
            prompt_ids = encoder.prompts(prompts[lo:hi])
            input_ids, attention = _padded(source_ids, encoder.pad)
            hidden = model.get_encoder()(input_ids=input_ids.to(device), attention_mask=attention.to(device)).last_hidden_state
            # (mention, prompt length, decoder sequence) of every name of this batch of mentions
            rows = []
            for m in range(hi - lo):
                if names[lo + m]:
                    rows.extend((m, len(prompt_ids[m]), [start, *prompt_ids[m], *name]) for name in encoder.names(list(names[lo + m])))
            flat: list[float] = []
            for r0 in range(0, len(rows), names_per_batch):
                flat.extend(_score_rows(model, hidden, attention.to(device), rows[r0 : r0 + names_per_batch], encoder.pad))
            it = iter(flat)
            scores.extend([next(it) for _ in names[i]] for i in range(lo, hi))
    finally:
        if was_training:
            model.train()
    return scores


def _score_rows(model, hidden: torch.Tensor, attention: torch.Tensor, rows: list[tuple[int, int, list[int]]], pad: int) -> list[float]:
    """Summed log-probs of each row's tokens after its prompt, one decoder pass for all rows."""
    owner = torch.tensor([m for m, _, _ in rows], device=hidden.device)
    decoder_ids, decoder_mask = _padded([seq[:-1] for _, _, seq in rows], pad)
    targets, _ = _padded([seq[1:] for _, _, seq in rows], pad)
    out = model(
        encoder_outputs=BaseModelOutput(last_hidden_state=hidden.index_select(0, owner)),
        attention_mask=attention.index_select(0, owner),
        decoder_input_ids=decoder_ids.to(hidden.device),
        decoder_attention_mask=decoder_mask.to(hidden.device),
    )
    logp = torch.log_softmax(out.logits.float(), dim=-1)
    token_logp = logp.gather(-1, targets.to(hidden.device).unsqueeze(-1)).squeeze(-1)
    # Score only the name and its EOS: the prompt is forced during decoding and counts 0 there.
    positions = torch.arange(targets.shape[1], device=hidden.device)
    prompt_len = torch.tensor([p for _, p, _ in rows], device=hidden.device)
    length = torch.tensor([len(seq) - 1 for _, _, seq in rows], device=hidden.device)
    keep = (positions[None, :] >= prompt_len[:, None]) & (positions[None, :] < length[:, None])
    return (token_logp * keep).sum(-1).tolist()
