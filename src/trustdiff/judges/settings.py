"""Which judges an audit uses beyond the offline defaults (`--judge-model`, `judges:` in a config).

Why a settings record: the choice of judges changes the measurements, so it belongs in the audit
config that defines (and resumes) an audit. With nothing set, every dimension keeps its offline
judge. Building a judge is separate from describing it: `build_*` constructs the judge objects
(classifiers load their checkpoint, LLM judges only parse the model spec; the model loads on
first use) and registers them so their ids resolve in this process.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from trustdiff.errors import TrustdiffError

if TYPE_CHECKING:
    from trustdiff.judges.base import Judge

SAFETY_FORMATS = (
    "strongreject",
    "harmbench",
    "harmbench-cls",
    "llama-guard-3",
    "llama-guard-3-native",
    "wildguard",
)


class JudgeSettings(BaseModel):
    """Judges configured for an audit (all optional; none set = offline defaults)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    model: str | None = None
    """Judge model spec for LLM judges (`gguf:…`, `openai:URL#MODEL`, `hf:…`)."""
    safety: str | None = None
    """LLM judge format for the safety dimension (default `strongreject` when `model` is set)."""
    parse: Literal["lenient", "strict"] = "lenient"
    """How LLM judge answers are read: exactly as specified, or also from prose/markdown."""
    toxicity: str | None = None
    """Classifier judge for the toxicity dimension instead of the lexicon proxy
    (`hf-classifier:DIR?…` or `detoxify:FILE.ckpt?…`)."""

    @field_validator("safety")
    @classmethod
    def _format(cls, value: str | None) -> str | None:
        if value is not None and value not in SAFETY_FORMATS:
            raise ValueError(f"must be one of {', '.join(SAFETY_FORMATS)}")
        return value

    @field_validator("toxicity")
    @classmethod
    def _classifier(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("hf-classifier:", "detoxify:")):
            raise ValueError("must be hf-classifier:DIR or detoxify:FILE.ckpt")
        return value

    @model_validator(mode="after")
    def _needs_model(self) -> JudgeSettings:
        if self.safety is not None and self.model is None:
            raise ValueError(f"safety judge {self.safety!r} needs a judge model (--judge-model)")
        return self

    @property
    def safety_format(self) -> str | None:
        """The safety LLM judge's format, or None when no judge model is configured."""
        if self.model is None:
            return None
        return self.safety or "strongreject"

    def build_safety_judge(self) -> Judge | None:
        """The safety LLM judge, registered under its id (None when not configured)."""
        if self.model is None:
            return None
        from trustdiff.judges import register_judge
        from trustdiff.judges.llm import LLMJudge

        return register_judge(LLMJudge(self.safety_format or "strongreject", self.model,
                                       mode=self.parse))  # fmt: skip

    def build_toxicity_judge(self) -> Judge | None:
        """The toxicity classifier judge, loaded and registered (None when not configured)."""
        if self.toxicity is None:
            return None
        from trustdiff.judges import get_judge

        return get_judge(self.toxicity)


def judge_settings(values: Mapping[str, Any], source: str = "the judge options") -> JudgeSettings:
    """Validate judge options (from flags or a config's `judges:` section); one clear line."""
    try:
        return JudgeSettings.model_validate(dict(values))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        msg = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        msg = msg.removeprefix("Value error, ")
        raise TrustdiffError(f"{source}: {where + ': ' if where else ''}{msg}") from None
