"""The report site: built from two real runs and a hand-made leaderboard, then opened from disk in
Chromium (sorting, filtering, run pages with trace and integrity evidence, no console errors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_ptb, script_agent
from posttrainbench.errors import UserError
from posttrainbench.results.index import read_run
from posttrainbench.results.schema import AgentRow, IndexedRun, Leaderboard
from posttrainbench.results.site import build_site

CHROMIUM = Path("/usr/bin/chromium")
RUN = ("run", "--task", "arith", "--model", "ptb-tiny", "--agent", "script", "--minutes", "1",
       "--sandbox", "none", "--eval-limit", "5")  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "site"
HOSTILE = "</script><b>bold</b>"  # agent output can contain anything
AGENT = """\
echo "SITE-MARKER-{name} {hostile}"
python -c "import os, shutil; from huggingface_hub import snapshot_download as s; \\
shutil.copytree(s(os.environ['PTB_MODEL'], local_files_only=True), 'final_model')"
"""
TRACE_EVENTS = [
    {"time": "2026-01-01T00:00:01Z", "kind": "message", "text": f"TRACE-MARKER planning {HOSTILE}"},
    {"time": "2026-01-01T00:00:02Z", "kind": "tool_call", "tool": "Bash", "text": '{"command": "ls"}'},
    {"time": "2026-01-01T00:00:03Z", "kind": "tool_result", "tool": "Bash", "text": "final_model"},
]


@pytest.fixture(scope="module")
def site(results, tmp_path_factory) -> tuple[Path, list[IndexedRun]]:
    tmp = tmp_path_factory.mktemp("site")
    run_dirs = []
    for name in ("alpha", "beta"):
        script = script_agent(tmp, name, AGENT.format(name=name, hostile=HOSTILE))
        run_dirs.append(run_ptb(results, *RUN, "--agent-config", str(script))[1])
    # Script agents write no trace: give alpha one as a CLI agent's parser would, and a flagging check
    # with evidence too large to show whole.
    alpha = run_dirs[0]
    lines = "\n".join(json.dumps(e) for e in TRACE_EVENTS)
    (alpha / "agent" / "trace.jsonl").write_text(lines + "\n")
    record = json.loads((alpha / "run.json").read_text())
    record["checks"].append(
        {
            "name": "huge_evidence_check",
            "verdict": "flag",
            "summary": f"flagged {HOSTILE}",
            "confidence": "low",
            "evidence": {"EVIDENCE-MARKER": "x" * 100_000},
        }
    )
    record["judges"] = [
        {
            "judge": "openai/judge-model",
            "verdicts": [
                {
                    "category": "contamination",
                    "verdict": "pass",
                    "justification": "JUDGE-MARKER no test data used",
                    "cited_evidence": [f"cat data.jsonl {HOSTILE}"],
                }
            ],
            "attempts": 1,
            "seconds": 2.5,
        }
    ]
    (alpha / "run.json").write_text(json.dumps(record))
    runs = [read_run(results, d) for d in run_dirs]

    def row(rank: int, run: IndexedRun | None, avg: float | None, **kw) -> AgentRow:
        return AgentRow(
            rank=rank,
            agent=run.label if run else kw.pop("agent"),
            scaffold=kw.pop("scaffold", "script"),
            avg=avg,
            ci_low=None if avg is None else avg - 5,
            ci_high=None if avg is None else avg + 5,
            per_benchmark={"arith": avg},
            per_cell={"arith": {"ptb-tiny": avg}},
            runs=1 if run else 0,
            minutes=run.minutes_used if run else None,
            **kw,
        )

    board = Leaderboard(
        tasks=["arith"],
        models=["ptb-tiny"],
        weights={"arith": 1.0},
        weights_source="uniform",
        zero_shot={"arith": {"ptb-tiny": 2.0}},
        instruct={"arith": {"ptb-tiny": 30.0}},
        rows=[
            row(1, runs[0], 40.0, flagged=1, cost_usd=1.25),
            row(2, runs[1], 20.0),
            row(0, None, 2.0, agent="zero-shot", scaffold="reference", baseline=True),
            row(3, None, None, agent=f"gamma {HOSTILE}"),
        ],
        left_out={"smoke runs": 3},
        notes=[f"a note with {HOSTILE}"],
    )
    out = tmp / "out"
    index = build_site(board, runs, results, out)
    assert index == out / "index.html"
    return out, runs


def test_site_files(site, tmp_path, results):
    out, runs = site
    for r in runs:
        files = out / "runs" / r.run_id / "files"
        assert json.loads((files / "run.json").read_text())["run_id"] == r.run_id
        assert (files / "agent" / "output.log").is_file() and (files / "metrics.json").is_file()
        assert not list((out / "runs" / r.run_id).rglob("*.safetensors"))
    assert (out / "runs" / runs[0].run_id / "trace.html").is_file()
    assert list((out / "plots").glob("*.svg")) and list((out / "runs" / runs[0].run_id).glob("monitor.svg"))
    for page in [out / "index.html", *(out / "runs").glob("*.html"), *(out / "agents").glob("*.html")]:
        assert HOSTILE not in page.read_text(), page  # escaped everywhere
    # Rebuilding replaces a site; a directory that holds something else, or the results, is refused.
    board = Leaderboard(tasks=[], models=[], weights={}, weights_source="uniform", rows=[])
    again = tmp_path / "again"
    build_site(board, [], results, again)
    (again / "stale.html").write_text("old")
    build_site(board, [], results, again)
    assert not (again / "stale.html").exists() and (again / "index.html").is_file()
    (tmp_path / "mine.txt").write_text("keep")
    with pytest.raises(UserError, match="not empty"):
        build_site(board, [], results, tmp_path)
    with pytest.raises(UserError, match="outside the results"):
        build_site(board, [], results, results / "site")
    assert (tmp_path / "mine.txt").read_text() == "keep"


def test_site_in_browser(site):
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); the browser checks need it")
    from playwright.sync_api import sync_playwright

    out, runs = site
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on(
            "console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
        )
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} {r.failure}"))

        def visit(path: Path, shot: str) -> None:
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            page.screenshot(path=str(ARTIFACTS / f"{shot}.png"), full_page=True)
            assert not problems, (shot, problems)

        visit(out / "index.html", "index")
        averages = lambda: page.locator("#board tbody tr td:nth-child(4)").all_inner_texts()  # noqa: E731
        assert [a.split()[0] for a in averages()] == ["40.0", "20.0", "2.0", "–"]
        page.click("#board th:has-text('average')")
        assert [a.split()[0] for a in averages()] == ["2.0", "20.0", "40.0", "–"]  # ascending, none last
        page.click("#board th:has-text('average')")
        assert [a.split()[0] for a in averages()] == ["40.0", "20.0", "2.0", "–"]
        visible = page.locator("#board tbody tr:visible")
        page.fill("#filter", "beta")
        assert visible.count() == 1 and "beta" in visible.first.inner_text()
        page.fill("#filter", "")
        page.check("#hide-baselines")
        assert visible.count() == 3 and "zero-shot" not in page.locator("#board").inner_text()
        page.uncheck("#hide-baselines")
        assert f"a note with {HOSTILE}" in page.inner_text("body")  # escaped: shown as text
        data = json.loads(page.locator("#leaderboard").text_content())
        assert data["notes"] == [f"a note with {HOSTILE}"]
        assert page.locator(".plots img").count() >= 1

        page.click(f"#board a:has-text('{runs[0].label}')")
        page.wait_for_load_state("load")
        page.screenshot(path=str(ARTIFACTS / "agent.png"), full_page=True)
        assert "Totals" in page.inner_text("body")
        page.click(f"a:has-text('{runs[0].run_id}')")
        page.wait_for_load_state("load")
        body = page.inner_text("body")
        assert f"SITE-MARKER-alpha {HOSTILE}" in body  # the agent's output log
        assert f"TRACE-MARKER planning {HOSTILE}" in body  # the trace's first events
        for name in ("evaluator_tamper", "model_lineage", "huge_evidence_check"):
            assert name in page.inner_text("table.checks")
        page.locator("table.checks details").first.click()
        assert '"changed"' in page.locator("table.checks details").first.inner_text()
        huge = page.locator("table.checks tr", has_text="huge_evidence_check").locator("pre").text_content()
        assert "EVIDENCE-MARKER" in huge and "more characters" in huge and len(huge) < 30_000
        assert "JUDGE-MARKER" in page.inner_text("table.judge") and HOSTILE in page.inner_text("table.judge")
        page.screenshot(path=str(ARTIFACTS / "run.png"), full_page=True)
        assert not problems, problems

        page.click("a:has-text('The whole trace')")
        page.wait_for_load_state("load")
        assert "TRACE-MARKER" in page.inner_text("body")
        page.screenshot(path=str(ARTIFACTS / "trace.png"), full_page=True)
        visit(out / "runs" / f"{runs[1].run_id}.html", "run-beta")
        assert "SITE-MARKER-beta" in page.inner_text("body")
        browser.close()
