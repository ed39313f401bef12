"""Security properties of infra/terraform (issue 5), read with python-hcl2.

No Terraform binary runs here: these tests pin what `terraform validate` cannot, the promises the
design makes (azure-functions-conventions.md, conventions 21-26, 31-32; defender-api.md §7).
"""

from __future__ import annotations

import re

import pytest

from tests.infra.iac import (
    BLOB_FUNCTION,
    DEFENDER_APP_ID,
    FLEX_DEPRECATED,
    ROLE_IDS,
    block,
    terraform,
    tf_text,
)

IDENTITY_CLIENT_ID = "${azurerm_user_assigned_identity.app.client_id}"
IDENTITY_PRINCIPAL_ID = "${azurerm_user_assigned_identity.app.principal_id}"
IDENTITY_ID = "${azurerm_user_assigned_identity.app.id}"


def resources(rtype: str) -> dict:
    return terraform()["resource"].get(rtype, {})


def app() -> dict:
    return resources("azurerm_function_app_flex_consumption")["main"]


def app_settings() -> dict:
    """The app's settings map: merge(platform, contract, cloud, [entra] http_auth) from locals.tf."""
    locals_ = terraform()["locals"]
    assert app()["app_settings"] == "${local.app_settings}"
    assert locals_["app_settings"] == (
        "${merge(local.platform_settings, local.contract_settings, local.cloud_settings, local.http_auth_settings)}"
    )
    return {**locals_["platform_settings"], **locals_["contract_settings"]}


def test_provider_versions_are_pinned_to_azurerm_4_and_azuread_3() -> None:
    required = terraform()["terraform"][0]["required_providers"]
    providers = required[0] if isinstance(required, list) else required
    assert providers["azurerm"]["source"] == "hashicorp/azurerm"
    # 4.46 gave azurerm_storage_queue its storage_account_id (Resource Manager, no data plane); 4.47 fixed a
    # queue_properties error with data_plane_available = false.
    assert providers["azurerm"]["version"] == "~> 4.47"
    assert providers["azuread"]["source"] == "hashicorp/azuread"
    assert providers["azuread"]["version"].startswith("~> 3.")


def test_azurerm_provider_uses_entra_id_for_storage() -> None:
    (azurerm,) = [p["azurerm"] for p in terraform()["provider"] if "azurerm" in p]
    assert azurerm["storage_use_azuread"] is True
    assert block(block(azurerm, "features"), "storage")["data_plane_available"] is False


@pytest.mark.parametrize("name", ["host", "data"])
def test_storage_accounts_refuse_shared_keys_and_old_tls(name: str) -> None:
    sa = resources("azurerm_storage_account")[name]
    assert sa["shared_access_key_enabled"] is False
    assert sa["default_to_oauth_authentication"] is True
    assert sa["allow_nested_items_to_be_public"] is False
    assert sa["min_tls_version"] == "TLS1_2"
    assert sa["https_traffic_only_enabled"] is True
    assert sa["infrastructure_encryption_enabled"] is True
    assert block(sa, "network_rules")["bypass"] == ["AzureServices"]


def test_containers_are_private_and_on_the_right_accounts() -> None:
    containers = resources("azurerm_storage_container")
    on_account = {name: c["storage_account_id"] for name, c in containers.items()}
    assert on_account == {
        "deployment": "${azurerm_storage_account.host.id}",
        "indicators": "${azurerm_storage_account.data.id}",
        "reports": "${azurerm_storage_account.data.id}",
        "locks": "${azurerm_storage_account.data.id}",
        "dead_letter": "${azurerm_storage_account.data.id}",
        "jobs": "${azurerm_storage_account.data.id}",
        "state": "${azurerm_storage_account.data.id}",  # [mirror] the tenant mirror
    }
    assert all(c["container_access_type"] == "private" for c in containers.values())
    assert containers["jobs"]["name"] == "${var.jobs_container_name}"
    assert containers["state"]["name"] == "${var.state_container_name}"
    variables = terraform()["variable"]
    assert variables["indicators_container_name"]["default"] == "indicators"
    assert variables["reports_container_name"]["default"] == "indicator-reports"
    assert variables["lock_container_name"]["default"] == "indicator-locks"
    assert variables["jobs_container_name"]["default"] == "indicator-jobs"
    assert variables["state_container_name"]["default"] == "indicator-state"


def test_jobs_queue_and_its_poison_queue_are_on_the_data_account() -> None:
    queues = resources("azurerm_storage_queue")
    # Through Resource Manager (storage_account_id), like the containers: the provider has no data plane here.
    assert queues == {
        "jobs": {"name": "${var.jobs_queue_name}", "storage_account_id": "${azurerm_storage_account.data.id}"},
        "jobs_poison": {
            "name": "${local.jobs_poison_queue_name}",
            "storage_account_id": "${azurerm_storage_account.data.id}",
        },
    }
    assert terraform()["locals"]["jobs_poison_queue_name"] == "${var.jobs_queue_name}-poison"
    assert terraform()["variable"]["jobs_queue_name"]["default"] == "indicator-jobs"


def test_jobs_container_must_not_be_another_container() -> None:
    """The lifecycle rule deletes everything in the jobs container: Terraform refuses a shared one."""
    conditions = [v["condition"] for v in terraform()["variable"]["jobs_container_name"]["validation"]]
    assert (
        "${!contains([var.indicators_container_name, var.reports_container_name, var.lock_container_name, "
        "var.dead_letter_container_name, var.state_container_name], var.jobs_container_name)}"
    ) in conditions


def test_state_container_must_not_be_a_data_container() -> None:
    """The app refuses a mirror among the dropped files or the reports (`runtime.lock_container_problem`)."""
    conditions = [v["condition"] for v in terraform()["variable"]["state_container_name"]["validation"]]
    assert (
        "${!contains([var.indicators_container_name, var.reports_container_name], var.state_container_name)}"
    ) in conditions


def test_lifecycle_rule_collects_the_jobs_container() -> None:
    (policy,) = resources("azurerm_storage_management_policy").values()
    assert policy["storage_account_id"] == "${azurerm_storage_account.data.id}"
    (rule,) = policy["rule"]
    assert rule["enabled"] is True
    filters = block(rule, "filters")
    # Progress logs are append blobs: a block-blob-only rule would leave them behind.
    assert filters["blob_types"] == ["blockBlob", "appendBlob"]
    assert filters["prefix_match"] == ["${azurerm_storage_container.jobs.name}/"]
    base_blob = block(block(rule, "actions"), "base_blob")
    assert base_blob == {"delete_after_days_since_modification_greater_than": "${var.job_result_days + 1}"}


def test_no_storage_key_or_connection_string_anywhere() -> None:
    text = tf_text()
    for forbidden in (
        "primary_connection_string",
        "primary_access_key",
        "secondary_access_key",
        "AccountKey=",
        "DefaultEndpointsProtocol",
        "storage_access_key",
        "function_app_storage_account_access_key",
        "StorageAccountConnectionString",
    ):
        assert forbidden not in text, forbidden
    # The empty AzureWebJobsStorage keeps the provider from writing a key-based one (P9).
    assert app_settings()["AzureWebJobsStorage"] == ""
    assert "connection_string" not in app()


def test_function_app_is_flex_python_https_only_with_identity_deployment() -> None:
    plan = resources("azurerm_service_plan")["main"]
    assert plan["sku_name"] == "FC1"
    assert plan["os_type"] == "Linux"
    a = app()
    assert a["https_only"] is True
    assert a["runtime_name"] == "python"
    assert a["runtime_version"] == "${var.python_version}"
    assert terraform()["variable"]["python_version"]["default"] == "3.12"
    assert a["storage_container_type"] == "blobContainer"
    assert a["storage_authentication_type"] == "UserAssignedIdentity"
    assert a["storage_user_assigned_identity_id"] == IDENTITY_ID
    assert a["storage_container_endpoint"].startswith("${azurerm_storage_account.host.primary_blob_endpoint}")
    assert a["webdeploy_publish_basic_authentication_enabled"] is False
    identity = block(a, "identity")
    assert identity["type"] == "UserAssigned"
    assert identity["identity_ids"] == [IDENTITY_ID]
    site = block(a, "site_config")
    assert site["minimum_tls_version"] == "1.2"
    assert site["scm_minimum_tls_version"] == "1.2"


@pytest.mark.parametrize(
    ("prefix", "account"),
    [("AzureWebJobsStorage", "host"), ("IndicatorStorage", "data")],
)
def test_identity_based_connections_name_credential_and_client_id(prefix: str, account: str) -> None:
    settings = app_settings()
    assert settings[f"{prefix}__credential"] == "managedidentity"
    assert settings[f"{prefix}__clientId"] == IDENTITY_CLIENT_ID
    assert settings[f"{prefix}__blobServiceUri"] == f"${{azurerm_storage_account.{account}.primary_blob_endpoint}}"
    # Blob-trigger connections need the queue endpoint too (P5).
    assert settings[f"{prefix}__queueServiceUri"] == f"${{azurerm_storage_account.{account}.primary_queue_endpoint}}"
    assert f"{prefix}__serviceUri" not in settings
    assert settings["AZURE_CLIENT_ID"] == IDENTITY_CLIENT_ID


def test_telemetry_uses_entra_id_only() -> None:
    ai = resources("azurerm_application_insights")["main"]
    assert ai["local_authentication_disabled"] is True
    assert ai["workspace_id"] == "${azurerm_log_analytics_workspace.main.id}"
    assert resources("azurerm_log_analytics_workspace")["main"]["local_authentication_enabled"] is False
    assert (
        app_settings()["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]
        == f"Authorization=AAD;ClientId={IDENTITY_CLIENT_ID}"
    )
    site = block(app(), "site_config")
    assert site["application_insights_connection_string"] == "${azurerm_application_insights.main.connection_string}"


def test_no_flex_deprecated_setting() -> None:
    names = set(app_settings()) | {"AZURE_AUTHORITY_HOST"}  # cloud_settings adds only that one
    assert terraform()["locals"]["cloud_settings"] == (
        '${var.azure_authority_host == "" ? {} : {AZURE_AUTHORITY_HOST = var.azure_authority_host}}'
    )
    text = tf_text()
    for deprecated in FLEX_DEPRECATED:
        assert not any(n.startswith(deprecated) for n in names), deprecated
        assert deprecated not in text, deprecated


def test_role_assignments_are_exactly_the_least_privilege_set() -> None:
    role_ids = terraform()["locals"]["role_ids"]
    got = set()
    for ra in resources("azurerm_role_assignment").values():
        assert ra["principal_id"] == IDENTITY_PRINCIPAL_ID
        assert ra["principal_type"] == "ServicePrincipal"
        m = re.fullmatch(r"\$\{local\.role_definition_prefix\}/\$\{local\.role_ids\.(\w+)\}", ra["role_definition_id"])
        assert m, ra["role_definition_id"]
        role_id = role_ids[m.group(1)]
        # Deterministic names, like Bicep's guid(scope, principal, role).
        assert ra["name"] == (
            f'${{uuidv5("url", "{ra["scope"]}/{IDENTITY_PRINCIPAL_ID}/${{local.role_ids.{m.group(1)}}}")}}'
        )
        got.add((ra["scope"], ROLE_IDS[role_id]))
    assert got == {
        ("${azurerm_storage_account.host.id}", "Storage Blob Data Owner"),
        ("${azurerm_storage_account.host.id}", "Storage Queue Data Contributor"),
        ("${azurerm_storage_account.data.id}", "Storage Blob Data Contributor"),
        ("${azurerm_storage_account.data.id}", "Storage Queue Data Contributor"),
        ("${azurerm_application_insights.main.id}", "Monitoring Metrics Publisher"),
    }
    assert terraform()["locals"]["role_definition_prefix"].endswith(
        "/providers/Microsoft.Authorization/roleDefinitions"
    )


def test_app_waits_for_its_role_assignments() -> None:
    needs = set(app()["depends_on"])
    assert needs == {f"${{azurerm_role_assignment.{n}}}" for n in resources("azurerm_role_assignment")}


def test_event_grid_system_topic_on_the_data_account() -> None:
    topic = resources("azurerm_eventgrid_system_topic")["data"]
    assert topic["source_resource_id"] == "${azurerm_storage_account.data.id}"
    assert topic["topic_type"] == "Microsoft.Storage.StorageAccounts"
    assert block(topic, "identity")["identity_ids"] == [IDENTITY_ID]


def test_event_subscription_targets_the_blobs_webhook_of_import_dropped_file() -> None:
    sub = resources("azurerm_eventgrid_system_topic_event_subscription")["import_dropped_file"]
    # Second step only: never created by the first apply (P2).
    assert sub["count"] == "${var.create_event_subscription ? 1 : 0}"
    assert terraform()["variable"]["create_event_subscription"]["default"] is False
    assert terraform()["locals"]["blob_function_name"] == BLOB_FUNCTION
    assert "azure_function_endpoint" not in sub  # P4
    url = block(sub, "webhook_endpoint")["url"]
    assert url == (
        "https://${azurerm_function_app_flex_consumption.main.default_hostname}/runtime/webhooks/blobs"
        "?functionName=Host.Functions.${local.blob_function_name}"
        "&code=${data.azurerm_function_app_host_keys.main[0].blobs_extension_key}"
    )
    assert sub["included_event_types"] == ["Microsoft.Storage.BlobCreated"]
    assert block(sub, "subject_filter")["subject_begins_with"] == (
        "/blobServices/default/containers/${var.indicators_container_name}/"
    )
    string_in = block(block(sub, "advanced_filter"), "string_in")
    assert string_in == {"key": "data.api", "values": ["PutBlob", "PutBlockList", "FlushWithClose", "CopyBlob"]}
    retry = block(sub, "retry_policy")
    assert retry == {
        "max_delivery_attempts": "${var.event_max_delivery_attempts}",
        "event_time_to_live": "${var.event_time_to_live_in_minutes}",
    }
    assert block(sub, "dead_letter_identity") == {"type": "UserAssigned", "user_assigned_identity": IDENTITY_ID}
    assert block(sub, "storage_blob_dead_letter_destination") == {
        "storage_account_id": "${azurerm_storage_account.data.id}",
        "storage_blob_container_name": "${azurerm_storage_container.dead_letter.name}",
    }
    keys = terraform()["data"]["azurerm_function_app_host_keys"]["main"]
    assert keys["count"] == sub["count"]


def test_defender_app_role_is_looked_up_by_value_and_granted_to_the_identity() -> None:
    locals_ = terraform()["locals"]
    assert locals_["defender_app_id"] == DEFENDER_APP_ID
    assert locals_["defender_app_role_value"] == "Ti.ReadWrite.All"
    sp = terraform()["data"]["azuread_service_principal"]["defender"]
    assert sp["client_id"] == "${local.defender_app_id}"
    grant = resources("azuread_app_role_assignment")["defender_ti_readwrite"]
    assert grant["app_role_id"] == (
        "${data.azuread_service_principal.defender[0].app_role_ids[local.defender_app_role_value]}"
    )
    assert grant["principal_object_id"] == IDENTITY_PRINCIPAL_ID
    assert grant["resource_object_id"] == "${data.azuread_service_principal.defender[0].object_id}"
    assert grant["count"] == sp["count"] == "${var.grant_defender_permission ? 1 : 0}"
    assert terraform()["variable"]["grant_defender_permission"]["default"] is True


def test_outputs_name_the_app_containers_and_identity() -> None:
    outputs = terraform()["output"]
    for name in (
        "function_app_name",
        "function_app_url",
        "indicators_container_name",
        "reports_container_name",
        "lock_container_name",
        "dead_letter_container_name",
        "jobs_container_name",
        "state_container_name",
        "jobs_queue_name",
        "jobs_poison_queue_name",
        "identity_client_id",
        "identity_principal_id",
    ):
        assert outputs[name]["description"], name
    assert outputs["identity_client_id"]["value"] == IDENTITY_CLIENT_ID
    assert outputs["identity_principal_id"]["value"] == IDENTITY_PRINCIPAL_ID


def test_every_variable_has_type_and_description() -> None:
    for name, var in terraform()["variable"].items():
        assert var.get("type"), name
        assert var.get("description"), name
