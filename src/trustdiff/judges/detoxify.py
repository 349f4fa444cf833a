"""Load a Detoxify checkpoint offline, without unpickling code (used by `classifier.py`).

Why not the `detoxify` package: it downloads its checkpoints and base models, and loads them
with a plain `torch.load`, which runs whatever a pickle says. A Detoxify `.ckpt` is a dict with
the training `config` (which transformers class, which base model, the class names) and the
`state_dict`; `torch.load(weights_only=True)` rebuilds exactly that and refuses anything else.
The base model's config and tokenizer must be on disk (see `config_source`).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustdiff.errors import TrustdiffError

STANDARD_NAMES = {
    "toxic": "toxicity",
    "identity_hate": "identity_attack",
    "severe_toxic": "severe_toxicity",
}
"""Detoxify standardises its class names the same way."""


@dataclass(frozen=True)
class Loaded:
    """A Detoxify checkpoint as a transformers model."""

    model: Any
    tokenizer: Any
    classes: list[str]
    """Output class names, standardised (`toxicity`, `severe_toxicity`, …)."""
    source: str
    """Folder or cached model id the config and tokenizer came from."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:240] if text else ''}"


def load_detoxify(torch: Any, tf: Any, path: Path, config_dir: str | None) -> Loaded:
    """Rebuild the checkpoint at `path`; every problem is one TrustdiffError line."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise TrustdiffError(
            f"{path} cannot be loaded as plain tensors and settings (torch.load with "
            f"weights_only=True refused it: {_first_line(exc)}); trustdiff never unpickles "
            "arbitrary objects — re-save the checkpoint as {'config': dict, 'state_dict': …}"
        ) from None
    try:
        args = ckpt["config"]["arch"]["args"]
        classes = [str(c) for c in ckpt["config"]["dataset"]["args"]["classes"]]
        state = dict(ckpt["state_dict"])
        model_name, model_type = str(args["model_name"]), str(args["model_type"])
    except (KeyError, TypeError) as exc:
        raise TrustdiffError(
            f"{path} is not a Detoxify checkpoint (needs config.arch.args, "
            f"config.dataset.args.classes and state_dict; missing {exc})"
        ) from None
    if not model_name.endswith("ForSequenceClassification") or not inspect.isclass(
        getattr(tf, model_name, None)
    ):
        raise TrustdiffError(
            f"{path}: model_name {model_name!r} is not a transformers "
            "…ForSequenceClassification class, which is all trustdiff can run offline"
        )
    source = config_source(tf, path, model_type, config_dir)
    common = {"local_files_only": True, "trust_remote_code": False}
    config = tf.AutoConfig.from_pretrained(source, num_labels=len(classes), **common)
    tokenizer = tf.AutoTokenizer.from_pretrained(source, **common)
    model = getattr(tf, model_name)(config)
    _load_state(model, state, path)
    return Loaded(model, tokenizer, [STANDARD_NAMES.get(c, c) for c in classes], source)


def config_source(tf: Any, path: Path, model_type: str, config_dir: str | None) -> str:
    """Where the base model's config and tokenizer are: `config=DIR`, else `model_type` when it
    is a folder, else `model_type` in the local Hugging Face cache; never a download."""
    if config_dir:
        folder = Path(config_dir).expanduser().resolve()
        if not (folder / "config.json").is_file():
            raise TrustdiffError(f"detoxify config={folder}: no config.json there")
        return str(folder)
    if Path(model_type).is_dir():
        return str(Path(model_type).resolve())
    try:
        tf.AutoConfig.from_pretrained(model_type, local_files_only=True)
    except Exception:
        raise TrustdiffError(
            f"{path} is built on {model_type!r}, whose config and tokenizer are not on this "
            f"machine; pass ?config=DIR (a folder with {model_type}'s config.json and tokenizer "
            "files) — trustdiff does not download"
        ) from None
    return model_type


def _load_state(model: Any, state: dict[str, Any], path: Path) -> None:
    """Load the weights strictly (buffers such as `position_ids` aside), accepting the key
    spellings older checkpoints use (`model.` prefix, LayerNorm `gamma`/`beta`)."""
    if not set(model.state_dict()) & set(state) and all(k.startswith("model.") for k in state):
        state = {k.removeprefix("model."): v for k, v in state.items()}
    renamed = {
        k.replace("LayerNorm.gamma", "LayerNorm.weight").replace(
            "LayerNorm.beta", "LayerNorm.bias"
        ): v
        for k, v in state.items()
    }
    result = model.load_state_dict(renamed, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("position_ids")]
    extra = [k for k in result.unexpected_keys if not k.endswith("position_ids")]
    if missing or extra:
        raise TrustdiffError(
            f"{path}: the state_dict does not fit {type(model).__name__} (missing "
            f"{sorted(missing)[:3]}, unexpected {sorted(extra)[:3]})"
        )
