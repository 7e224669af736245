"""`sessionflow demo`, twice on a fresh data dir against the real broker: every step runs,
the late costs rebuild today (and say why), the tables and the report are there, and the
second run adds exactly its own traffic to the tables (nothing is counted twice)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from pipeline.config import Settings
from pipeline.dev.demo import EXPECTED_FLAGS
from tests.conftest import run_cli, settings_env

_NUMBER = r"([\d,]+)"
CURRENCY_CHECK = "amounts in the reporting currency"
# What random traffic can flag: a small campaign's cost row with no session that day.
RANDOM_COST_CHECKS = {"costs without sessions", "share of cost matched to sessions"}


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def test_demo_runs_twice_and_adds_exactly_its_own_traffic(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    env = settings_env(kafka_settings, PREFECT_HOME=str(tmp_path / "prefect"))
    report = kafka_settings.data_dir / "report.html"
    page_views: list[tuple[int, int, int]] = []  # (in the tables, before the run, sent)
    for run in (1, 2):
        result = run_cli(env, "demo", "--events-per-day", "1500")
        out = result.stdout
        assert result.returncode == 0, f"run {run}: {out}\n{result.stderr}"
        assert len(out.splitlines()) <= 60, f"run {run} does not fit a screen:\n{out}"

        header = re.search(r"^sessionflow demo: (\S+)\.\.(\S+) ", out, re.MULTILINE)
        assert header is not None, out
        first, today = date.fromisoformat(header[1]), date.fromisoformat(header[2])
        days = [first.fromordinal(first.toordinal() + n) for n in range(3)]
        assert days[-1] == today

        steps = [int(m[1]) for m in re.finditer(r"^ ?(\d{1,2})  \S", out, re.MULTILINE)]
        assert steps == list(range(1, 13)), out

        # 4: past days through the SDK and GA4 MP, today through both HTTP dialects.
        for day in days[:-1]:
            assert re.search(rf"^\s+{day}\s+[\d,]+ events: SDK [\d,]+ \+ /mp/collect", out, re.M)
        assert re.search(
            rf"^\s+{today}\s+[\d,]+ events: /api/event [\d,]+ \+ /mp/collect", out, re.M
        )
        assert re.search(r"; 0 rejected$", out, re.MULTILINE), out
        # 5: de-duplication dropped exactly the repeats (retried requests) sent.
        assert "repeats dropped (as sent), 0 rejected" in out

        # 7, 8: each day built, then today's late costs rebuild today, with the reason.
        for day in days:
            assert re.search(rf"^\s+{day}  built: ", out, re.MULTILINE), out
        assert re.search(rf"^\s+{today}  rebuilt: costs changed$", out, re.MULTILINE), out
        assert re.search(rf"^\s+{days[0]}, {days[1]}  up to date: not rebuilt$", out, re.M)

        # 1: embedded defaults have no [currency_rates]: every purchase in the currency.
        assert re.search(
            r"^\s+purchases in USD only \(set \[currency_rates\] EUR for some in EUR too\)$",
            out, re.M,
        ), out  # fmt: skip
        # 8: the quality checks pass, or each flagged one says why the demo expects it;
        # never the currency check (no purchase needs a rate it lacks).
        checks = re.search(r"^\s+quality checks after each build: (.*)$", out, re.M)
        assert checks is not None, out
        flagged = re.findall(r"^\s{19}(\S[^:(]*?)(?: \([\d, -]+\))?: ", out, re.M)
        if not checks[1].startswith("all "):
            assert flagged and set(flagged) <= RANDOM_COST_CHECKS, out
            for name in flagged:
                assert f"    ({EXPECTED_FLAGS[name]})" in out, out
        assert CURRENCY_CHECK not in out

        # 9: the daily site summary, a row per day and the total.
        for label in [*map(str, days), "total"]:
            assert re.search(rf"^    {label}\s+[\d,]+\s", out, re.MULTILINE), out
        total = re.search(r"^    total\s+[\d,]+\s+-\s+" + _NUMBER, out, re.MULTILINE)
        assert total is not None
        growth = re.search(
            rf"page views in the tables: {_NUMBER} = {_NUMBER} before this run \+ {_NUMBER} "
            "sent by it: nothing counted twice",
            out,
        )
        assert growth is not None, out
        after, before, sent = (_number(growth[n]) for n in (1, 2, 3))
        assert _number(total[1]) == after
        assert sent > 0
        page_views.append((after, before, sent))

        # 10: the top campaigns, both ways.
        assert "  by cost per session:" in out and "  by session value:" in out
        assert re.search(r"^    google / cpc / \S+\s+[\d,]+\s+[\d,.]+\s", out, re.MULTILINE)

        # 11, 12: the report, and where to go next.
        assert re.search(rf"^11  report\s+{re.escape(str(report))}$", out, re.MULTILINE), out
        assert report.stat().st_size > 0
        assert "sessionflow query" in out

    (first_after, first_before, first_sent), (second_after, second_before, second_sent) = page_views
    assert first_before == 0 and first_after == first_sent
    # The second run finds the first's tables, and adds exactly what it sent.
    assert second_before == first_after
    assert second_after == first_after + second_sent
