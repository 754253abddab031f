"""Every program logs JSON lines with service, level, logger and message, plus the trace and
span ids while a span is current."""

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from telemetry.logs import setup_logging

pytestmark = pytest.mark.unit


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    setup_logging("shorten", "INFO", stream=stream)
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_is_json_with_service_level_logger_and_message(captured: io.StringIO) -> None:
    logging.getLogger("shorten.relay").warning('published %d events "quoted"', 3, extra={"topic": "links"})
    logging.getLogger("shorten.relay").debug("below the level")
    [line] = lines(captured)
    assert line["service"] == "shorten" and line["level"] == "WARNING" and line["logger"] == "shorten.relay"
    assert line["message"] == 'published 3 events "quoted"' and line["topic"] == "links"
    assert "trace_id" not in line and isinstance(line["time"], str)


def test_a_line_inside_a_span_carries_its_ids(captured: io.StringIO) -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        logging.getLogger("x").info("inside")
        context = span.get_span_context()
    [line] = lines(captured)
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")


def test_server_loggers_go_through_the_same_handler(captured: io.StringIO) -> None:
    server = logging.getLogger("uvicorn.error")
    server.addHandler(logging.StreamHandler(io.StringIO()))  # what a server would install first
    setup_logging("shorten", "INFO", stream=captured)
    server.info("Started server process")
    assert lines(captured)[-1]["message"] == "Started server process"
    assert server.handlers == []


def test_the_dict_config_for_frameworks_gives_the_same_lines(captured: io.StringIO) -> None:
    import logging.config
    import sys
    from unittest import mock

    from telemetry.logs import dict_config

    with mock.patch.object(sys, "stderr", captured):
        logging.config.dictConfig(dict_config("aggregator-2", "WARNING"))
        logging.getLogger("faust.worker").warning("rebalancing")
        logging.getLogger("httpx").warning("kept: warnings pass")
        logging.getLogger("faust.worker").info("below the level")
    assert [(line["service"], line["message"]) for line in lines(captured)] == [
        ("aggregator-2", "rebalancing"),
        ("aggregator-2", "kept: warnings pass"),
    ]
