"""A failed flow run's traceback stays off the CLI's console unless --verbose: Prefect's
run loggers propagate to it, and the CLI promises one line."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import pytest

from pipeline.config import load_settings
from pipeline.warehouse.prefect_server import use_prefect_server


@pytest.fixture
def console(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # no server looked for
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _fail(logger: str) -> None:
    try:
        raise OSError(28, "No space left on device")
    except OSError:
        logging.getLogger(logger).error("Task run failed with exception", exc_info=sys.exc_info())


def test_prefect_tracebacks_stay_off_the_console(console: io.StringIO) -> None:
    logging.getLogger().setLevel(logging.INFO)
    use_prefect_server(load_settings(environ={}))
    use_prefect_server(load_settings(environ={}))  # once is enough: no second filter
    _fail("prefect.task_runs")
    assert console.getvalue() == "Task run failed with exception\n"
    _fail("sessionflow")  # not Prefect's: untouched
    assert "Traceback" in console.getvalue()


def test_verbose_keeps_them(console: io.StringIO) -> None:
    logging.getLogger().setLevel(logging.DEBUG)
    use_prefect_server(load_settings(environ={}))
    _fail("prefect.task_runs")
    assert "Traceback" in console.getvalue()
