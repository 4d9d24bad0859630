"""Kestra conformance: run every case of the corpus that asserts something a machine can check (a
state, a taskrun count, a note the runner parses), on an embedded server.

    python3 bench/conformance.py                      # per-case results, per-feature table, summary
    python3 bench/conformance.py --markdown           # the per-feature table as Markdown (for the README)
    python3 bench/conformance.py --expected-failures  # tests/conformance/expected_failures.py content
    python3 bench/conformance.py --informational      # the note segments no machine checks, and why
    python3 bench/conformance.py -k retry             # only the cases whose id contains "retry"

The last line printed is always ``conformance: P/N cases pass; A assertions checked, I note segments
informational`` (A and I over the whole manifest, from its text).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import textwrap
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "conformance"))
sys.path.insert(0, str(REPO))

from corpus import Case, CaseResult, asserted_cases, corpus_root, load_cases, run_case  # noqa: E402
from notes import informational_reason, parse_note  # noqa: E402


async def run_all(cases: list[Case], root: Path, verbose: bool) -> list[tuple[Case, CaseResult]]:
    from engine.runtime import Runtime
    from triggers.service import TriggerService

    results: list[tuple[Case, CaseResult]] = []
    with tempfile.TemporaryDirectory(prefix="conformance-home-") as home:
        os.environ["ENGINE_HOME"] = home
        os.environ.pop("ENGINE_NATS_URL", None)
        async with Runtime(home=Path(home)) as rt:
            roles = [
                asyncio.create_task(rt.executor().run()),
                asyncio.create_task(rt.worker(concurrency=32).run()),
                asyncio.create_task(TriggerService(rt, schedules=False, durable="triggers").run()),
            ]
            try:
                for case in cases:
                    result = await run_case(case, rt, root=root, triggers_durable="triggers")
                    results.append((case, result))
                    if verbose:
                        mark = "PASS" if result.passed else "FAIL"
                        line = f"{mark} {case.id:<58} {result.seconds:5.1f}s"
                        if not result.passed:
                            line += f"  {result.reason[:300]}"
                        print(line, file=sys.stderr, flush=True)
            finally:
                for task in roles:
                    task.cancel()
                await asyncio.gather(*roles, return_exceptions=True)
    return results


def feature_table(results: list[tuple[Case, CaseResult]]) -> list[tuple[str, int, int]]:
    passed: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    for case, result in results:
        for tag in case.needs or ("(none)",):
            total[tag] += 1
            passed[tag] += int(result.passed)
    return sorted(((t, passed[t], total[t]) for t in total), key=lambda r: (-r[2], r[0]))


def print_table(rows: list[tuple[str, int, int]], markdown: bool) -> None:
    if markdown:
        print("| feature (`needs`) | pass | total |")
        print("|---|---:|---:|")
        for tag, p, n in rows:
            print(f"| {tag} | {p} | {n} |")
        return
    width = max([len(r[0]) for r in rows] + [7])
    print(f"{'feature':<{width}}  pass/total")
    for tag, p, n in rows:
        print(f"{tag:<{width}}  {p:>4}/{n:<4} {'#' * p}{'.' * (n - p)}")


def short_reason(result: CaseResult) -> str:
    """The first failure of a case, without suggestions and positions, in at most ~160 characters."""
    reason = result.details[0] if result.details else result.reason
    reason = re.sub(r" — did you mean .*", "", reason)
    reason = re.sub(r" \(line \d+, column \d+\)", "", reason)
    reason = " ".join(reason.split())
    reason = re.sub(r"/[^\s'\"]*/conformance-[^/\s'\"]+/", "<tmp>/", reason)  # stable across runs
    reason = re.sub(r"\b[0-9A-Za-z]{22}\b", "<id>", reason)
    if len(result.details) > 1:
        reason += f" (+{len(result.details) - 1} more)"
    return reason if len(reason) <= 160 else reason[:157] + "..."


def _entry(key: str, text: str) -> str:
    """One ``key: value,`` line of the dict, the value split in chunks under 110 columns."""
    line = f"    {json.dumps(key)}: {json.dumps(text, ensure_ascii=False)},"
    if len(line) <= 110:
        return line
    chunks = textwrap.wrap(text, 80, drop_whitespace=False, break_on_hyphens=False)
    body = "".join(f"        {json.dumps(c, ensure_ascii=False)}\n" for c in chunks)
    return f"    {json.dumps(key)}: (\n{body}    ),"


def print_expected_failures(results: list[tuple[Case, CaseResult]]) -> None:
    print('"""Known conformance failures: case id -> the first reason the runner reported (generated).')
    print()
    print("A case listed here is ``xfail(strict=True)``: if it starts passing, the test run fails until the")
    print("entry is removed. Regenerate with:")
    print()
    print("    python3 bench/conformance.py --expected-failures > tests/conformance/expected_failures.py")
    print('"""')
    print()
    print("EXPECTED_FAILURES: dict[str, str] = {")
    for case, result in results:
        if not result.passed:
            print(_entry(case.id, short_reason(result)))
    print("}")


def print_informational(cases: list[Case]) -> None:
    """Each note segment no form parses, by reason (tests/conformance/notes.py: INFORMATIONAL)."""
    by_reason: dict[str, list[str]] = defaultdict(list)
    for case in cases:
        for expected in (case.expected, *(t.expected for t in case.then)):
            for note in expected.notes:
                for seg in parse_note(note).informational:
                    by_reason[informational_reason(seg) or "(no reason: add one)"].append(f"{case.id}: {seg}")
    for reason, segments in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
        print(f"{len(segments):3d}  {reason}")
        for seg in segments:
            print(f"       {seg}")


def _logs_to_stderr() -> None:
    """Engine logs (structlog) go to stderr: stdout carries only the table / generated file."""
    import structlog

    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--markdown", action="store_true", help="print the per-feature table as Markdown")
    parser.add_argument(
        "--expected-failures", action="store_true", help="print expected_failures.py for this run"
    )
    parser.add_argument(
        "--informational", action="store_true", help="list the note segments no machine checks, and why"
    )
    parser.add_argument("-k", dest="only", default=None, help="only cases whose id contains this")
    parser.add_argument("-q", "--quiet", action="store_true", help="no per-case lines")
    args = parser.parse_args(argv)

    _logs_to_stderr()
    root = corpus_root(REPO)
    if not (root / "manifest.yaml").is_file():
        print(f"conformance corpus not found at {root}", file=sys.stderr)
        return 2
    every = load_cases(root)
    if args.informational:
        print_informational(every)
        return 0
    cases = asserted_cases(root)
    if args.only:
        cases = [c for c in cases if args.only in c.id]
    started = time.monotonic()
    results = asyncio.run(run_all(cases, root, verbose=not args.quiet))
    elapsed = time.monotonic() - started
    passed = sum(r.passed for _, r in results)
    rows = feature_table(results)
    if args.expected_failures:
        print_expected_failures(results)
    else:
        print_table(rows, args.markdown)
    reached = sum(r.checked_notes for _, r in results)
    assertions, informational = (sum(x) for x in zip(*(c.assertions() for c in every), strict=True))
    print(
        f"({elapsed:.0f} s; {len(every)} cases in the manifest, {len(every) - len(asserted_cases(root))} "
        f"with nothing a machine can check; {reached} assertions reached by this run)",
        file=sys.stderr,
    )
    summary = (
        f"conformance: {passed}/{len(results)} cases pass; {assertions} assertions checked, "
        f"{informational} note segments informational"
    )
    print(summary, file=sys.stderr if args.expected_failures else sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
