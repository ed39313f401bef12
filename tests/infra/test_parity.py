"""Parity: Bicep and Terraform set every contract setting (CONTRACT.md "Settings") with the same
defaults, and those defaults are the code's own (shared/core/settings.py `Settings`, and for the [jobs]
settings shared/app/runtime.py `AppOptions`), so code and infra cannot drift. Also the same names,
containers, queues, lifecycle rule, roles and Event Grid wiring in both and in the script."""

from __future__ import annotations

import json
import re
from dataclasses import fields

import pytest

from shared.app.runtime import IGNORED_SETTINGS, AppOptions
from shared.core.settings import Settings
from tests.infra.iac import (
    BLOB_FUNCTION,
    CONTRACT_SETTINGS,
    INDICATOR_STORAGE_SETTINGS,
    INFRA,
    JOB_SETTINGS,
    REPO,
    ROLE_IDS,
    bicep,
    bicep_default_string,
    bicep_param_default,
    render,
    resources_of_type,
    terraform,
    tf_default_string,
    tf_text,
)

# Contract settings whose value is not a default but a deployment fact.
NOT_DEFAULTS = {"AZURE_CLIENT_ID"}


def bicep_contract() -> dict:
    return bicep("main.bicep")["variables"]["contractSettings"]["value"]


def tf_contract() -> dict:
    return terraform()["locals"]["contract_settings"]


# Contract settings whose Settings field has another name.
FIELD_NAMES = {"DEFENDER_REQUEST_TIMEOUT_SECONDS": "request_timeout_seconds"}


def attr(setting: str) -> str:
    return FIELD_NAMES.get(setting, setting.lower())


def bicep_decorators(param: str) -> dict:
    """A main.bicep parameter's decorators, {type: argument}."""
    return {d["type"]: d.get("argument") for d in bicep("main.bicep")["parameters"][param]["decorators"]}


def test_settings_dataclass_knows_every_contract_setting() -> None:
    names = {f.name for f in fields(Settings)}
    assert {attr(s) for s in CONTRACT_SETTINGS} <= names


@pytest.mark.parametrize("setting", CONTRACT_SETTINGS)
def test_contract_setting_is_set_in_both(setting: str) -> None:
    assert setting in bicep_contract()
    assert setting in tf_contract()


@pytest.mark.parametrize("setting", [s for s in CONTRACT_SETTINGS if s not in NOT_DEFAULTS])
def test_defaults_match_each_other_and_the_code(setting: str) -> None:
    in_bicep = bicep_default_string(bicep("main.bicep"), bicep_contract()[setting])
    in_tf = tf_default_string(tf_contract()[setting])
    assert in_bicep == in_tf
    # Parsed by the app's own settings code, the infra default is the code default.
    parsed = Settings.from_env({setting: in_bicep})
    assert getattr(parsed, attr(setting)) == getattr(Settings(), attr(setting))


def test_defaults_are_written_as_the_contract_writes_them() -> None:
    main = bicep("main.bicep")
    got = {s: bicep_default_string(main, bicep_contract()[s]) for s in CONTRACT_SETTINGS if s not in NOT_DEFAULTS}
    assert got == {
        "DEFENDER_API_URL": "https://api.securitycenter.microsoft.com",
        "DEFENDER_TOKEN_SCOPE": "https://api.securitycenter.microsoft.com/.default",
        "INDICATORS_CONTAINER": "indicators",
        "REPORTS_CONTAINER": "indicator-reports",
        "DEFAULT_ACTION": "Audit",
        "DEFAULT_SEVERITY": "Medium",
        "DEFAULT_EXPIRATION_DAYS": "90",
        "EXPIRATION_DAYS_BY_TYPE": "",
        "DEFAULT_TITLE": "Imported indicator",
        "DEFAULT_DESCRIPTION": "Imported from {source}",
        "DEFAULT_RBAC_GROUPS": "",
        "BATCH_SIZE": "500",
        "MAX_CALLS_PER_MINUTE": "30",
        "LIST_CALLS_PER_MINUTE": "100",
        "LIST_CALLS_PER_HOUR": "1500",
        "BATCH_DELETE_CALLS_PER_MINUTE": "30",
        "BATCH_DELETE_CALLS_PER_HOUR": "1500",
        "DRY_RUN": "false",
        "MAX_HTTP_BODY_BYTES": "20971520",
        "MAX_HTTP_INDICATORS": "15000",
        "MAX_TENANT_INDICATORS": "15000",
        "CAPACITY_RESERVE": "500",
        "TENANT_REFRESH_MINUTES": "60",
        "MAX_VALUE_LENGTH": "8192",
        "MAX_GZIP_BYTES": "2147483648",
        "MAX_GZIP_RATIO": "200",
        "DUPLICATE_INDEX_MAX_MB": "256",
        "DEFENDER_REQUEST_TIMEOUT_SECONDS": "180",
    }


@pytest.mark.parametrize("setting", JOB_SETTINGS)
def test_job_setting_is_set_in_both(setting: str) -> None:
    assert setting in bicep_contract()
    assert setting in tf_contract()


@pytest.mark.parametrize("setting", JOB_SETTINGS)
def test_job_defaults_match_each_other_and_the_code(setting: str) -> None:
    in_bicep = bicep_default_string(bicep("main.bicep"), bicep_contract()[setting])
    in_tf = tf_default_string(tf_contract()[setting])
    assert in_bicep == in_tf
    # Parsed by the app's own code, the infra default is the code default.
    field = JOB_SETTINGS[setting]
    assert getattr(AppOptions.from_env({setting: in_bicep}), field) == getattr(AppOptions(), field)


def test_job_defaults_are_written_as_the_contract_writes_them() -> None:
    main = bicep("main.bicep")
    got = {s: bicep_default_string(main, bicep_contract()[s]) for s in JOB_SETTINGS}
    assert got == {
        "JOBS_QUEUE": "indicator-jobs",
        "JOBS_CONTAINER": "indicator-jobs",
        "JOB_RESULT_DAYS": "7",
        "HTTP_SYNC_SECONDS": "25",
        "JOB_RETRY_SCHEDULE_MINUTES": "1,5,15,60",
        "JOB_RETRY_MAX_HOURS": "6",
        "ACCESS_DENIED_RETRY_HOURS": "2",
        "DRAIN_MAX_JOBS": "200",
        "DRAIN_MAX_SECONDS": "600",
        "COALESCE_WINDOW_SECONDS": "2",
        "STATE_CONTAINER": "indicator-state",
    }


# Whole numbers in both stacks (Bicep has no fractional parameters), inside what AppOptions accepts.
JOB_LIMITS = {
    # setting: (Bicep parameter, Terraform variable, lowest, highest)
    "JOB_RESULT_DAYS": ("jobResultDays", "job_result_days", 1, 365),
    "HTTP_SYNC_SECONDS": ("httpSyncSeconds", "http_sync_seconds", 0, 60),
    "JOB_RETRY_MAX_HOURS": ("jobRetryMaxHours", "job_retry_max_hours", 1, 168),
    "ACCESS_DENIED_RETRY_HOURS": ("accessDeniedRetryHours", "access_denied_retry_hours", 0, 168),
    "DRAIN_MAX_JOBS": ("drainMaxJobs", "drain_max_jobs", 1, 1000),
    "DRAIN_MAX_SECONDS": ("drainMaxSeconds", "drain_max_seconds", 1, 1500),
    "COALESCE_WINDOW_SECONDS": ("coalesceWindowSeconds", "coalesce_window_seconds", 0, 30),
}


@pytest.mark.parametrize("setting", JOB_LIMITS)
def test_job_setting_limits_are_the_same_in_both_and_accepted_by_the_app(setting: str) -> None:
    param, variable, low, high = JOB_LIMITS[setting]
    decorators = bicep_decorators(param)
    assert (decorators["min_value"], decorators["max_value"]) == (low, high)
    (validation,) = terraform()["variable"][variable]["validation"]
    condition = validation["condition"]
    assert f"var.{variable} >= {low} && var.{variable} <= {high}" in condition
    assert f"floor(var.{variable}) == var.{variable}" in condition
    for value in (low, high):
        AppOptions.from_env({setting: str(value)})  # raises SettingsError if the app refused it


def test_retry_schedule_is_checked_in_terraform_and_not_empty_in_bicep() -> None:
    assert bicep_decorators("jobRetryScheduleMinutes")["min_length"] == 1
    (validation,) = terraform()["variable"]["job_retry_schedule_minutes"]["validation"]
    assert "tonumber(minutes) > 0" in validation["condition"]


def test_ignored_settings_are_set_nowhere() -> None:
    """HTTP_DEADLINE_SECONDS, HTTP_LOCK_WAIT_SECONDS, BLOB_LOCK_WAIT_SECONDS mean nothing since imports are
    queued jobs: no stack sets them, nor the local sample (health would list them as ignored)."""
    sample = json.loads((REPO / "local.settings.sample.json").read_text())["Values"]
    texts = [tf_text()] + [p.read_text() for p in sorted((INFRA / "bicep").rglob("*.bicep"))]
    for name in IGNORED_SETTINGS:
        assert name not in sample, name
        assert not any(name in text for text in texts), name


def test_local_sample_sets_every_job_setting() -> None:
    sample = json.loads((REPO / "local.settings.sample.json").read_text())["Values"]
    assert set(JOB_SETTINGS) <= set(sample)
    AppOptions.from_env(sample)  # raises SettingsError naming any value the app refuses


def test_azure_client_id_is_the_identity_in_both() -> None:
    assert render(bicep_contract()["AZURE_CLIENT_ID"]) == "identity.outputs.clientId"
    assert tf_contract()["AZURE_CLIENT_ID"] == "${azurerm_user_assigned_identity.app.client_id}"


def test_same_app_setting_names_in_both() -> None:
    bicep_names = set(bicep_contract()) | set(
        bicep("modules/functionapp.bicep")["variables"]["platformSettings"]["value"]
    )
    tf_names = set(tf_contract()) | set(terraform()["locals"]["platform_settings"])
    assert set(INDICATOR_STORAGE_SETTINGS) <= bicep_names & tf_names
    assert "LOCK_CONTAINER" in bicep_names & tf_names
    # Terraform passes the App Insights connection string through site_config and keeps an empty
    # AzureWebJobsStorage against the provider's key-based default (P9); otherwise the same.
    assert bicep_names - tf_names == {"APPLICATIONINSIGHTS_CONNECTION_STRING"}
    assert tf_names - bicep_names == {"AzureWebJobsStorage"}


def test_lock_container_default_matches() -> None:
    assert bicep_param_default(bicep("main.bicep"), "lockContainerName") == "indicator-locks"
    assert terraform()["variable"]["lock_container_name"]["default"] == "indicator-locks"
    assert bicep("modules/functionapp.bicep")["variables"]["platformSettings"]["value"]["LOCK_CONTAINER"] == (
        "lockContainerName"
    )
    assert terraform()["locals"]["platform_settings"]["LOCK_CONTAINER"] == "${var.lock_container_name}"


def test_resource_names_are_the_same() -> None:
    bicep_names = bicep("main.bicep")["variables"]["names"]["value"]
    tf_names = terraform()["locals"]["names"]

    def snake(name: str) -> str:
        return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()

    assert {snake(k) for k in bicep_names} == set(tf_names)
    for key, value in bicep_names.items():
        assert value.replace("${baseName}", "<base>") == tf_names[snake(key)].replace("${var.base_name}", "<base>")
    assert bicep("main.bicep")["variables"]["deploymentContainerName"]["value"] == "app-package-${names.functionApp}"
    assert terraform()["locals"]["deployment_container_name"] == "app-package-${local.names.function_app}"


@pytest.mark.parametrize(
    ("bicep_param", "tf_variable"),
    [
        ("pythonVersion", "python_version"),
        ("instanceMemoryMB", "instance_memory_mb"),
        ("maximumInstanceCount", "maximum_instance_count"),
        ("logRetentionInDays", "log_retention_in_days"),
        ("indicatorsContainerName", "indicators_container_name"),
        ("reportsContainerName", "reports_container_name"),
        ("deadLetterContainerName", "dead_letter_container_name"),
        ("jobsContainerName", "jobs_container_name"),
        ("stateContainerName", "state_container_name"),
        ("jobsQueueName", "jobs_queue_name"),
        ("jobResultDays", "job_result_days"),
        ("eventMaxDeliveryAttempts", "event_max_delivery_attempts"),
        ("eventTimeToLiveInMinutes", "event_time_to_live_in_minutes"),
        ("createEventSubscription", "create_event_subscription"),
        ("grantDefenderPermission", "grant_defender_permission"),
        ("azureAuthorityHost", "azure_authority_host"),
    ],
)
def test_operational_defaults_match(bicep_param: str, tf_variable: str) -> None:
    assert bicep_param_default(bicep("main.bicep"), bicep_param) == terraform()["variable"][tf_variable]["default"]


def test_jobs_queue_container_and_settings_are_one_name_in_both() -> None:
    """The queue the app is told about (JOBS_QUEUE) is the queue created, with its `<name>-poison`; the same
    for the container."""
    main = bicep("main.bicep")
    data = main["modules"]["dataStorage"]["config"]["params"]
    assert bicep_contract()["JOBS_QUEUE"] == "jobsQueueName" and "jobsQueueName" in data["queueNames"]
    assert bicep_contract()["JOBS_CONTAINER"] == "jobsContainerName" and "jobsContainerName" in data["containerNames"]
    assert main["variables"]["jobsPoisonQueueName"]["value"] == "${jobsQueueName}-poison"
    assert "jobsPoisonQueueName" in data["queueNames"]
    resource = terraform()["resource"]
    assert tf_contract()["JOBS_QUEUE"] == "${var.jobs_queue_name}" == resource["azurerm_storage_queue"]["jobs"]["name"]
    assert tf_contract()["JOBS_CONTAINER"] == "${var.jobs_container_name}"
    assert resource["azurerm_storage_container"]["jobs"]["name"] == "${var.jobs_container_name}"
    assert terraform()["locals"]["jobs_poison_queue_name"] == "${var.jobs_queue_name}-poison"
    assert resource["azurerm_storage_queue"]["jobs_poison"]["name"] == "${local.jobs_poison_queue_name}"
    assert bicep_param_default(main, "jobsQueueName") == terraform()["variable"]["jobs_queue_name"]["default"]
    # The poison queue's name must stay a valid queue name (at most 63 characters).
    assert bicep_decorators("jobsQueueName")["max_length"] == 63 - len("-poison")
    (validation,) = terraform()["variable"]["jobs_queue_name"]["validation"]
    assert "length(var.jobs_queue_name) <= 56" in validation["condition"]


def test_state_container_is_created_and_named_to_the_app_in_both() -> None:
    """[mirror] `indicator-state/<tenant key>/mirror…`: the container STATE_CONTAINER names is the one created, on
    the data account, in both stacks; the default is the code's."""
    main = bicep("main.bicep")
    data = main["modules"]["dataStorage"]["config"]["params"]
    assert bicep_contract()["STATE_CONTAINER"] == "stateContainerName"
    assert "stateContainerName" in data["containerNames"]
    container = terraform()["resource"]["azurerm_storage_container"]["state"]
    assert tf_contract()["STATE_CONTAINER"] == "${var.state_container_name}" == container["name"]
    assert container["storage_account_id"] == "${azurerm_storage_account.data.id}"
    assert bicep_param_default(main, "stateContainerName") == AppOptions().state_container == "indicator-state"


def test_tenant_refresh_minutes_limits_are_the_same_in_both_and_accepted_by_the_app() -> None:
    decorators = bicep_decorators("tenantRefreshMinutes")
    assert (decorators["min_value"], decorators["max_value"]) == (0, 1440)
    (validation,) = terraform()["variable"]["tenant_refresh_minutes"]["validation"]
    condition = validation["condition"]
    assert "var.tenant_refresh_minutes >= 0 && var.tenant_refresh_minutes <= 1440" in condition
    assert "floor(var.tenant_refresh_minutes) == var.tenant_refresh_minutes" in condition
    for value in ("0", "1440"):
        Settings.from_env({"TENANT_REFRESH_MINUTES": value})  # raises SettingsError if the app refused it


def _bicep_lifecycle_rule() -> dict:
    (rule,) = bicep("main.bicep")["modules"]["dataStorage"]["config"]["params"]["deleteAfterModificationRules"]
    return rule


def _tf_lifecycle_rule() -> dict:
    (policy,) = terraform()["resource"]["azurerm_storage_management_policy"].values()
    (rule,) = policy["rule"]
    return rule


def test_lifecycle_rule_is_the_same_in_both() -> None:
    rule = _bicep_lifecycle_rule()
    tf_rule = _tf_lifecycle_rule()
    assert rule["name"] == tf_rule["name"] == "delete-old-import-jobs"
    # On the data account in both (the host account's module call passes no rules).
    assert "deleteAfterModificationRules" not in bicep("main.bicep")["modules"]["hostStorage"]["config"]["params"]
    assert terraform()["resource"]["azurerm_storage_management_policy"]["data"]["storage_account_id"] == (
        "${azurerm_storage_account.data.id}"
    )


def test_lifecycle_rule_deletes_the_jobs_container_a_day_after_job_results_expire() -> None:
    """days = JOB_RESULT_DAYS + 1 from the one parameter that also sets JOB_RESULT_DAYS, and the prefix is the
    container JOBS_CONTAINER names, plus "/" so that no other container (indicator-jobs-old) matches."""
    main = bicep("main.bicep")
    rule = _bicep_lifecycle_rule()
    assert render(rule["days"]) == "add(jobResultDays, 1)"
    assert render(bicep_contract()["JOB_RESULT_DAYS"]) == "string(jobResultDays)"
    assert rule["prefix"] == "${jobsContainerName}/"
    assert bicep_contract()["JOBS_CONTAINER"] == "jobsContainerName"

    tf_rule = _tf_lifecycle_rule()
    tf_days = tf_rule["actions"][0]["base_blob"][0]["delete_after_days_since_modification_greater_than"]
    assert tf_days == "${var.job_result_days + 1}"
    assert tf_contract()["JOB_RESULT_DAYS"] == "${tostring(var.job_result_days)}"
    assert tf_rule["filters"][0]["prefix_match"] == ["${azurerm_storage_container.jobs.name}/"]
    assert terraform()["resource"]["azurerm_storage_container"]["jobs"]["name"] == "${var.jobs_container_name}"
    assert tf_contract()["JOBS_CONTAINER"] == "${var.jobs_container_name}"

    # At the defaults: results readable 7 days, blobs collected once unmodified for more than 8.
    result_days = bicep_param_default(main, "jobResultDays")
    assert result_days == terraform()["variable"]["job_result_days"]["default"] == AppOptions().job_result_days == 7
    assert result_days + 1 == 8


def test_same_role_assignments_in_both() -> None:
    """Same (scope, role) pairs; the data account's Storage Queue Data Contributor serves the jobs queue too."""
    doc = bicep("modules/rbac.bicep")
    roles = doc["variables"]["roles"]["value"]
    bicep_scope = {"hostStorage": "host", "dataStorage": "data", "appInsights": "app_insights"}
    in_bicep = set()
    for ra in resources_of_type(doc, "Microsoft.Authorization/roleAssignments").values():
        key = render(ra["config"]["properties"]["roleDefinitionId"]).split("roles.")[1].rstrip(")")
        in_bicep.add((bicep_scope[ra["config"]["scope"]], ROLE_IDS[roles[key]]))
    role_ids = terraform()["locals"]["role_ids"]
    tf_scope = {
        "${azurerm_storage_account.host.id}": "host",
        "${azurerm_storage_account.data.id}": "data",
        "${azurerm_application_insights.main.id}": "app_insights",
    }
    in_tf = set()
    for ra in terraform()["resource"]["azurerm_role_assignment"].values():
        key = ra["role_definition_id"].rsplit("local.role_ids.", 1)[1].rstrip("}")
        in_tf.add((tf_scope[ra["scope"]], ROLE_IDS[role_ids[key]]))
    assert in_bicep == in_tf
    assert ("data", "Storage Queue Data Contributor") in in_bicep
    assert set(roles.values()) == set(role_ids.values())


def test_script_creates_the_same_subscription_as_the_iac() -> None:
    script = (INFRA / "scripts" / "create-event-subscription.sh").read_text()
    assert f'readonly FUNCTION_NAME="{BLOB_FUNCTION}"' in script
    module = bicep("modules/eventgrid-subscription.bicep")
    (sub,) = [r for r in module["resources"].values() if not r["existing"] and "eventSubscriptions" in r["type"]]
    assert f'readonly API_VERSION="{sub["api_version"]}"' in script
    assert sub["config"]["name"] == "import-dropped-file"
    assert "/eventSubscriptions/import-dropped-file?" in script
    assert (
        terraform()["resource"]["azurerm_eventgrid_system_topic_event_subscription"]["import_dropped_file"]["name"]
        == "import-dropped-file"
    )
    assert '"subjectBeginsWith": "/blobServices/default/containers/${container}/"' in script
    assert '"includedEventTypes": ["Microsoft.Storage.BlobCreated"]' in script
    assert '"values": ["PutBlob", "PutBlockList", "FlushWithClose", "CopyBlob"]' in script
    assert '"endpointType": "WebHook"' in script and '"maxEventsPerBatch": 1' in script
    assert '"identity": {"type": "UserAssigned", "userAssignedIdentity": "${identity_id}"}' in script
    assert 'max_delivery_attempts="30"' in script and 'event_ttl="1440"' in script
    assert 'dead_letter_container="eventgrid-deadletter"' in script and 'container="indicators"' in script


# ---------- [entra] HTTP_AUTH and its settings ----------

HTTP_AUTH_SETTINGS = ("HTTP_AUTH", "HTTP_AUTH_TENANT_ID", "HTTP_AUTH_AUDIENCE", "HTTP_AUTH_AUTHORITY_HOST")


def bicep_http_auth() -> dict:
    return bicep("main.bicep")["variables"]["httpAuthSettings"]["value"]


def tf_http_auth() -> dict:
    return terraform()["locals"]["http_auth_settings"]


def test_http_auth_settings_are_set_in_both_and_reach_the_app() -> None:
    assert tuple(bicep_http_auth()) == tuple(tf_http_auth()) == HTTP_AUTH_SETTINGS
    params = bicep("main.bicep")["modules"]["functionApp"]["config"]["params"]
    assert render(params["contractSettings"]) == "union(contractSettings, httpAuthSettings)"
    assert "local.http_auth_settings" in terraform()["locals"]["app_settings"]


def test_http_auth_defaults_match_each_other_and_the_code() -> None:
    """function-key by default; in that mode the token settings are empty, except the authority host, which
    is the cloud's login endpoint: in the public cloud the code's own default."""
    from shared.app.auth import DEFAULT_AUTHORITY_HOST, http_auth_mode

    main = bicep("main.bicep")
    assert bicep_default_string(main, bicep_http_auth()["HTTP_AUTH"]) == tf_default_string(tf_http_auth()["HTTP_AUTH"])
    assert http_auth_mode(bicep_param_default(main, "httpAuth")) == ("function-key", None)
    assert render(bicep_http_auth()["HTTP_AUTH_TENANT_ID"]) == "entraOn ? tenant().tenantId : "
    assert tf_http_auth()["HTTP_AUTH_TENANT_ID"] == (
        '${local.http_auth_entra ? data.azuread_client_config.current.tenant_id : ""}'
    )
    assert render(bicep_http_auth()["HTTP_AUTH_AUDIENCE"]) == (
        "entraOn ? createAppRegistration ? entraApp.outputs.audience : httpAuthAudience : "
    )
    assert tf_http_auth()["HTTP_AUTH_AUDIENCE"] == '${local.http_auth_entra ? local.http_auth_audience : ""}'
    # Authority host: the parameter, or the deployment cloud's login endpoint (trailing slash dropped).
    variables = main["variables"]
    assert render(variables["loginEndpoint"]["value"]) == (
        "empty(httpAuthAuthorityHost) ? environment().authentication.loginEndpoint : httpAuthAuthorityHost"
    )
    assert bicep_http_auth()["HTTP_AUTH_AUTHORITY_HOST"] == "authorityHost"
    locals_ = terraform()["locals"]
    assert tf_http_auth()["HTTP_AUTH_AUTHORITY_HOST"] == "${local.http_auth_authority_host}"
    assert "local.login_endpoints[var.cloud_environment]" in locals_["http_auth_authority_host"]
    assert locals_["login_endpoints"]["public"] == DEFAULT_AUTHORITY_HOST
    assert set(locals_["login_endpoints"]) == {"public", "usgovernment", "china"}


def test_http_auth_settings_are_in_the_local_sample_and_the_readme() -> None:
    import json

    sample = json.loads((INFRA.parent / "local.settings.sample.json").read_text())["Values"]
    assert {k: sample[k] for k in HTTP_AUTH_SETTINGS} == {
        "HTTP_AUTH": "function-key", "HTTP_AUTH_TENANT_ID": "", "HTTP_AUTH_AUDIENCE": "",
        "HTTP_AUTH_AUTHORITY_HOST": "https://login.microsoftonline.com",
    }  # fmt: skip
    readme = (INFRA.parent / "README.md").read_text()
    infra_readme = (INFRA / "README.md").read_text()
    for name in HTTP_AUTH_SETTINGS:
        assert f"| `{name}` |" in readme and f"| `{name}` |" in infra_readme, name
