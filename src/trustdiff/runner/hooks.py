"""Progress callbacks of an audit (kept import-light so the CLI starts fast)."""

from __future__ import annotations

from trustdiff.records import Sample


class Hooks:
    """Progress callbacks; the CLI overrides them with a rich display. Defaults do nothing."""

    def stage(self, name: str) -> None:
        """A pipeline stage starts."""

    def generation(self, model: str, total: int, todo: int) -> None:
        """Generation for `model` starts: `todo` of `total` samples are missing."""

    def sample(self, sample: Sample) -> None:
        """A sample was generated and stored."""
