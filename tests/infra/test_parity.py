"""Parity: Bicep and Terraform set every contract setting (CONTRACT.md "Settings") with the same
defaults, and those defaults are the code's own (shared/core/settings.py `Settings`), so code and infra
cannot drift. Also the same names, containers and Event Grid wiring in both and in the script."""

from __future__ import annotations

import re
from dataclasses import fields

import pytest

from shared.core.settings import Settings
from tests.infra.iac import (
    BLOB_FUNCTION,
    CONTRACT_SETTINGS,
    INDICATOR_STORAGE_SETTINGS,
    INFRA,
    bicep,
    bicep_default_string,
    bicep_param_default,
    render,
    terraform,
    tf_default_string,
)

# Contract settings whose value is not a default but a deployment fact.
NOT_DEFAULTS = {"AZURE_CLIENT_ID"}


def bicep_contract() -> dict:
    return bicep("main.bicep")["variables"]["contractSettings"]["value"]


def tf_contract() -> dict:
    return terraform()["locals"]["contract_settings"]


def attr(setting: str) -> str:
    return setting.lower()


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
        "DRY_RUN": "false",
        "MAX_HTTP_BODY_BYTES": "20971520",
        "MAX_HTTP_INDICATORS": "15000",
        "MAX_TENANT_INDICATORS": "15000",
        "CAPACITY_RESERVE": "500",
    }


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
        ("eventMaxDeliveryAttempts", "event_max_delivery_attempts"),
        ("eventTimeToLiveInMinutes", "event_time_to_live_in_minutes"),
        ("createEventSubscription", "create_event_subscription"),
        ("grantDefenderPermission", "grant_defender_permission"),
        ("azureAuthorityHost", "azure_authority_host"),
    ],
)
def test_operational_defaults_match(bicep_param: str, tf_variable: str) -> None:
    assert bicep_param_default(bicep("main.bicep"), bicep_param) == terraform()["variable"][tf_variable]["default"]


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
