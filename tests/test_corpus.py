"""The shared conformance corpus, run through the local engine (marker ``corpus``).

Fails when a case that the skip table does not list fails, and when a skip-table entry passes
(it must then leave ``tests/conformance_skip.toml``) or names no case.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from flowstate.conformance import load_skip_table, run_conformance

pytestmark = pytest.mark.corpus

CORPUS = Path(__file__).parents[1] / ".." / "shared" / "conformance"
SKIP_FILE = Path(__file__).parent / "conformance_skip.toml"


def _listing(cases: list[dict[str, str]], limit: int = 60) -> str:
    lines = [f"  {c['case_id']}: {c['reason']}"[:400] for c in cases[:limit]]
    if len(cases) > limit:
        lines.append(f"  ... and {len(cases) - limit} more")
    return "\n".join(lines)


def test_corpus(tmp_path: Path) -> None:
    if not (CORPUS / "cases").is_dir():
        message = f"conformance corpus not found at {CORPUS.resolve()}"
        if os.environ.get("REQUIRE_CORPUS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    report = tmp_path / "report.json"
    out = io.StringIO()
    exit_code = run_conformance(CORPUS, None, SKIP_FILE, report, out)
    cases = json.loads(report.read_text(encoding="utf-8"))["cases"]
    summary = out.getvalue().splitlines()[-1]

    failures = [c for c in cases if c["result"] == "fail"]
    assert not failures, f"{len(failures)} corpus cases fail ({summary}):\n{_listing(failures)}"
    assert exit_code == 0

    stale = [c for c in cases if c["skip_listed"] and c["result"] == "pass"]
    assert not stale, (
        f"{len(stale)} cases pass but are in {SKIP_FILE.name}; remove them:\n"
        + "\n".join(f"  {c['case_id']}" for c in stale)
    )
    unknown = sorted(set(load_skip_table(SKIP_FILE)) - {c["case_id"] for c in cases})
    assert not unknown, f"{SKIP_FILE.name} lists unknown case ids:\n" + "\n".join(
        f"  {case_id}" for case_id in unknown
    )
