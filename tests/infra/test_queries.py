"""Alerts and the workbook ([telemetry]; README "Alerts"): the KQL under infra/queries/ is the one source both stacks
load (Bicep `loadTextContent`, Terraform `file()`), every metric and attribute name a query uses is one the code
emits (shared/core/telemetry.py), and Bicep and Terraform define the same rules, thresholds and workbook items.

Static checks only: no query runs against a workspace here, and no template is compiled or deployed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.core import telemetry as names
from shared.core.model import Status
from shared.pipeline.reports import COMPLETED, COMPLETED_WITH_ERRORS, FAILED
from tests.infra.iac import INFRA, bicep, bicep_param_default, render, terraform

QUERIES = INFRA / "queries"
KQL = sorted(QUERIES.glob("*.kql"))
TABLES = ("AppMetrics", "AppTraces", "AppRequests")
METRIC_NAMES = set(names.COUNTERS + names.GAUGES)
# What an attribute's values may be, where the queries compare them with a literal.
ATTRIBUTE_VALUES = {
    names.STATUS: {s.value for s in Status} | {COMPLETED, COMPLETED_WITH_ERRORS, FAILED},
    names.OUTCOME: set(names.OUTCOMES),
}
FUNCTIONS = {"import_dropped_file", "run_import_jobs", "import_indicators", "import_job_status", "health"}


def code_of(path: Path) -> str:
    """The query without its `//` comment lines."""
    return "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("//"))


def bicep_file(expr: object) -> str:
    m = re.fullmatch(r"load_text_content\(\.\./\.\./queries/([\w.-]+\.kql)\)", str(render(expr)))
    assert m, f"not a query file load: {render(expr)!r}"
    return m.group(1)


def tf_file(expr: object) -> str:
    m = re.fullmatch(r'\$\{file\("\$\{local\.queries_dir\}/([\w.-]+\.kql)"\)\}', str(expr))
    assert m, f"not a query file load: {expr!r}"
    return m.group(1)


def bicep_alerts() -> list[dict]:
    return bicep("modules/alerts.bicep")["variables"]["alerts"]["value"]


def bicep_items() -> list[dict]:
    return bicep("modules/workbook.bicep")["variables"]["queries"]["value"]


# ------------------------------------------------------------------------------------------ the queries


def test_there_are_query_files_and_both_stacks_load_every_one() -> None:
    files = {p.name for p in KQL}
    assert {f for f in files if f.startswith("alert-")} and {f for f in files if f.startswith("workbook-")}
    in_bicep = {bicep_file(a["query"]) for a in bicep_alerts()} | {bicep_file(i["query"]) for i in bicep_items()}
    tf = terraform()["locals"]
    in_tf = {tf_file(a["query"]) for a in tf["alerts"].values()} | {tf_file(i["query"]) for i in tf["workbook_items"]}
    assert in_bicep == in_tf == files
    assert tf["queries_dir"] == "${path.module}/../queries"


@pytest.mark.parametrize("path", KQL, ids=lambda p: p.name)
def test_query_reads_a_workspace_table(path: Path) -> None:
    first = code_of(path).strip().splitlines()[0].strip()
    assert first in TABLES, f"{path.name} starts with {first!r}"


@pytest.mark.parametrize("path", KQL, ids=lambda p: p.name)
def test_every_metric_and_attribute_name_is_one_the_code_emits(path: Path) -> None:
    text = code_of(path)
    if not text.strip().startswith("AppMetrics"):
        assert "Properties[" not in text and '"ioc.' not in text
        return
    metrics = set(re.findall(r'"(ioc\.[a-z.]+)"', text))
    assert metrics, f"{path.name} names no metric"
    assert metrics <= METRIC_NAMES, metrics - METRIC_NAMES
    attributes = set(re.findall(r'Properties\["(\w+)"\]', text))
    allowed = set().union(*(names.METRIC_ATTRIBUTES[m] for m in metrics))
    assert attributes <= allowed, f"{path.name}: {attributes - allowed} not emitted with {metrics}"
    assert not re.search(r"Properties\.\w", text), "use Properties[\"name\"] so this test sees the name"
    # A literal compared with an attribute is a value the code gives it.
    for column, values in ATTRIBUTE_VALUES.items():
        for literal in re.findall(rf'\b{column}\s*(?:==|!=)\s*"([^"]+)"', text):
            assert literal in values, f"{path.name}: {column} is never {literal!r}"
        for group in re.findall(rf'\b{column}\s+in\s*\(([^)]*)\)', text):
            for literal in re.findall(r'"([^"]+)"', group):
                assert literal in values, f"{path.name}: {column} is never {literal!r}"


def test_invocation_queries_name_no_function_but_the_apps() -> None:
    for path in KQL:
        text = code_of(path)
        if text.strip().startswith("AppRequests"):
            assert set(re.findall(r'Name\s*==\s*"([^"]+)"', text)) <= FUNCTIONS


@pytest.mark.parametrize("alert", bicep_alerts(), ids=lambda a: a["key"])
def test_each_alert_query_makes_the_column_its_rule_measures(alert: dict) -> None:
    text = code_of(QUERIES / bicep_file(alert["query"]))
    assert re.search(rf"\b{alert['measure']}\s*=", text), f"{alert['key']}: no column {alert['measure']}"
    for dimension in alert["dimensions"]:
        assert re.search(rf"\bby\b[^|]*\b{dimension['name']}\b", text), f"{alert['key']}: not by {dimension['name']}"


# ------------------------------------------------------------------------------------------ parity


def test_the_same_alerts_in_both_stacks_with_the_same_thresholds() -> None:
    main = bicep("main.bicep")
    params = bicep("modules/alerts.bicep")["parameters"]
    passed = main["modules"]["alerts"]["config"]["params"]
    tf = terraform()
    variables = tf["variable"]
    in_tf = tf["locals"]["alerts"]
    assert [a["key"] for a in bicep_alerts()] == list(in_tf)
    assert set(in_tf) == {"failed-run", "failed-indicators", "access-denied", "tenant-room", "poisoned-jobs", "retries"}
    for a in bicep_alerts():
        t = in_tf[a["key"]]
        fields = ("severity", "measure", "aggregation", "operator", "frequency", "window")
        assert {f: a[f] for f in fields} == {f: t[f] for f in fields}, a["key"]
        assert (a["displayName"], a["description"].replace("\\'", "'")) == (t["display_name"], t["description"])
        assert bicep_file(a["query"]) == tf_file(t["query"])
        assert [d["name"] for d in a["dimensions"]] == t["dimensions"]
        if isinstance(a["threshold"], int):
            assert a["threshold"] == t["threshold"]
        else:  # a parameter of the module, passed from main.bicep's parameter of the same name
            param = a["threshold"]
            assert param in params and passed[param] == param
            var = re.fullmatch(r"\$\{var\.(\w+)\}", t["threshold"]).group(1)  # type: ignore[union-attr]
            assert bicep_param_default(main, param) == variables[var]["default"]
            assert re.sub(r"(?<!^)([A-Z])", r"_\1", param).lower() == var


def test_the_action_group_emails_only_when_an_address_is_given() -> None:
    main = bicep("main.bicep")
    assert bicep_param_default(main, "alertEmail") == ""
    group = bicep("modules/alerts.bicep")["resources"]["actionGroup"]["config"]
    receivers = group["properties"]["emailReceivers"]["operator"]
    assert receivers["type"] == "conditional"
    assert render(receivers["operands"]["condition"]) == "empty(alertEmail)"
    assert receivers["operands"]["true_value"] == []
    tf = terraform()
    assert tf["variable"]["alert_email"]["default"] == ""
    ag = tf["resource"]["azurerm_monitor_action_group"]["alerts"]
    (dynamic,) = ag["dynamic"]
    assert dynamic["email_receiver"]["for_each"] == '${var.alert_email == "" ? [] : [var.alert_email]}'
    rules = bicep("modules/alerts.bicep")["resources"]["rules"]
    assert "actionGroup.id" in str(rules) or "actionGroup" in str(rules)
    rule = tf["resource"]["azurerm_monitor_scheduled_query_rules_alert_v2"]["alerts"]
    assert rule["action"][0]["action_groups"] == ["${azurerm_monitor_action_group.alerts.id}"]


def test_alert_rules_query_the_workspace() -> None:
    rule = terraform()["resource"]["azurerm_monitor_scheduled_query_rules_alert_v2"]["alerts"]
    assert rule["scopes"] == ["${azurerm_log_analytics_workspace.main.id}"]
    main = bicep("main.bicep")
    assert render(main["modules"]["alerts"]["config"]["params"]["workspaceId"]) == "monitoring.outputs.workspaceId"
    assert render(main["modules"]["workbook"]["config"]["params"]["workspaceId"]) == "monitoring.outputs.workspaceId"


def test_the_same_workbook_items_in_both_stacks() -> None:
    in_tf = terraform()["locals"]["workbook_items"]
    fields = ("name", "title", "visualization")
    assert [{f: i[f] for f in fields} for i in bicep_items()] == [{f: i[f] for f in fields} for i in in_tf]
    assert [bicep_file(i["query"]) for i in bicep_items()] == [tf_file(i["query"]) for i in in_tf]
    wb = terraform()["resource"]["azurerm_application_insights_workbook"]["main"]
    assert wb["category"] == "workbook" and "azurerm_log_analytics_workspace.main.id" in wb["source_id"]


def test_application_insights_refuses_telemetry_without_a_token_in_both() -> None:
    ai = bicep("modules/monitoring.bicep")["resources"]["appInsights"]["config"]["properties"]
    assert ai["DisableLocalAuth"] is True
    tf = terraform()["resource"]["azurerm_application_insights"]["main"]
    assert tf["local_authentication_disabled"] is True
