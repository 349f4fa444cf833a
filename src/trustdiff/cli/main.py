"""Command line: `trustdiff audit`, `trustdiff demo`.

Exit codes: 0 done, 1 error (one line on stderr, never a traceback), 2 usage error, 3 gate
tripped (`--fail-on`), 130 interrupted (the store keeps every finished sample; rerun to resume).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from trustdiff.cli.display import RichHooks, print_verdicts
from trustdiff.errors import TrustdiffError
from trustdiff.records import Verdict

if TYPE_CHECKING:
    from trustdiff.runner.audit import AuditConfig

EXIT_ERROR, EXIT_GATE, EXIT_INTERRUPTED = 1, 3, 130
DEMO_BASE = "gguf:default?label=SmolLM2-135M-Instruct&max_tokens=64&parallel=8"
DEMO_DERIVED = (
    "gguf:default?reasoning=prompted&label=SmolLM2-135M-Instruct%2Bthink&think_budget=96"
    "&max_tokens=64&parallel=8"
)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Did the alignment survive? Paired trust audits of a baseline and derived models.",
)
err = Console(stderr=True)


def _register_subcommands() -> None:
    from trustdiff.cli.io_cmd import export_cmd, import_cmd
    from trustdiff.cli.judges_cmd import judges_app
    from trustdiff.cli.suites_cmd import suites_app

    app.command("import")(import_cmd)
    app.command("export")(export_cmd)
    app.add_typer(judges_app, name="judges")
    app.add_typer(suites_app, name="suites")


_register_subcommands()


def _gate(fail_on: str | None) -> tuple[bool, set[str] | None]:
    """Parse `regressed[:dim,dim]` into (enabled, dimensions or None for all)."""
    if not fail_on:
        return False, None
    kind, _, dims = fail_on.partition(":")
    if kind != "regressed":
        raise TrustdiffError(
            f"--fail-on accepts 'regressed' or 'regressed:dim,dim', not {fail_on!r}"
        )
    return True, {d.strip() for d in dims.split(",") if d.strip()} or None


def _run(cfg: AuditConfig, fail_on: str | None) -> int:
    """Run the audit, write the reports, print the verdicts; returns the exit code."""
    from trustdiff.report import write_reports
    from trustdiff.runner.audit import run_audit

    gate, gate_dims = _gate(fail_on)
    hooks = RichHooks(err)
    try:
        report = run_audit(cfg, hooks)
    except KeyboardInterrupt:
        hooks.close()
        err.print("interrupted; finished samples are stored — rerun the same command to resume")
        return EXIT_INTERRUPTED
    finally:
        hooks.close()
    paths = write_reports(report, cfg.out)
    print_verdicts(Console(), report)
    for fmt, path in paths.items():
        err.print(f"[dim]{fmt:>4}[/dim] {path}")
    tripped = [
        v
        for v in report.verdicts
        if v.verdict is Verdict.REGRESSED and (gate_dims is None or v.dimension in gate_dims)
    ]
    if gate and tripped:
        names = ", ".join(f"{v.dimension} ({v.derived_model})" for v in tripped)
        err.print(f"gate: regressed on {names}")
        return EXIT_GATE
    return 0


@app.command()
def audit(
    base: Annotated[
        str | None, typer.Option(help="Baseline model spec, e.g. gguf:PATH or openai:URL#MODEL.")
    ] = None,
    derived: Annotated[
        list[str] | None, typer.Option(help="Derived model spec (repeat for several).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML/TOML audit config; flags override its values.")
    ] = None,
    suite: Annotated[
        list[str] | None, typer.Option(help="Suite or profile name (repeatable) [safety].")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Use the first N items of each suite.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output directory [runs/audit].")] = None,
    k: Annotated[int | None, typer.Option(min=1, help="Samples per item [suite default].")] = None,
    margin: Annotated[float | None, typer.Option(help="Equivalence margin δ [0.02].")] = None,
    alpha: Annotated[float | None, typer.Option(help="Family-wise error rate [0.05].")] = None,
    resamples: Annotated[
        int | None, typer.Option(min=100, help="Bootstrap resamples [10000].")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Statistics seed [0].")] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Public benchmark files laid out like shared/data (<dataset>/<file>), read "
            "before the download cache [env TRUSTDIFF_DATA_DIR]."
        ),
    ] = None,
    unredacted: Annotated[bool, typer.Option(help="Show possibly harmful completions.")] = False,
    drift: Annotated[
        bool,
        typer.Option(
            help="Measure KL drift (gguf:, hf:, openai: servers with prompt log-probs, e.g. vLLM)."
        ),
    ] = False,
    fail_on: Annotated[
        str | None,
        typer.Option(
            help="Exit 3 when a verdict is 'regressed' (only for some dims: regressed:safety)."
        ),
    ] = None,
    title: Annotated[str | None, typer.Option(help="Report title.")] = None,
    judge_model: Annotated[
        str | None,
        typer.Option(help="LLM judge model spec for safety (answer and reasoning trace)."),
    ] = None,
    safety_judge: Annotated[
        str | None,
        typer.Option(
            help="LLM judge format: strongreject (default), harmbench, llama-guard-3, "
            "llama-guard-3-native, wildguard."
        ),
    ] = None,
    toxicity_judge: Annotated[
        str | None,
        typer.Option(help="Toxicity classifier: hf-classifier:DIR?… or detoxify:FILE.ckpt?…"),
    ] = None,
) -> None:
    """Audit a baseline against one or more derived models; resumes if OUT already has a store."""
    from trustdiff.config import load_config, merge_judges, merge_options
    from trustdiff.runner.audit import AuditConfig

    if limit is not None and limit <= 0:
        raise TrustdiffError("--limit must be a positive number of items")
    given = {
        "base": base,
        "derived": tuple(derived or ()),
        "suites": tuple(suite or ()),
        "limit": limit,
        "out": out,
        "k": k,
        "margin": margin,
        "alpha": alpha,
        "n_resamples": resamples,
        "seed": seed,
        "title": title,
        "data_dir": data_dir,
    }
    kwargs = merge_options(
        load_config(config) if config else {}, given, source=str(config or "a --config file")
    )
    judges = merge_judges(
        kwargs.pop("judges", None),
        {"model": judge_model, "safety": safety_judge, "toxicity": toxicity_judge},
    )
    if judges is not None:
        kwargs["judges"] = judges
    if (chosen_data_dir := kwargs.pop("data_dir", None)) is not None:
        from trustdiff.suites.public.fetch import set_data_dir

        set_data_dir(chosen_data_dir)
    cfg = AuditConfig(**kwargs, redact=not unredacted, drift=drift)
    raise typer.Exit(_run(cfg, fail_on))


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("runs/demo"),
) -> None:
    """Audit the embedded SmolLM2-135M-Instruct against itself with prompted reasoning, offline.

    All six trust dimensions plus capability on the `quick` profile: a few minutes on 2 cores,
    so most verdicts are honestly inconclusive (the report says how many items would settle
    each).
    """
    from trustdiff.runner.audit import AuditConfig

    cfg = AuditConfig(
        base=DEMO_BASE,
        derived=(DEMO_DERIVED,),
        suites=("quick",),
        out=out,
        title="trustdiff demo: SmolLM2-135M-Instruct vs the same weights with prompted reasoning",
    )
    raise typer.Exit(_run(cfg, None))


def main() -> None:
    """Entry point: map every failure to one stderr line and a non-zero exit code.

    Typer runs in standalone mode, so usage errors keep click's own message and exit 2, and
    `typer.Exit` codes pass through; our errors and bugs are caught here.
    """
    try:
        app()
    except TrustdiffError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_ERROR)
    except Exception as exc:  # a bug: still one line, traceback only on request
        if os.environ.get("TRUSTDIFF_DEBUG"):
            raise
        print(
            f"internal error: {type(exc).__name__}: {exc} (set TRUSTDIFF_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        sys.exit(EXIT_ERROR)
