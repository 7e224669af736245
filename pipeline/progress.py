"""How far a long command is (`import`, `backfill`, `produce`, `generate`), on stderr.

On a terminal rich can draw on: a bar with the count, the rate and the time left. Anywhere
else (a log file, CI, cron; `TERM=dumb`): a plain line every few seconds and one at the
end, without escape sequences. stdout stays the command's own output, so a pipe gets the
summary and nothing else. The work calls `Meter.advance` as often as it likes: a call is
a sum and a clock read; only the display is throttled. The rooms never import this
module (the CLI does, lazily: rich costs 75 ms to import); they take a plain callback,
and the CLI hands them `Meter.advance`.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, TextIO

from rich.console import Console
from rich.file_proxy import FileProxy
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskProgressColumn
from rich.table import Column
from rich.text import Text

from pipeline.config import PROGRESS_INTERVAL_ENV
from pipeline.errors import ConfigError

# Seconds between plain lines, unless SESSIONFLOW_PROGRESS_INTERVAL says otherwise.
PLAIN_INTERVAL_S = 5.0
# The bar is redrawn this often: often enough to look alive, rarely enough to cost nothing.
BAR_INTERVAL_S = 0.25


class _Display(Protocol):
    def show(self, done: int, elapsed: float) -> None: ...

    def stage(self, description: str, done: int, elapsed: float) -> None: ...

    def finish(self, done: int, elapsed: float) -> None: ...


class Meter:
    """The count of one command's work, shown at most once per interval."""

    def __init__(self, display: _Display, interval_s: float) -> None:
        self.done = 0
        self.started = time.monotonic()
        self._display = display
        self._interval_s = interval_s
        self._due = self.started + interval_s

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if now >= self._due:
            self._due = now + self._interval_s
            self._display.show(self.done, now - self.started)

    def stage(self, description: str) -> None:
        """The counted part is done; what follows (`description`) has no count."""
        self._display.stage(description, self.done, self.elapsed())

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def finish(self) -> None:
        self._display.finish(self.done, self.elapsed())


@contextmanager
def progress(
    command: str,
    total: int | None,
    unit: str,
    *,
    quiet: bool = False,
    estimated: bool = False,
) -> Iterator[Meter]:
    """A meter for `command`'s work of `total` `unit` (None: not known ahead; `estimated`:
    about that many, the true count shown at the end). When the work ends without an
    error, the display ends with the final count; `quiet` shows nothing."""
    out = sys.stderr
    if quiet:
        yield Meter(_Silent(), float("inf"))
        return
    console = Console(file=out, highlight=False)  # rich reads NO_COLOR and TERM itself
    if not console.is_terminal or console.is_dumb_terminal:
        meter = Meter(_Lines(out, command, total, unit, estimated), plain_interval())
        yield meter
        meter.finish()
        return
    bar = _Bar(console, command, total, unit)
    with bar.bar, _logs_above(console):
        meter = Meter(bar, BAR_INTERVAL_S)
        yield meter
        meter.finish()


def plain_interval() -> float:
    text = os.environ.get(PROGRESS_INTERVAL_ENV)
    if text is None:
        return PLAIN_INTERVAL_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise ConfigError(
            f"{PROGRESS_INTERVAL_ENV} must be a number of seconds (0 or more), got {text!r}"
        )
    return seconds


def lines_in(path: Path) -> int | None:
    """The lines of a file as `readline` splits them (a last line without its newline
    counts too), read 1 MB at a time: a fraction of a second per 100 MB. None for what is
    not a regular file (a FIFO, /dev/zero) or cannot be read: the command says why."""
    if not path.is_file():
        return None
    lines = 0
    last = b"\n"
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
    except OSError:
        return None
    return lines + (last != b"\n")


class _Silent:
    def show(self, done: int, elapsed: float) -> None:
        pass

    def stage(self, description: str, done: int, elapsed: float) -> None:
        pass

    def finish(self, done: int, elapsed: float) -> None:
        pass


class _Lines:
    """`import: 400,000 / 1,000,000 lines (40%), 13,300 lines/s, ETA 45 s`, a line at a
    time; the last one says the true total, how fast and how long."""

    def __init__(
        self, out: TextIO, command: str, total: int | None, unit: str, estimated: bool
    ) -> None:
        self.out = out
        self.command = command
        self.total = total
        self.unit = unit
        self.about = "~" if estimated else ""
        self.staged = False

    def show(self, done: int, elapsed: float) -> None:
        rate = done / elapsed if elapsed > 0 else 0.0
        if self.total is None:
            self._say(f"{done:,} {self.unit}, {_rate(rate, self.unit)}")
            return
        percent = done * 100 // max(1, self.total)
        if self.about:  # an estimate: 100% is said at the end, with the true count
            percent = min(99, percent)
        left = (
            f", ETA {_duration((self.total - done) / rate)}" if rate and done < self.total else ""
        )
        self._say(
            f"{done:,} / {self.about}{self.total:,} {self.unit} ({percent}%), "
            f"{_rate(rate, self.unit)}{left}"
        )

    def stage(self, description: str, done: int, elapsed: float) -> None:
        self._counted(done, elapsed)
        self.staged = True
        self._say(f"{description} ...")

    def finish(self, done: int, elapsed: float) -> None:
        if self.staged:
            self._say(f"done, {_duration(elapsed)} in all")
        else:
            self._counted(done, elapsed)

    def _counted(self, done: int, elapsed: float) -> None:
        rate = f", {_rate(done / elapsed, self.unit)}" if elapsed > 0 else ""
        total = f" / {done:,} {self.unit} (100%)" if self.total is not None else f" {self.unit}"
        self._say(f"{done:,}{total}{rate}, in {_duration(elapsed)}")

    def _say(self, text: str) -> None:
        self.out.write(f"{self.command}: {text}\n")
        self.out.flush()


class _Bar:
    """rich's bar: the command, the bar, the percentage, count, rate and time left. A
    stage without a count gets a row of its own, with a pulsing bar and its time."""

    def __init__(self, console: Console, command: str, total: int | None, unit: str) -> None:
        self.command = command
        self.bar = Progress(
            "{task.description}",
            BarColumn(),
            TaskProgressColumn(),
            _Figures(unit),
            console=console,
            refresh_per_second=1 / BAR_INTERVAL_S,
            # stdout is the command's output. On the same terminal, what it prints while
            # the bar is drawn (produce's rejected lines) goes above the bar; a pipe or a
            # file gets it untouched.
            redirect_stdout=sys.stdout.isatty(),
        )
        self.task = self.bar.add_task(command, total=total, stage=None, rate=None)

    def show(self, done: int, elapsed: float) -> None:
        # The rate since the start, as the plain lines say it: rich's own estimate needs
        # two updates in its window, which a short run does not give it.
        self.bar.update(self.task, completed=done, rate=done / elapsed if elapsed > 0 else None)

    def stage(self, description: str, done: int, elapsed: float) -> None:
        self.finish(done, elapsed)
        self.task = self.bar.add_task(self.command, total=None, stage=description, rate=None)

    def finish(self, done: int, elapsed: float) -> None:
        if self.bar.tasks[-1].fields["stage"] is None:
            # The true count, where the total was an estimate too.
            self.show(done, elapsed)
            self.bar.update(self.task, total=done)
        else:
            self.bar.update(self.task, total=1, completed=1)
        self.bar.refresh()


class _Figures(ProgressColumn):
    """`400,000/1,000,000 lines  13,300 lines/s  ETA 45 s`; a stage: its time so far."""

    def __init__(self, unit: str) -> None:
        super().__init__(table_column=Column(no_wrap=True))
        self.unit = unit

    def render(self, task: Task) -> Text:
        if task.fields["stage"] is not None:
            seconds = task.finished_time or task.elapsed or 0.0
            return Text(f"{task.fields['stage']}  {_duration(seconds)}")
        speed = task.fields["rate"]
        total = f"/{task.total:,.0f}" if task.total is not None else ""
        rate = _rate(speed, self.unit) if speed else f"-- {self.unit}/s"
        if task.finished:
            when = f"done in {_duration(task.finished_time or 0.0)}"
        elif speed and task.total is not None:
            when = f"ETA {_duration(task.remaining / speed)}" if task.remaining else ""
        else:
            when = "ETA --" if task.total is not None else ""
        return Text(f"{task.completed:,.0f}{total} {self.unit}  {rate}  {when}")


@contextmanager
def _logs_above(console: Console) -> Iterator[None]:
    """While the bar is drawn, log lines meant for stderr go through rich, which prints
    them above the bar instead of over it. Handlers on other streams are left alone."""
    stderr = sys.stderr
    proxy = FileProxy(console, stderr)
    moved = [
        handler
        for handler in logging.getLogger().handlers
        if isinstance(handler, logging.StreamHandler) and handler.stream is stderr
    ]
    for handler in moved:
        handler.setStream(proxy)
    try:
        yield
    finally:
        for handler in moved:
            handler.setStream(stderr)
        proxy.flush()


def _rate(per_second: float, unit: str) -> str:
    """13,300 lines/s; a slow unit (days) per minute, where per second would read 0."""
    if per_second >= 1:
        return f"{per_second:,.0f} {unit}/s"
    return f"{per_second * 60:,.1f} {unit}/min"


def _duration(seconds: float) -> str:
    whole = round(seconds)
    if whole < 10:
        return f"{seconds:.1f} s"
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
