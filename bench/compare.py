"""Two versions of the suite side by side: single appends and bulk ingest, in interleaved rounds.

    git worktree add --detach ../baseline <commit>       # the version to compare with
    .venv/bin/python bench/compare.py --baseline ../baseline [--rounds 5] [--env KEY=VALUE ...]

Both suites run at once on this machine, each from its own source tree (the baseline's through
PYTHONPATH), with the default settings; rounds alternate between them so that the machine's load
affects both alike. Prints the median of each figure and the ratio of this tree's to the baseline's.
`--env` settings apply to this tree's suite only (for example limits or tracing switched on), and
`--baseline .` compares this tree with itself under those settings.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import run as bench  # noqa: E402

from tests.harness import Suite  # noqa: E402


def _suite(tree: Path, env: dict[str, str]) -> Suite:
    extra = dict(env)
    if tree.resolve() != ROOT:
        extra["PYTHONPATH"] = f"{tree.resolve()}:{tree.resolve() / 'gen'}"
    return Suite(Path(tempfile.mkdtemp(prefix="allsource-compare-")), extra_env=extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="source tree of the version to compare with")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--single-calls", type=int, default=6000)
    parser.add_argument("--bulk-requests", type=int, default=100)
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for this tree's suite")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    suites = {"this tree": _suite(ROOT, env), "baseline": _suite(args.baseline, {})}
    figures: dict[str, dict[str, list[float]]] = {name: {"single": [], "bulk": []} for name in suites}
    try:
        for suite in suites.values():
            suite.start_all()
        for r in range(args.rounds):
            order = list(suites.items()) if r % 2 == 0 else list(reversed(suites.items()))
            for name, suite in order:
                bench.CREDENTIALS = suite.auth_metadata()
                ingest = suite.address("ingest")
                figures[name]["single"].append(asyncio.run(bench.single_appends(ingest, args.single_calls)))
                figures[name]["bulk"].append(asyncio.run(bench.bulk_ingest(ingest, args.bulk_requests, round_no=r)))
            print(
                f"round {r + 1}/{args.rounds}: "
                + "; ".join(
                    f"{n} single {f['single'][-1]:,.0f}/s bulk {f['bulk'][-1]:,.0f} ev/s" for n, f in figures.items()
                ),
                flush=True,
            )
    finally:
        for suite in suites.values():
            suite.stop_all()
            shutil.rmtree(suite.workdir, ignore_errors=True)
    print(f"\nmedians of {args.rounds} interleaved rounds (baseline: {args.baseline})")
    for figure, unit in (("single", "AppendEvents calls/s, 32 clients"), ("bulk", "BatchAppend events/s")):
        ours = statistics.median(figures["this tree"][figure])
        theirs = statistics.median(figures["baseline"][figure])
        ratios = [a / b for a, b in zip(figures["this tree"][figure], figures["baseline"][figure], strict=True)]
        print(f"  {unit:<36} this tree {ours:>10,.0f}  baseline {theirs:>10,.0f}  ratio of medians {ours / theirs:.2f}")
        print(
            f"  {'':<36} median of per-round ratios {statistics.median(ratios):.2f} "
            f"(rounds {', '.join(f'{r:.2f}' for r in ratios)})"
        )


if __name__ == "__main__":
    main()
