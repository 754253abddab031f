"""Helpers of the metric-name tests: what our code defines, and what a PromQL expression names.

The catalog is read from the source (AST) of every prometheus_client metric constructor in
services/, libs/ and infra/: `Counter("name", "doc", [labels])`, `Gauge(...)`, `Histogram(...)`,
`Summary(...)`, `Info(...)`, `Enum(...)`, and the custom-collector families
(`CounterMetricFamily("name", "doc", labels=[...])`, `GaugeMetricFamily`, ...). Each is expanded
to the series names Prometheus actually stores (a Counter `x` is `x_total`, a Histogram `x` is
`x_bucket`/`x_sum`/`x_count`). Names built at run time (a loop over a tuple of literals) are
found too: every string literal in a tuple whose first element is passed as the name is taken.
"""

import ast
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SOURCE_DIRS = ("services", "libs", "infra")
KINDS = {
    "Counter": "Counter",
    "Gauge": "Gauge",
    "Histogram": "Histogram",
    "Summary": "Summary",
    "Info": "Info",
    "Enum": "Enum",
    "CounterMetricFamily": "Counter",
    "GaugeMetricFamily": "Gauge",
    "HistogramMetricFamily": "Histogram",
    "SummaryMetricFamily": "Summary",
    "InfoMetricFamily": "Info",
}
# Labels every scraped series carries (added by Prometheus from the scrape target).
TARGET_LABELS = frozenset({"job", "instance"})
# Series Prometheus makes itself for every target.
BUILTIN_SERIES = {"up": frozenset(TARGET_LABELS), "scrape_duration_seconds": frozenset(TARGET_LABELS)}


@dataclass(frozen=True)
class Definition:
    kind: str
    name: str
    labels: frozenset[str]
    where: str


def _constant_strings(node: ast.expr | None) -> list[str] | None:
    if isinstance(node, ast.List | ast.Tuple) and all(
        isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts
    ):
        return [e.value for e in node.elts]  # type: ignore[attr-defined]
    return None


def _definition(call: ast.Call, where: str) -> Definition | None:
    func = call.func
    kind = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    if kind not in KINDS:
        return None
    kind = KINDS[kind]
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    args = list(call.args)
    name_node = args[0] if args else keywords.get("name")
    doc_node = args[1] if len(args) > 1 else keywords.get("documentation")
    # prometheus_client needs a literal name and documentation; collections.Counter(...) has neither.
    if not (isinstance(name_node, ast.Constant) and isinstance(name_node.value, str)):
        return None
    if not (isinstance(doc_node, ast.Constant) and isinstance(doc_node.value, str)):
        return None
    labels = _constant_strings(args[2] if len(args) > 2 else keywords.get("labelnames", keywords.get("labels")))
    labels = labels or []
    prefix = "_".join(
        str(node.value)
        for key in ("namespace", "subsystem")
        if isinstance(node := keywords.get(key), ast.Constant) and node.value
    )
    name = f"{prefix}_{name_node.value}" if prefix else name_node.value
    return Definition(kind, name, frozenset(labels), where)


def _looped_definitions(loop: ast.For, where: str) -> list[Definition]:
    """`for name, doc, ... in (("a", "doc a", ...), ...): Family(name, doc, ...)`: one per row."""
    if not isinstance(loop.target, ast.Tuple) or not isinstance(loop.iter, ast.Tuple | ast.List):
        return []
    names = [t.id if isinstance(t, ast.Name) else None for t in loop.target.elts]
    found: list[Definition] = []
    for node in (n for stmt in loop.body for n in ast.walk(stmt)):
        if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Name)):
            continue
        for row in loop.iter.elts:
            if not isinstance(row, ast.Tuple) or len(row.elts) != len(names):
                continue
            values = dict(zip(names, row.elts, strict=True))
            args = [values.get(a.id, a) if isinstance(a, ast.Name) else a for a in node.args]
            bound = ast.Call(func=node.func, args=args, keywords=node.keywords)
            if definition := _definition(bound, where):
                found.append(definition)
    return found


def defined_metrics(root: Path = ROOT) -> list[Definition]:
    found: list[Definition] = []
    for directory in SOURCE_DIRS:
        for path in sorted((root / directory).rglob("*.py")):
            text = path.read_text()
            if "prometheus_client" not in text:
                continue
            where = str(path.relative_to(root))
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.Call) and (d := _definition(node, where)):
                    found.append(d)
                elif isinstance(node, ast.For):
                    found.extend(_looped_definitions(node, where))
    return found


def exposed_series(definitions: list[Definition]) -> dict[str, frozenset[str]]:
    """Series name -> label names it can carry (its own plus the target labels)."""
    series: dict[str, frozenset[str]] = dict(BUILTIN_SERIES)
    for d in definitions:
        labels = d.labels | TARGET_LABELS
        if d.kind == "Counter":
            base = d.name.removesuffix("_total")
            names = {f"{base}_total": labels, f"{base}_created": labels}
        elif d.kind == "Histogram":
            names = {
                f"{d.name}_bucket": labels | {"le"},
                f"{d.name}_sum": labels,
                f"{d.name}_count": labels,
                f"{d.name}_created": labels,
            }
        elif d.kind == "Summary":
            names = {d.name: labels | {"quantile"}, f"{d.name}_sum": labels, f"{d.name}_count": labels}
        elif d.kind == "Info":
            names = {f"{d.name}_info": labels}
        elif d.kind == "Enum":
            names = {d.name: labels | {d.name}}
        else:
            names = {d.name: labels}
        for name, label_set in names.items():
            series[name] = series.get(name, frozenset()) | label_set
    return series


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{([^}]*)\}")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_WORD = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "bool",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "inf",
        "nan",
        "Inf",
        "NaN",
    }
)


@dataclass(frozen=True)
class Parsed:
    metrics: frozenset[str]
    selector_labels: tuple[tuple[str, str], ...]  # (metric, label) used in a {matcher}
    grouping_labels: frozenset[str]  # labels in by(...)/without(...)/on(...)/ignoring(...)


def parse_promql(expr: str) -> Parsed:
    """The series names, matcher labels and grouping labels an expression uses."""
    text = _STRING.sub('""', expr)
    selector_labels: list[tuple[str, str]] = []
    for match in _SELECTOR.finditer(text):
        for matcher in match.group(2).split(","):
            label = matcher.strip().split("=")[0].split("!")[0].strip()
            if label:
                selector_labels.append((match.group(1) or "", label))
    grouping = frozenset(
        label.strip() for m in _GROUPING.finditer(text) for label in m.group(2).split(",") if label.strip()
    )
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges, subqueries, Grafana's $__rate_interval
    text = _GROUPING.sub(" ", text)
    text = re.sub(r"\boffset\s+-?[0-9a-z]+", " ", text)
    metrics = set()
    for word in _WORD.finditer(text):
        before = text[word.start() - 1] if word.start() else " "
        after = text[word.end() :].lstrip()[:1]
        if word.group() in KEYWORDS or after == "(" or before in "$." or before.isdigit():
            continue
        metrics.add(word.group())
    return Parsed(frozenset(metrics), tuple(selector_labels), grouping)
