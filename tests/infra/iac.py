"""Loaders for the IaC under infra/: Terraform through python-hcl2, Bicep through pycep-parser.

Both parsers give nested dicts; these helpers flatten them into what the tests ask about
(resources by type and name, variable defaults, Bicep expressions rendered back to text).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import hcl2
from pycep import BicepParser

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
TF_DIR = INFRA / "terraform"
BICEP_DIR = INFRA / "bicep"

# CONTRACT.md "Settings": the names are fixed by the contract.
CONTRACT_SETTINGS = (
    "DEFENDER_API_URL",
    "DEFENDER_TOKEN_SCOPE",
    "AZURE_CLIENT_ID",
    "INDICATORS_CONTAINER",
    "REPORTS_CONTAINER",
    "DEFAULT_ACTION",
    "DEFAULT_SEVERITY",
    "DEFAULT_EXPIRATION_DAYS",
    "EXPIRATION_DAYS_BY_TYPE",
    "DEFAULT_TITLE",
    "DEFAULT_DESCRIPTION",
    "DEFAULT_RBAC_GROUPS",
    "BATCH_SIZE",
    "MAX_CALLS_PER_MINUTE",
    "LIST_CALLS_PER_MINUTE",
    "LIST_CALLS_PER_HOUR",
    "BATCH_DELETE_CALLS_PER_MINUTE",
    "BATCH_DELETE_CALLS_PER_HOUR",
    "DRY_RUN",
    "MAX_HTTP_BODY_BYTES",
    "MAX_HTTP_INDICATORS",
    "MAX_TENANT_INDICATORS",
    "CAPACITY_RESERVE",
    "TENANT_REFRESH_MINUTES",
    "MAX_VALUE_LENGTH",
    "MAX_GZIP_BYTES",
    "MAX_GZIP_RATIO",
    "DUPLICATE_INDEX_MAX_MB",
    "DEFENDER_REQUEST_TIMEOUT_SECONDS",
)
# CONTRACT.md "Settings" [jobs]: read by shared/app/runtime.py `AppOptions` (not `Settings`), keyed here by
# the AppOptions field each one sets.
JOB_SETTINGS = {
    "JOBS_QUEUE": "jobs_queue",
    "JOBS_CONTAINER": "jobs_container",
    "JOB_RESULT_DAYS": "job_result_days",
    "HTTP_SYNC_SECONDS": "http_sync_seconds",
    "JOB_RETRY_SCHEDULE_MINUTES": "retry_schedule_minutes",
    "JOB_RETRY_MAX_HOURS": "retry_max_hours",
    "ACCESS_DENIED_RETRY_HOURS": "access_denied_retry_hours",
    "DRAIN_MAX_JOBS": "drain_max_jobs",
    "DRAIN_MAX_SECONDS": "drain_max_seconds",
    "COALESCE_WINDOW_SECONDS": "coalesce_window_seconds",
    # [mirror] where the tenant mirror lives (an AppOptions setting like the jobs' container)
    "STATE_CONTAINER": "state_container",
}
INDICATOR_STORAGE_SETTINGS = (
    "IndicatorStorage__blobServiceUri",
    "IndicatorStorage__queueServiceUri",
    "IndicatorStorage__credential",
    "IndicatorStorage__clientId",
)
# azure-functions-conventions.md, convention 25: Flex rejects or ignores these.
FLEX_DEPRECATED = (
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
    "WEBSITE_CONTENT",
    "FUNCTIONS_WORKER_PROCESS_COUNT",
    "WEBSITE_TIME_ZONE",
    "linuxFxVersion",
    "linux_fx_version",
    "alwaysOn",
    "always_on",
)
ROLE_IDS = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
}
DEFENDER_APP_ID = "fc780465-2017-40d4-a0c5-307022471b92"
BLOB_FUNCTION = "import_dropped_file"


# ---------- Terraform ----------


def _strip_comments(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_comments(v) for k, v in node.items() if k not in ("__comments__", "__inline_comments__")}
    if isinstance(node, list):
        return [_strip_comments(v) for v in node]
    return node


@functools.cache
def terraform() -> dict[str, Any]:
    """All .tf files merged: resource/data as {type: {name: body}}, variable/output as {name: body},
    locals as one dict, plus the raw `terraform` and `provider` blocks."""
    merged: dict[str, Any] = {"resource": {}, "data": {}, "variable": {}, "output": {}, "locals": {}}
    merged["terraform"] = []
    merged["provider"] = []
    for path in sorted(TF_DIR.glob("*.tf")):
        with path.open() as fh:
            doc = _strip_comments(
                hcl2.load(
                    fh,
                    serialization_options=hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False),
                )
            )
        for kind in ("resource", "data"):
            for block in doc.get(kind, []):
                for rtype, named in block.items():
                    for name, body in named.items():
                        assert name not in merged[kind].setdefault(rtype, {}), f"duplicate {kind} {rtype}.{name}"
                        merged[kind][rtype][name] = body
        for kind in ("variable", "output"):
            for block in doc.get(kind, []):
                for name, body in block.items():
                    assert name not in merged[kind], f"duplicate {kind} {name}"
                    merged[kind][name] = body
        for block in doc.get("locals", []):
            for name, value in block.items():
                assert name not in merged["locals"], f"duplicate local {name}"
                merged["locals"][name] = value
        merged["terraform"] += doc.get("terraform", [])
        merged["provider"] += doc.get("provider", [])
    return merged


def tf_text() -> str:
    return "\n".join(p.read_text() for p in sorted(TF_DIR.glob("*.tf")))


def block(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The single nested block `name` of a Terraform body (hcl2 gives blocks as lists)."""
    value = body[name]
    assert isinstance(value, list) and len(value) == 1, f"expected one {name} block, got {value!r}"
    return value[0]


_VAR = re.compile(r"^\$\{var\.(\w+)\}$")
_TOSTRING = re.compile(r"^\$\{tostring\(var\.(\w+)\)\}$")
_BOOL_STR = re.compile(r'^\$\{var\.(\w+) \? "true" : "false"\}$')


def tf_default_string(expr: Any) -> str:
    """The app-setting string an expression gives with every variable at its default."""
    variables = terraform()["variable"]
    for pattern, convert in (
        (_VAR, lambda v: v),
        (_TOSTRING, lambda v: str(v)),
        (_BOOL_STR, lambda v: "true" if v else "false"),
    ):
        m = pattern.match(str(expr))
        if m:
            var = variables[m.group(1)]
            assert "default" in var, f"variable {m.group(1)} has no default"
            default = var["default"]
            if pattern is _VAR:
                assert isinstance(default, str), f"{m.group(1)} must be a string variable to be used as-is"
            return convert(default)
    raise AssertionError(f"not a plain variable expression: {expr!r}")


# ---------- Bicep ----------


@functools.cache
def bicep(relative: str) -> dict[str, Any]:
    """One Bicep file parsed by pycep-parser."""
    return BicepParser(add_line_numbers=False).parse(text=(BICEP_DIR / relative).read_text())


def bicep_files() -> list[Path]:
    return sorted(BICEP_DIR.rglob("*.bicep"))


def render(expr: Any) -> Any:
    """A pycep expression tree written back as Bicep-like text; literals and objects pass through."""
    if isinstance(expr, dict) and "operator" in expr:
        op = expr["operator"]
        a = op["operands"]
        kind = op["type"]
        if kind == "property_accessor":
            return f"{render(a['operand_1'])}.{render(a['operand_2'])}"
        if kind == "index_accessor":
            return f"{render(a['operand_1'])}[{render(a['operand_2'])}]"
        if kind == "equals":
            return f"{render(a['operand_1'])} == {render(a['operand_2'])}"
        if kind == "conditional":
            return f"{render(a['condition'])} ? {render(a['true_value'])} : {render(a['false_value'])}"
        return f"{kind}({', '.join(str(render(v)) for v in a.values())})"
    if isinstance(expr, dict) and "function" in expr:
        fn = expr["function"]
        params = fn.get("parameters") or {}
        name = params.get("func_name", fn["type"]) if fn["type"] == "list_func" else fn["type"]
        args = [str(render(v)) for k, v in params.items() if v is not None and k != "func_name"]
        return f"{name}({', '.join(args)})"
    if isinstance(expr, dict) and expr.get("type") == "lambda_expression":
        detail = expr["detail"]
        return f"{detail['var_1']} => {render(detail['expression'])}"
    return expr


def unquote_keys(obj: dict[str, Any]) -> dict[str, Any]:
    """pycep keeps the quotes of quoted object keys ('${id}'); drop them."""
    return {k.strip("'"): v for k, v in obj.items()}


def resources_of_type(doc: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in doc.get("resources", {}).items() if r["type"] == rtype}


def bicep_param_default(doc: dict[str, Any], name: str) -> Any:
    params = doc["parameters"]
    assert name in params, f"no parameter {name}"
    return params[name]["default"]


def bicep_default_string(doc: dict[str, Any], expr: Any) -> str:
    """The app-setting string a main.bicep expression gives with every parameter at its default."""
    text = render(expr)
    if isinstance(text, str) and text in doc["parameters"]:
        default = bicep_param_default(doc, text)
        assert isinstance(default, str), f"{text} must be a string parameter to be used as-is"
        return default
    m = re.fullmatch(r"string\((\w+)\)", str(text))
    if m:
        return str(bicep_param_default(doc, m.group(1)))
    m = re.fullmatch(r"(\w+) \? true : false", str(text))
    if m:
        return "true" if bicep_param_default(doc, m.group(1)) else "false"
    raise AssertionError(f"not a plain parameter expression: {text!r}")
