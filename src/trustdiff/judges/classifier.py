"""Local classifier judges: a Hugging Face sequence-classification checkpoint, or Detoxify's.

Why: the offline toxicity judge is a lexicon proxy; a trained classifier (a toxicity model, a
refusal detector) is a better instrument when the user has one on disk. Both kinds run offline:
files are read with `local_files_only=True` and `trust_remote_code=False` (a checkpoint that
needs its own Python code is refused), and torch/transformers are imported only when a
classifier judge is built, so the CLI starts as fast without them.

Specs (options after `?`, all optional):

- `hf-classifier:DIR` — a folder written by `save_pretrained` (config, weights, tokenizer).
- `detoxify:FILE.ckpt` — a Detoxify checkpoint: a dict holding the training `config` and the
  `state_dict`. It is loaded with `torch.load(weights_only=True)`, which only rebuilds tensors and
  plain containers and never runs pickled code; a checkpoint that needs more is refused. Detoxify
  names a *base* model (e.g. `bert-base-uncased`) for the architecture's config and tokenizer;
  offline, that must be a local folder: `config=DIR` (or `model_type` itself is a folder, or the
  base model sits in the local Hugging Face cache). The model class must be one of
  transformers' `…ForSequenceClassification` classes — Detoxify's own ones are.

Options: `positive=a|b` output label names (or indices) that mean the judge's `label`
(default: a label named toxic/toxicity, else index 1 of a binary head); `label=toxic` and
`negative=non_toxic` name the two judgment labels (e.g. `label=refused&negative=complied` for a
refusal classifier); `threshold=0.5`; `activation=auto|softmax|sigmoid` (auto: sigmoid for
multi-label heads and Detoxify, else softmax); `max_length` (default: the model's own limit;
longer texts are truncated); `batch_size=16`; `device=auto|cpu|cuda…`.

Score = probability of the positive class (softmax: summed over the positive labels; sigmoid:
their maximum); label = `label` when the score ≥ threshold, else `negative`. The judge id is
`hf-classifier@1:HASH` / `detoxify@1:HASH`, HASH covering the checkpoint files (names and
content fingerprints) and every option that changes a label, so another checkpoint or mapping is
another judge in the store. A batch that fails is re-run one text at a time, so only the texts
that fail get `judge_error`.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from trustdiff.backends.spec import weights_id
from trustdiff.errors import TrustdiffError
from trustdiff.judges.base import Part, part_text
from trustdiff.judges.common import EMPTY, JUDGE_ERROR
from trustdiff.records import Judgment, Outcome, Sample, stable_hash

KINDS = ("hf-classifier", "detoxify")
_FILE_SUFFIXES = (".json", ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".txt", ".model")
_OUTCOME_LABELS = {Outcome.EMPTY: EMPTY, Outcome.ERROR: "error"}


class ClassifierOptions(BaseModel):
    """Options of a classifier judge spec (strings from the query are coerced)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    positive: tuple[str, ...] = ()
    """Output label names or indices meaning `label` (empty: toxic/toxicity, else index 1)."""
    label: str = "toxic"
    """Judgment label when the score reaches the threshold."""
    negative: str = "non_toxic"
    """Judgment label otherwise."""
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    """Score at which `label` is given."""
    activation: Literal["auto", "softmax", "sigmoid"] = "auto"
    """How logits become probabilities."""
    max_length: int | None = Field(None, ge=1)
    """Token limit (default: the model's); longer texts are truncated."""
    batch_size: int = Field(16, ge=1)
    """Texts per forward pass (speed only)."""
    device: str = "auto"
    """`auto` (cuda when available, else cpu) or a torch device string."""
    config: str | None = None
    """`detoxify`: folder with the base model's config.json and tokenizer files."""

    @field_validator("positive", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(p.strip() for p in value.replace(",", "|").split("|") if p.strip())
        return value


def _modules() -> tuple[Any, Any]:
    # import_module keeps mypy from type-checking all of torch and transformers (minutes).
    try:
        torch, transformers = (
            importlib.import_module("torch"),
            importlib.import_module("transformers"),
        )
    except ImportError:
        raise TrustdiffError(
            "classifier judges need torch and transformers: pip install 'trustdiff[hf]'"
        ) from None
    transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bars on stderr
    return torch, transformers


def files_id(path: Path) -> str:
    """Fingerprint of a checkpoint: names and content hashes (size + head + tail) of its files."""
    files = [path] if path.is_file() else sorted(
        p for p in path.iterdir() if p.is_file() and p.name.endswith(_FILE_SUFFIXES)
    )  # fmt: skip
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.name}={weights_id(f)};".encode())
    return h.hexdigest()[:16]


def first_line(exc: BaseException) -> str:
    """`Type: first line of the message` (errors from torch/transformers can be pages long)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:240] if text else ''}"


class ClassifierJudge:
    """A sequence classifier scoring one part of each sample; implements `Judge`."""

    version = "1"

    def __init__(self, kind: str, path: str | Path, options: ClassifierOptions | None = None):
        if kind not in KINDS:
            raise TrustdiffError(f"unknown classifier kind {kind!r}; known: {', '.join(KINDS)}")
        self.name = kind
        self.path = Path(path).expanduser().resolve()
        self.options = options or ClassifierOptions()
        if not self.path.exists():
            raise TrustdiffError(f"{kind} checkpoint not found: {self.path}")
        if kind == "hf-classifier" and not (self.path / "config.json").is_file():
            raise TrustdiffError(
                f"{self.path} is not a Hugging Face checkpoint folder (no config.json)"
            )
        if kind == "detoxify" and not self.path.is_file():
            raise TrustdiffError(f"detoxify: expects a checkpoint file (.ckpt), not {self.path}")
        self._torch, self._tf = _modules()
        self._model: Any = None
        self._tokenizer: Any = None
        self._source = ""
        self._load()
        self.fingerprint = stable_hash(
            {
                "files": files_id(self.path),
                "config": files_id(Path(self._source)) if self.name == "detoxify" else None,
                "positive": self.positive,
                "labels": [self.options.label, self.options.negative],
                "threshold": self.options.threshold,
                "activation": self.activation,
                "max_length": self.max_length,
            },
            12,
        )
        head = "Detoxify checkpoint" if kind == "detoxify" else "Hugging Face classifier"
        self.description = (
            f"{head} {self.path.name} ({type(self._model).__name__}): p({'|'.join(self.positive)}) "
            f"≥ {self.options.threshold} → {self.options.label}, else {self.options.negative}"
        )

    @property
    def id(self) -> str:
        """`KIND@VERSION:HASH` of the checkpoint files and label mapping."""
        return f"{self.name}@{self.version}:{self.fingerprint}"

    # --- loading -----------------------------------------------------------------------------

    def _load(self) -> None:
        torch = self._torch
        try:
            if self.name == "detoxify":
                model, tokenizer, names, multi = self._load_detoxify()
            else:
                model, tokenizer, names, multi = self._load_hf()
        except TrustdiffError:
            raise
        except Exception as exc:  # transformers/torch raise many types; one line for the user
            raise TrustdiffError(
                f"cannot load {self.name} {self.path}: {first_line(exc)}"
            ) from None
        device = self.options.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self._model = model.to(device).eval()
        self._device = device
        self._tokenizer = tokenizer
        if tokenizer.pad_token is None and tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        if getattr(model.config, "pad_token_id", None) is None and tokenizer.pad_token is not None:
            model.config.pad_token_id = tokenizer.pad_token_id
        self._inputs = set(inspect.signature(model.forward).parameters)
        self.names: list[str] = names
        self.activation = self.options.activation
        if self.activation == "auto":
            self.activation = "sigmoid" if multi or len(names) == 1 else "softmax"
        self.positive = self._positive(names)
        self._positive_idx = [names.index(p) for p in self.positive]
        limits = [self.options.max_length, self._model_limit(tokenizer, model.config)]
        self.max_length = min(x for x in limits if x) if any(limits) else 512

    @staticmethod
    def _model_limit(tokenizer: Any, config: Any) -> int | None:
        limit = getattr(tokenizer, "model_max_length", None)
        if isinstance(limit, int) and 0 < limit < 1_000_000:
            return limit
        positions = getattr(config, "max_position_embeddings", None)
        if isinstance(positions, int) and positions > 0:
            return positions - 2 if "roberta" in str(config.model_type) else positions
        return None

    def _load_hf(self) -> tuple[Any, Any, list[str], bool]:
        tf = self._tf
        common = {"local_files_only": True, "trust_remote_code": False}
        config = tf.AutoConfig.from_pretrained(self.path, **common)
        if getattr(config, "auto_map", None):
            raise TrustdiffError(
                f"{self.path} needs its own Python code (auto_map), which trustdiff never runs"
            )
        tokenizer = tf.AutoTokenizer.from_pretrained(self.path, **common)
        model, info = tf.AutoModelForSequenceClassification.from_pretrained(
            self.path, output_loading_info=True, **common
        )
        missing = [k for k in info.get("missing_keys", ()) if not k.endswith("position_ids")]
        if missing:
            raise TrustdiffError(
                f"{self.path} has no trained classification head (missing weights: "
                f"{', '.join(sorted(missing)[:3])}); is it a sequence-classification checkpoint?"
            )
        names = [str(config.id2label[i]) for i in range(config.num_labels)]
        return model, tokenizer, names, config.problem_type == "multi_label_classification"

    def _load_detoxify(self) -> tuple[Any, Any, list[str], bool]:
        from trustdiff.judges.detoxify import load_detoxify

        loaded = load_detoxify(self._torch, self._tf, self.path, self.options.config)
        self._source = loaded.source
        return loaded.model, loaded.tokenizer, loaded.classes, True

    def _positive(self, names: Sequence[str]) -> tuple[str, ...]:
        lower = [n.lower() for n in names]
        wanted = self.options.positive
        if not wanted:
            for guess in ("toxic", "toxicity"):
                if guess in lower:
                    return (names[lower.index(guess)],)
            if len(names) == 2:
                return (names[1],)
            raise TrustdiffError(
                f"{self.path}: name the output label(s) meaning {self.options.label!r} with "
                f"?positive=…; its labels: {', '.join(names)}"
            )
        out = []
        for w in wanted:
            if w.lower() in lower:
                out.append(names[lower.index(w.lower())])
            elif w.isdigit() and int(w) < len(names):
                out.append(names[int(w)])
            else:
                raise TrustdiffError(
                    f"{self.path}: no output label {w!r}; its labels: {', '.join(names)}"
                )
        return tuple(dict.fromkeys(out))

    # --- judging -----------------------------------------------------------------------------

    def probabilities(self, texts: Sequence[str]) -> list[list[float]]:
        """Per-text class probabilities (one forward pass over the batch)."""
        torch = self._torch
        enc = self._tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        batch = {k: v.to(self._device) for k, v in enc.items() if k in self._inputs}
        with torch.inference_mode():
            logits = self._model(**batch).logits.float()
        probs = torch.sigmoid(logits) if self.activation == "sigmoid" else logits.softmax(-1)
        return [[float(p) for p in row] for row in probs.cpu().tolist()]

    def _decide(self, probs: Sequence[float]) -> tuple[str, float, str]:
        pos = [probs[i] for i in self._positive_idx]
        score = sum(pos) if self.activation == "softmax" else max(pos)
        score = min(max(score, 0.0), 1.0)
        label = self.options.label if score >= self.options.threshold else self.options.negative
        top = sorted(zip(self.names, probs, strict=True), key=lambda x: -x[1])[:4]
        shown = ", ".join(f"{n} {p:.3f}" for n, p in top)
        return label, score, f"p({'|'.join(self.positive)})={score:.4f} [{shown}]"

    def judge(self, samples: Sequence[Sample], part: Part = "answer") -> list[Judgment]:
        """One judgment per sample, in order; batched by length; never raises for one sample."""
        out: list[Judgment | None] = [None] * len(samples)

        def made(
            i: int, label: str, why: str, score: float | None = None, cost: float = 0.0
        ) -> None:
            out[i] = Judgment(sample_key=samples[i].key, judge=self.id, part=part, label=label,
                              score=score, rationale=why, cost_s=cost)  # fmt: skip

        todo: list[tuple[int, str]] = []
        for i, s in enumerate(samples):
            if s.outcome in _OUTCOME_LABELS:
                made(i, _OUTCOME_LABELS[s.outcome], f"sample outcome is {s.outcome}")
            elif not (text := part_text(s, part)).strip():
                made(i, EMPTY, f"the {part} part is empty")
            else:
                todo.append((i, text))
        if todo and self._model is None:  # closed earlier: load again
            self._load()
        todo.sort(key=lambda it: len(it[1]))  # similar lengths pad less
        size = self.options.batch_size
        for start in range(0, len(todo), size):
            chunk = todo[start : start + size]
            t0 = time.perf_counter()
            try:
                rows = self.probabilities([t for _, t in chunk])
            except Exception:  # find the culprit(s): one text at a time
                for i, text in chunk:
                    t1 = time.perf_counter()
                    try:
                        label, score, why = self._decide(self.probabilities([text])[0])
                        made(i, label, why, score, time.perf_counter() - t1)
                    except Exception as exc:
                        made(i, JUDGE_ERROR, first_line(exc), None, time.perf_counter() - t1)
                continue
            each = (time.perf_counter() - t0) / len(chunk)
            for (i, _), row in zip(chunk, rows, strict=True):
                label, score, why = self._decide(row)
                made(i, label, why, score, each)
        return [j for j in out if j is not None]

    def close(self) -> None:
        """Free the model (loaded again if the judge is used again)."""
        self._model = None
        self._tokenizer = None


def parse_classifier_spec(spec: str) -> ClassifierJudge:
    """Build a classifier judge from `hf-classifier:DIR[?…]` or `detoxify:FILE[?…]`."""
    kind, _, rest = spec.partition(":")
    path, _, query = rest.partition("?")
    if kind not in KINDS or not path.strip():
        raise TrustdiffError(
            f"bad classifier judge {spec!r}: expected hf-classifier:DIR or detoxify:FILE.ckpt"
        )
    options = dict(parse_qsl(query, keep_blank_values=True))
    try:
        parsed = ClassifierOptions.model_validate(options)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        known = ", ".join(ClassifierOptions.model_fields)
        raise TrustdiffError(
            f"bad option in {kind} judge: {where}: {first['msg']} (options: {known})"
        ) from None
    return ClassifierJudge(kind, path, parsed)
