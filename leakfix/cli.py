"""`leakfix <stage> --config configs/X.yaml --run-dir data/runs/<id>`, plus `leakfix run` for all."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.logging import RichHandler

from leakfix import STAGES
from leakfix.runtime import configure_env

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console()

ConfigOpt = typer.Option(None, "--config", "-c", help="YAML experiment config (configs/*.yaml)")
RunDirOpt = typer.Option(Path("data/runs/demo"), "--run-dir", "-r", help="run directory; each stage writes <run-dir>/<stage>/")
SetOpt = typer.Option([], "--set", "-s", help="override a config field, e.g. --set generate.sampling.n=2 (repeatable)")
ForceOpt = typer.Option(False, "--force", help="rerun even when the stage's manifest says it is up to date")


def _setup() -> None:
    configure_env()
    # Logs on stderr, never wrapped at 80 columns when piped to a file (CI, make).
    log_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler(console=log_console, show_path=False)])


def _run(stages: list[str], config: Optional[Path], run_dir: Path, overrides: list[str], force: bool) -> None:
    from leakfix.pipeline import RUNNERS, load_config

    _setup()
    try:
        cfg = load_config(config, overrides)
    except ValueError as e:
        console.print(f"[red]config error:[/red] {e}")
        raise typer.Exit(2)
    for s in stages:
        res = RUNNERS[s](cfg, run_dir, force)
        state = "skipped (up to date)" if res.skipped else f"{res.wall_s:.1f}s"
        console.print(f"[bold]{s}[/bold]: {res.rows_in} in → {res.rows_out} out, {res.rows_rejected} rejected — {state} → {res.out_dir}")
    if "report" in stages:
        from leakfix.report import print_summary

        print_summary(run_dir / "evaluate" / "metrics.parquet")


def _stage_command(stage: str):
    def cmd(config: Optional[Path] = ConfigOpt, run_dir: Path = RunDirOpt, set_: list[str] = SetOpt, force: bool = ForceOpt) -> None:
        _run([stage], config, run_dir, set_, force)

    cmd.__doc__ = f"Run the `{stage}` stage."
    return cmd


for _s in STAGES:
    app.command(_s)(_stage_command(_s))


@app.command("run")
def run_all(config: Optional[Path] = ConfigOpt, run_dir: Path = RunDirOpt, set_: list[str] = SetOpt, force: bool = ForceOpt) -> None:
    """Run every stage in order (each skipped when already up to date)."""
    _run(list(STAGES), config, run_dir, set_, force)


@app.command("testbed")
def testbed(config: Optional[Path] = ConfigOpt, set_: list[str] = SetOpt, force: bool = ForceOpt) -> None:
    """Build (or reuse) the embedded testbed model under data/models/testbed/."""
    from leakfix.pipeline import load_config
    from leakfix.runtime import ROOT
    from leakfix.testbed.build import TestbedConfig, build_testbed

    _setup()
    cfg = load_config(config, set_)
    path = build_testbed(TestbedConfig(**cfg.testbed), ROOT / "data" / "models" / "testbed", force=force)
    console.print(f"testbed model: {path}")


@app.command("detect-text")
def detect_text(input: Path = typer.Argument(..., help="JSONL of {id, lang, text}"), output: Path = typer.Option(..., "--output", "-o")) -> None:
    """Detect leaks in plain texts: one output line {id, spans, verdict} per input line."""
    from leakfix.detect import detect_text_file

    _setup()
    detect_text_file(input, output)
    console.print(f"wrote {output}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
