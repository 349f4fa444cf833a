"""Wall time and generation speed of `trustdiff demo` (after install).

Usage: .venv/bin/python bench/demo_time.py
Prints the machine, the command and `RESULT <name> <value>` lines for BENCHMARKS.md.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    out = Path(tempfile.mkdtemp(prefix="td-demo-"))
    cmd = [sys.executable, "-m", "trustdiff", "demo", "--out", str(out)]
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, {platform.python_version()}")
    print("command:", " ".join(cmd))
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    report = json.loads((out / "report.json").read_text())
    timings = report["timings"]
    print(json.dumps(timings, indent=2))
    print(f"RESULT demo_wall_s {wall:.1f}")
    print(f"RESULT demo_generated_tokens_per_s {timings['generated_tokens_per_s']:.1f}")


if __name__ == "__main__":
    main()
