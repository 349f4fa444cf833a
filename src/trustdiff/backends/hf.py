"""`hf:` backend: a causal LM run in-process by Hugging Face transformers (optional extra).

Token choice is done here, not by transformers' sampler, because that sampler draws from one
global RNG: a sampled answer would then depend on which requests shared its batch, and a resumed
run could not reproduce it. One logits processor applies repetition penalty, temperature, top-k
and top-p per row, draws with that row's own `torch.Generator` (seeded `seed + k`), and hands
`generate` a one-hot row, so `generate` only keeps the KV cache, the padding and the stopping.
Batches are left-padded (positions come from the attention mask), so a batched answer is the
one-at-a-time answer up to float rounding. Stop strings and end-of-turn are tracked per row by a
stopping criterion that remembers where each row ended; the text is cut there afterwards.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from trustdiff.backends.base import Generation, GenParams
from trustdiff.backends.hf_rows import RowChooser, RowStopper
from trustdiff.backends.spec import ModelSpec, weights_id
from trustdiff.errors import BackendError, SpecError
from trustdiff.records import Message

INSTALL_HINT = "the hf: backend needs transformers and torch: pip install 'trustdiff[hf]'"
_META_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
)
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def json_object_option(value: Any) -> Any:
    """Spec options arrive as strings: accept a JSON object there, `None` as empty."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            return json.loads(value) if value.strip() else {}
        except ValueError:
            raise ValueError("must be a JSON object") from None
    return value


class HFOptions(BaseModel):
    """`hf:` spec options (strings from the spec's query are coerced)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    trust_remote_code: bool = False
    """Run the model repository's own Python code; off unless the user asks (it is code)."""
    chat_template_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Extra variables for the chat template, e.g. `{"enable_thinking": false}`."""
    device: str = "auto"
    """`auto` (cuda, then mps, then cpu) or a torch device string such as `cpu` or `cuda:1`."""
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    """Weights dtype; `auto` takes the checkpoint's own."""
    batch_size: int = Field(8, ge=1)
    """Most requests decoded together by `generate_many`."""
    threads: int | None = Field(None, ge=1)
    """CPU threads for torch (process-wide); `None` keeps torch's default. On an oversubscribed
    machine 1 thread can be many times faster than 2 (OpenMP barriers wait on descheduled
    threads)."""

    _coerce = field_validator("chat_template_kwargs", mode="before")(json_object_option)

    def fingerprint(self) -> dict[str, Any]:
        """The options that change samples (batching and threads only change the speed)."""
        return self.model_dump(mode="json", exclude={"batch_size", "threads"})


@dataclass(frozen=True)
class GenRequest:
    """One generation request of a batch (the arguments of `Backend.generate`)."""

    messages: tuple[Message, ...]
    params: GenParams
    prefill: str = ""
    k: int = 0


Result = Generation | BackendError
"""A request's outcome in a batch: one bad request does not sink the others."""
OnDone = Callable[[int, Result], None]
OptionsT = TypeVar("OptionsT", bound=BaseModel)


def parse_options(
    model: type[OptionsT], options: Mapping[str, Any] | None, *, kind: str, spec: str
) -> OptionsT:
    """Validate a spec's backend options (spec parsing can call it before any load); the first
    problem becomes one SpecError line."""
    try:
        return model.model_validate(dict(options or {}))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise SpecError(f"bad {kind}: option in {spec!r}: {where} {first['msg']}") from None


def split_target(target: str) -> tuple[str, str | None]:
    """(directory or hub id, GGUF file name) — a `.gguf` path loads through transformers' GGUF
    reader, which dequantises the weights."""
    path = Path(target).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        return str(path.resolve().parent), path.name
    return (str(path.resolve()) if path.exists() else target), None


def model_dir_id(directory: Path, gguf_file: str | None = None) -> str:
    """Content hash of a model folder: config, tokenizer and every weight file (size + head +
    tail each, as for GGUF files), so changed weights change the fingerprint, cheaply."""
    if gguf_file is not None:
        return weights_id(directory / gguf_file)
    names = sorted(
        p.name
        for p in directory.iterdir()
        if p.is_file() and (p.name in _META_FILES or p.name.endswith(_WEIGHT_SUFFIXES))
    )
    if not any(n.endswith(_WEIGHT_SUFFIXES) for n in names):
        raise BackendError(f"no weight files (safetensors, bin, gguf) in {directory}")
    h = hashlib.sha256()
    for name in names:
        h.update(f"{name}={weights_id(directory / name)};".encode())
    return h.hexdigest()[:16]


def weights_fingerprint(target: str) -> str:
    """Weights identity without loading anything (spec parsing can call it): the content hash of
    a local folder or `.gguf` file; for a hub id, the hash of its cached snapshot, or `hub:ID`
    while it is not cached (audits that must resume exactly should use local paths)."""
    source, gguf_file = split_target(target)
    if Path(source).is_dir():
        return model_dir_id(Path(source), gguf_file)
    try:
        hub = importlib.import_module("huggingface_hub")
    except ImportError:
        return f"hub:{target}"
    cached = hub.try_to_load_from_cache(target, "config.json")
    return model_dir_id(Path(cached).parent) if isinstance(cached, str) else f"hub:{target}"


def render_chat(
    tokenizer: Any, messages: Sequence[Message], prefill: str, template_kwargs: Mapping[str, Any]
) -> str:
    """The tokenizer's chat template with the generation prompt, then the assistant prefill."""
    if not getattr(tokenizer, "chat_template", None):
        raise BackendError("the tokenizer has no chat template (not an instruction-tuned model?)")
    try:
        text = tokenizer.apply_chat_template(
            [m.model_dump() for m in messages],
            tokenize=False,
            add_generation_prompt=True,
            **template_kwargs,
        )
    except Exception as exc:  # jinja raises TemplateError, e.g. "system role not supported"
        raise BackendError(f"the chat template rejected the messages: {exc}") from None
    return str(text) + prefill


def finish_row(
    ids: Sequence[int],
    end: int | None,
    decode: Callable[[Sequence[int]], str],
    stops: Sequence[str],
) -> tuple[str, str, int]:
    """(text, finish_reason, completion tokens) of one row: cut at the recorded end (end of
    turn excluded, stop-string tokens kept), then the text before the first stop string."""
    kept = list(ids) if end is None else list(ids[:end])
    reason = "length" if end is None else "stop"
    text = decode(kept)
    cuts = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    if cuts:
        text, reason = text[: min(cuts)], "stop"
    return text, reason, len(kept)


def _torch() -> tuple[Any, Any]:
    # import_module keeps mypy from type-checking all of torch and transformers (minutes).
    try:
        return importlib.import_module("torch"), importlib.import_module("transformers")
    except ImportError:
        raise BackendError(INSTALL_HINT) from None


def _device(torch: Any, device: str) -> str:
    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    return "mps" if mps is not None and mps.is_available() else "cpu"


class HFBackend:
    """A transformers causal LM loaded in this process."""

    def __init__(
        self,
        spec: ModelSpec,
        *,
        trust_remote_code: bool = False,
        chat_template_kwargs: Mapping[str, Any] | None = None,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 8,
        threads: int | None = None,
    ) -> None:
        torch, transformers = _torch()
        if threads is not None:
            torch.set_num_threads(threads)
        self.spec = spec
        self.name = f"transformers {transformers.__version__} (torch {torch.__version__})"
        self._torch = torch
        self._tf = transformers
        self.batch_size = batch_size
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self.trust_remote_code = trust_remote_code
        source, gguf_file = split_target(spec.target)
        load: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
        if trust_remote_code:  # only passed when asked, never as an explicit False default
            load["trust_remote_code"] = True
        try:
            tok = transformers.AutoTokenizer.from_pretrained(source, **load)
            model = transformers.AutoModelForCausalLM.from_pretrained(
                source, dtype=dtype if dtype == "auto" else getattr(torch, dtype), **load
            )
        except (OSError, ValueError, KeyError, ImportError) as exc:
            raise BackendError(f"transformers could not load {spec.target}: {exc}") from None
        self.device = _device(torch, device)
        self._model = model.to(self.device).eval()
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        self._tok = tok
        ends = {tok.eos_token_id}
        gen_eos = getattr(model.generation_config, "eos_token_id", None)
        ends.update(gen_eos if isinstance(gen_eos, list) else [gen_eos])
        self._ends = frozenset(int(e) for e in ends if e is not None)
        if not self._ends:
            raise BackendError(f"{spec.target}: the tokenizer defines no end-of-sequence token")
        pad = tok.pad_token_id
        self._pad = int(pad) if pad is not None else min(self._ends)
        self._ctx: int | None = getattr(model.config, "max_position_embeddings", None)
        self._weights = weights_fingerprint(spec.target)

    @property
    def model(self) -> Any:
        """The underlying transformers model (drift scoring reads its logits)."""
        return self._model

    @property
    def tokenizer(self) -> Any:
        """The tokenizer, left-padding, with a pad token."""
        return self._tok

    def identity(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "weights": self._weights,
            "template": self._tok.chat_template,
            "chat_template_kwargs": self.chat_template_kwargs,
            "dtype": str(self._model.dtype),
            "trust_remote_code": self.trust_remote_code,
        }

    def render(self, messages: Sequence[Message], prefill: str = "") -> str:
        return render_chat(self._tok, messages, prefill, self.chat_template_kwargs)

    def count_tokens(self, text: str) -> int:
        return len(self._tok.encode(text, add_special_tokens=False)) if text else 0

    def _decode(self, ids: Sequence[int]) -> str:
        return str(
            self._tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        )

    def generate(
        self, messages: Sequence[Message], params: GenParams, *, prefill: str = "", k: int = 0
    ) -> Generation:
        (result,) = self.generate_many([GenRequest(tuple(messages), params, prefill, k)])
        if isinstance(result, BackendError):
            raise result
        return result

    def generate_many(
        self, requests: Sequence[GenRequest], on_done: OnDone | None = None
    ) -> list[Result]:
        """Generate every request, `batch_size` at a time, grouped by sampling parameters and
        sorted by prompt length (less padding). `on_done(index, result)` fires as each batch
        finishes, so callers can store results early; a request the model cannot take (template
        error, prompt longer than the context) gets a BackendError, the others still run."""
        results: list[Result | None] = [None] * len(requests)

        def done(i: int, result: Result) -> None:
            results[i] = result
            if on_done is not None:
                on_done(i, result)

        groups: dict[tuple[Any, ...], list[tuple[int, list[int]]]] = {}
        for i, req in enumerate(requests):
            try:
                ids = self._prompt_ids(req)
            except BackendError as exc:
                done(i, exc)
                continue
            key = req.params.model_dump(exclude={"seed"})
            groups.setdefault(tuple(sorted(key.items())), []).append((i, ids))
        for members in groups.values():
            members.sort(key=lambda m: len(m[1]))
            for batch in self._batches(requests, members):
                for i, gen in zip(batch, self._run(requests, batch, dict(members)), strict=True):
                    done(i, gen)
        return [r if r is not None else BackendError("not generated") for r in results]

    def _prompt_ids(self, req: GenRequest) -> list[int]:
        ids: list[int] = self._tok.encode(
            self.render(req.messages, req.prefill), add_special_tokens=False
        )
        if self._ctx is not None and len(ids) >= self._ctx:
            raise BackendError(
                f"prompt of {len(ids)} tokens does not fit the model's {self._ctx}-token context"
            )
        return ids

    def _batches(
        self, requests: Sequence[GenRequest], members: list[tuple[int, list[int]]]
    ) -> list[list[int]]:
        """Requests that would run past the context window go alone (their budget is cut)."""
        out: list[list[int]] = []
        current: list[int] = []
        for i, ids in members:
            if self._ctx is not None and len(ids) + requests[i].params.max_tokens > self._ctx:
                out.append([i])
                continue
            current.append(i)
            if len(current) == self.batch_size:
                out.append(current)
                current = []
        return [*out, current] if current else out

    def _run(
        self, requests: Sequence[GenRequest], batch: list[int], prompts: dict[int, list[int]]
    ) -> list[Generation]:
        torch, tf = self._torch, self._tf
        params = requests[batch[0]].params
        rows = [prompts[i] for i in batch]
        width = max(len(r) for r in rows)
        max_new = params.max_tokens
        if self._ctx is not None:
            max_new = max(1, min(max_new, self._ctx - width))
        input_ids = torch.tensor([[self._pad] * (width - len(r)) + r for r in rows])
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
        seeds = [params.seed + requests[i].k for i in batch]
        chooser = RowChooser(torch, params, seeds, [width - len(r) for r in rows])
        stopper = RowStopper(torch, width, self._ends, params.stop, self._decode)
        config = tf.GenerationConfig(
            max_new_tokens=max_new,
            do_sample=False,
            num_beams=1,
            repetition_penalty=1.0,
            no_repeat_ngram_size=0,
            eos_token_id=sorted(self._ends),
            pad_token_id=self._pad,
        )
        start = time.perf_counter()
        with torch.inference_mode():
            out = self._model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=mask.to(self.device),
                generation_config=config,
                logits_processor=tf.LogitsProcessorList([chooser]),
                stopping_criteria=tf.StoppingCriteriaList([stopper]),
            )
        latency = time.perf_counter() - start
        gens = []
        for r, row in enumerate(rows):
            end = stopper.ends[r] if stopper.ends else None
            text, reason, n = finish_row(out[r, width:].tolist(), end, self._decode, params.stop)
            gens.append(Generation(text, reason, len(row), n, latency))
        return gens

    def close(self) -> None:
        del self._model
        if self._torch.cuda.is_available():
            self._torch.cuda.empty_cache()


def load_hf(spec: ModelSpec, options: Mapping[str, Any] | None = None) -> HFBackend:
    """Registry loader for `hf:` specs; `options` are the spec's backend options (strings ok)."""
    opts = parse_options(HFOptions, options, kind=spec.kind, spec=spec.spec)
    return HFBackend(spec, **opts.model_dump())
