"""Drift of each derived model from the baseline, per dimension (DESIGN §7)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from trustdiff.backends.reasoning import THINK
from trustdiff.drift.kl import KLEstimate, TokenLogprobs, estimate_kl
from trustdiff.drift.scorer import Scorer
from trustdiff.errors import TrustdiffError
from trustdiff.records import Item, Outcome, Sample

SERVER_REASONING_FIELDS = ("reasoning_content", "reasoning", "thinking")


def response_parts(sample: Sample) -> tuple[list[str], list[bool]]:
    """Split the generated text into (parts, is_reasoning) for teacher forcing.

    A server that split the reasoning off (`reasoning_content` / `reasoning` / `thinking`) sent
    it apart from `content` (the sample's `raw`): the generated text is rebuilt as
    `reasoning</think>content` (how the `<think>`-style models behind such parsers write it;
    the reasoning alone when there is no content)."""
    raw = sample.raw
    fields = (sample.raw_fields.get(f) for f in SERVER_REASONING_FIELDS)
    field = next((v for v in fields if isinstance(v, str) and v), None)
    if field is not None:
        return ([field + THINK.close, raw], [True, False]) if raw else ([field], [True])
    if sample.outcome is Outcome.TRUNCATED or (sample.reasoning is not None and not sample.answer):
        return [raw], [True]
    if sample.reasoning is None or not sample.answer:
        return [raw], [False]
    cut = raw.rfind(sample.answer)
    if cut <= 0:
        return [raw], [False]
    return [raw[:cut], raw[cut:]], [True, False]


def teacher_force(
    samples: Sequence[Sample],
    items: Mapping[str, Item],
    source: Scorer,
    other: Scorer,
) -> list[TokenLogprobs]:
    """Log-probs of each sample's response under the model that wrote it and the other one."""
    if source.tokenizer_id() != other.tokenizer_id():
        raise TrustdiffError(
            f"drift needs identical tokenizers: {source.spec.label!r} and {other.spec.label!r} "
            "tokenize differently, so their log-probs of one response are not comparable"
        )
    out = []
    for s in samples:
        parts, is_reasoning = response_parts(s)
        if s.outcome is Outcome.ERROR or not "".join(parts):
            continue
        messages = items[s.item_id].messages
        lp_from, owner = source.response_logprobs(messages, parts)
        lp_to, _ = other.response_logprobs(messages, parts)
        if len(lp_from) != len(lp_to):  # same text, same tokenizer: a mismatch is a bug
            raise TrustdiffError("teacher forcing produced different token counts")
        mask = np.asarray([is_reasoning[o] for o in owner], dtype=bool)
        out.append(TokenLogprobs(lp_from, lp_to, mask))
    return out


def summarise(seqs: Sequence[TokenLogprobs]) -> dict[str, KLEstimate]:
    """KL with and without the reasoning tokens."""
    return {"all": estimate_kl(seqs), "answer_only": estimate_kl(seqs, include_reasoning=False)}
