"""The analytics adapter renders its statements as clickhouse-sqlalchemy's HTTP driver would
(compiled for its dialect, values escaped), from a compiled text kept per statement and shape."""

import pytest
from analytics.adapters import clickhouse as adapter
from clickhouse_sqlalchemy.drivers.http.escaper import Escaper
from sqlalchemy.sql.elements import TextClause

pytestmark = pytest.mark.unit

COVERING = "grain = 0 AND bucket >= toDateTime(:s0) AND bucket < toDateTime(:e0)"
SPANS = {"s0": 10, "e0": 20}


def compiled_each_time(statement: TextClause, params: dict[str, object]) -> str:
    compiled = statement.bindparams(**params).compile(
        dialect=adapter._DIALECT, compile_kwargs={"render_postcompile": True}
    )
    return str(compiled.string % Escaper().escape(compiled.params))


@pytest.mark.parametrize(
    ("statement", "params"),
    [
        (adapter.counts_sql(COVERING), {"code": "ab'c", "grain": 0, "bots": [0, 1], "start": 1, "end": 2, **SPANS}),
        (adapter.series_visitors_sql(), {"code": "x", "grain": 1, "bots": [0], "start": 1, "end": 2}),
        (adapter.total_visitors_sql(COVERING), {"code": "x", "bots": [0, 1], **SPANS}),
        (
            adapter.ranking_sql(COVERING, tagged=True),
            {**SPANS, "workspace": "w", "tag": "t\\x", "bots": [0], "limit": 5},
        ),
        (adapter.top_visitors_sql(COVERING), {**SPANS, "bots": [0, 1], "codes": ["a", "b", "c"]}),
        (adapter.top_visitors_sql(COVERING), {**SPANS, "bots": [0], "codes": ["a"]}),
    ],
)
def test_render_is_what_the_driver_would_send(statement: TextClause, params: dict[str, object]) -> None:
    for _ in range(2):  # compiled, then from the kept text
        assert adapter.render(statement, params) == compiled_each_time(statement, params)
