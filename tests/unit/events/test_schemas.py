"""The JSON Schemas in schemas/ are valid, and agree with the validator on real output."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from pipeline.collector.ga4 import parse_ga4
from pipeline.config import ValidationSettings
from pipeline.dev.generator import GeneratorConfig, generate_events
from pipeline.events.schema import load_schema
from pipeline.events.timestamps import history_window, now_micros
from pipeline.events.validation import validate_event

SCHEMAS = ["canonical_event", "ga4_mp", "plainsignal_event"]


@pytest.mark.parametrize("name", SCHEMAS)
def test_schema_files_are_valid_json_schema(name: str) -> None:
    Draft202012Validator.check_schema(load_schema(name))


def test_validated_events_satisfy_the_canonical_schema() -> None:
    checker = Draft202012Validator(load_schema("canonical_event"))
    window = history_window(ValidationSettings())
    config = GeneratorConfig(days=2, start=date(2026, 11, 1), events_per_day=500)
    for raw in generate_events(config):
        event = validate_event(raw, now_micros=now_micros(), window=window)
        errors = list(checker.iter_errors(event))
        assert not errors, errors[0].message


def test_example_ga4_request_satisfies_its_schema(tmp_path: Path) -> None:
    body = {
        "client_id": "123.456",
        "timestamp_micros": "1731000000000000",
        "events": [
            {"name": "purchase", "params": {"value": 9.5, "currency": "EUR", "session_id": 17}}
        ],
    }
    Draft202012Validator(load_schema("ga4_mp")).validate(body)
    assert len(parse_ga4("shop.example", json.dumps(body).encode())) == 1
