"""Progress of the long commands, as a user sees it: plain lines on stderr when it is a
pipe (a log, CI, cron), rich's bar on a real terminal (a pty), nothing with --quiet; and
stdout, the command's result, the same in every case. (`backfill`'s progress is checked
in test_flows.py, on the backfill it runs anyway.)"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from pipeline.config import Settings
from tests.conftest import clean_env, run_cli, settings_env

# Every advance prints a line: the counts are then exactly 1, 2, ... N, and no test waits.
EVERY_ADVANCE = {"SESSIONFLOW_PROGRESS_INTERVAL": "0"}
ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
DAY = "2026-11-02"


def counted(stderr: str, command: str, unit: str) -> list[tuple[int, str, int]]:
    """(count, total as printed, percent) of each `command: N / T unit (P%)` line."""
    pattern = re.compile(rf"^{command}: ([\d,]+) / (~?[\d,]+) {unit} \((\d+)%\)", re.M)
    return [
        (int(done.replace(",", "")), total, int(percent))
        for done, total, percent in pattern.findall(stderr)
    ]


def events_file(path: Path, count: int) -> Path:
    """`count` valid events of one day, one visitor per ten, and a blank line among them."""
    lines = [
        json.dumps(
            {
                "event_id": f"e{n}",
                "event_name": "page_view",
                "event_ts": f"{DAY}T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z",
                "site_id": "shop.example",
                "visitor_id": f"v{n // 10}",
                "page_url": f"https://shop.example/p{n % 7}",
            }
        )
        for n in range(count)
    ]
    lines.insert(count // 2, "")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_import_writes_plain_lines_up_to_the_true_total_when_stderr_is_a_pipe(
    tmp_path: Path,
) -> None:
    source = events_file(tmp_path / "history.jsonl", 2500)
    lines_in_file = len(source.read_bytes().splitlines())  # the blank one counts
    assert lines_in_file == 2501
    env = clean_env(SESSIONFLOW_DATA_DIR=str(tmp_path / "data"), **EVERY_ADVANCE)

    result = run_cli(env, "import", str(source))

    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "accepted 2500, rejected 0, duplicates 0 (0 in the file, 0 already in the lake)\n"
    )
    assert "\x1b" not in result.stderr
    seen = counted(result.stderr, "import", "lines")
    # Told a thousand lines at a time, then the rest; the last line is the summary's.
    assert seen == [
        (1000, "2,501", 39), (2000, "2,501", 79), (2501, "2,501", 100), (2501, "2,501", 100),
    ]  # fmt: skip
    assert re.search(
        r"^import: 1,000 / 2,501 lines \(39%\), [\d,]+ lines/s, ETA [\d.]+ s$", result.stderr, re.M
    )
    stage = result.stderr.splitlines()[-2:]
    assert stage[0] == "import: de-duplicating, sessionizing, writing the lake ..."
    assert re.fullmatch(r"import: done, [\d.]+ s in all", stage[1])


def test_quiet_shows_no_progress(tmp_path: Path) -> None:
    source = events_file(tmp_path / "history.jsonl", 50)
    env = clean_env(SESSIONFLOW_DATA_DIR=str(tmp_path / "data"), **EVERY_ADVANCE)
    result = run_cli(env, "--quiet", "import", str(source))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith("accepted 50, rejected 0")


def test_generate_counts_its_events_against_the_target(tmp_path: Path) -> None:
    # 12,000 a day: the generator writes 10,000 at a time, so one line on the way.
    env = clean_env(SESSIONFLOW_DATA_DIR=str(tmp_path / "data"), **EVERY_ADVANCE)
    out = tmp_path / "generated"
    result = run_cli(
        env, "generate", "--days", "1", "--events-per-day", "12000", "--start", DAY,
        "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    written = len((out / "events.jsonl").read_bytes().splitlines())
    assert result.stdout.startswith(f"wrote {written} events")
    assert "\x1b" not in result.stderr
    seen = counted(result.stderr, "generate", "events")
    assert [done for done, _, _ in seen] == [10_000, written, written]
    # On the way, the target (about 12,000: Monday's weight and the day's jitter), never
    # 100% ...
    target = int(seen[0][1].removeprefix("~").replace(",", ""))
    assert seen[0][1] == seen[1][1] == f"~{target:,}" and 0.8 * 12_000 < target < 1.2 * 12_000
    assert seen[1][2] < 100
    # ... at the end, the true count.
    assert seen[-1][1:] == (f"{written:,}", 100)


def test_produce_file_counts_the_file_lines(kafka_settings: Settings, tmp_path: Path) -> None:
    source = events_file(tmp_path / "events.jsonl", 2100)
    source.write_text(source.read_text() + "{not json\n")
    lines_in_file = len(source.read_bytes().splitlines())  # 2,102
    env = settings_env(kafka_settings, **EVERY_ADVANCE)
    assert run_cli(env, "topics").returncode == 0

    result = run_cli(env, "produce", "--file", str(source))

    assert result.returncode == 4, result.stderr
    assert result.stdout.splitlines() == [
        f"line {lines_in_file}: bad_json: body is not valid JSON (JSONDecodeError)",
        "produced 2100 events; rejected 1",
    ]
    assert "\x1b" not in result.stderr
    seen = counted(result.stderr, "produce", "lines")
    counts = [done for done, _, _ in seen]
    assert len(seen) >= 4 and counts[:-1] == sorted(set(counts[:-1]))  # rising on the way
    assert counts[-2:] == [lines_in_file, lines_in_file]
    assert {total for _, total, _ in seen} == {f"{lines_in_file:,}"}
    assert [percent for _, _, percent in seen] == [done * 100 // lines_in_file for done in counts]


def run_on_a_terminal(
    env: dict[str, str], *args: str, timeout: float = 120
) -> tuple[subprocess.CompletedProcess[str], str]:
    """`sessionflow ARGS` with its stderr on a pseudo-terminal (stdout a pipe, as in
    `sessionflow import F > out.txt` typed at a terminal): the result, and what the
    terminal received."""
    controller, terminal = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", *args],
        env=env, stdout=subprocess.PIPE, stderr=terminal, text=True,
    )  # fmt: skip
    os.close(terminal)
    received = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the child closed its side, it is done
                break
            if not chunk:
                break
            received += chunk
        stdout = process.communicate(timeout=max(1.0, deadline - time.monotonic()))[0]
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()
            process.wait()
    completed = subprocess.CompletedProcess(process.args, process.returncode, stdout, "")
    return completed, received.decode(errors="replace")


def terminal_env(tmp_path: Path, **values: str) -> dict[str, str]:
    env = clean_env(SESSIONFLOW_DATA_DIR=str(tmp_path), TERM="xterm-256color", COLUMNS="120")
    env.pop("NO_COLOR", None)
    env.update(values)
    return env


def test_import_draws_a_bar_with_rate_and_eta_on_a_terminal(tmp_path: Path) -> None:
    source = events_file(tmp_path / "history.jsonl", 1500)
    piped = run_cli(clean_env(SESSIONFLOW_DATA_DIR=str(tmp_path / "piped")), "import", str(source))

    result, screen = run_on_a_terminal(terminal_env(tmp_path / "tty"), "import", str(source))

    assert result.returncode == 0, screen
    assert result.stdout == piped.stdout  # the summary is the same, on stdout
    assert "\x1b[" in screen  # drawn, not printed as lines
    text = ESCAPE.sub("", screen)
    assert "━" in text
    assert re.search(r"import .*\d+%.*[\d,]+/1,501 lines\s+(-- |[\d,]+ )lines/s\s+ETA", text)
    assert re.search(r"import .*100% 1,501/1,501 lines\s+[\d,]+ lines/s\s+done in", text)
    assert "de-duplicating, sessionizing, writing the lake" in text
    assert "import: " not in text  # no plain lines


def test_a_dumb_terminal_gets_plain_lines(tmp_path: Path) -> None:
    source = events_file(tmp_path / "history.jsonl", 20)
    env = terminal_env(tmp_path / "tty", TERM="dumb", **EVERY_ADVANCE)
    result, screen = run_on_a_terminal(env, "import", str(source))
    assert result.returncode == 0, screen
    assert "\x1b" not in screen
    assert "import: 21 / 21 lines (100%)" in screen
