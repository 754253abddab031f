"""OpenTelemetry tracing: one provider per process, W3C trace context in Kafka message headers.

Export is OTLP/HTTP when an endpoint is configured and off otherwise; tests add their own span
processor (an in-memory exporter) through `extra_processors`.
"""

from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

KafkaHeaders = Sequence[tuple[str, bytes]]


def setup_tracing(
    service_name: str,
    *,
    otlp_endpoint: str = "",
    extra_processors: Iterable[SpanProcessor] = (),
    set_global: bool = True,
) -> TracerProvider | None:
    """Build the process's tracer provider. Call once at the entry point (not at import).

    With nothing to export to, tracing stays off (the API's no-op tracer: no span is
    recorded and no trace context is propagated), so the hot paths pay nothing for it.
    """
    extra_processors = list(extra_processors)
    if not otlp_endpoint and not extra_processors:
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    for processor in extra_processors:
        provider.add_span_processor(processor)
    if set_global:
        trace.set_tracer_provider(provider)
    return provider


def tracing_enabled() -> bool:
    """True once an SDK tracer provider is installed (spans are recorded)."""
    return isinstance(trace.get_tracer_provider(), TracerProvider)


# Scrapes and probes arrive every few seconds from Prometheus, nginx and supervisors: spans of
# them would bury the requests people look for. Matched against the request's full URL.
UNTRACED_PATHS = r"^[a-z]+://[^/]*/(public/)?(metrics|healthz|readyz)(\?|$)"


def asgi_middleware(provider: TracerProvider | None = None) -> list[Any]:
    """Starlette middleware that opens a server span per request (scrapes and probes excepted),
    when tracing is on (or into `provider`, for tests)."""
    if provider is None and not tracing_enabled():
        return []
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from starlette.middleware import Middleware

    return [
        Middleware(
            OpenTelemetryMiddleware,
            exclude_spans=["receive", "send"],
            excluded_urls=UNTRACED_PATHS,
            tracer_provider=provider,
        )
    ]


def kafka_headers(ctx: Context | None = None) -> list[tuple[str, bytes]]:
    """The current (or given) trace context as Kafka headers (traceparent, tracestate)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=ctx)
    return [(k, v.encode()) for k, v in carrier.items()]


def context_from_kafka_headers(headers: KafkaHeaders | None) -> Context:
    """The trace context a producer put in a message's headers (an empty context if none)."""
    carrier = {k: (v.decode(errors="replace") if isinstance(v, bytes) else str(v)) for k, v in headers or ()}
    return propagate.extract(carrier)


def traceparent(ctx: Context | None = None) -> str | None:
    """The W3C traceparent string of the current (or given) context, for storing beside data
    (e.g. in an outbox row) so a later process continues the same trace."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=ctx)
    return carrier.get("traceparent")


def context_from_traceparent(value: str | None) -> Context:
    return propagate.extract({"traceparent": value} if value else {})


def attach(ctx: Context) -> Any:
    return otel_context.attach(ctx)


def detach(token: Any) -> None:
    otel_context.detach(token)
