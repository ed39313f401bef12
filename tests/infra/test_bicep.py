"""Security properties of infra/bicep (issue 5), read with pycep-parser.

No Bicep compiler runs here: these tests pin the promises the design makes
(azure-functions-conventions.md, conventions 21-26, 30, 32; defender-api.md §7), including the Graph
permission module that checkov cannot parse (.checkov.yaml skip-path).
"""

from __future__ import annotations

import json

import pytest

from tests.infra.iac import (
    BICEP_DIR,
    BLOB_FUNCTION,
    DEFENDER_APP_ID,
    FLEX_DEPRECATED,
    REPO,
    ROLE_IDS,
    bicep,
    bicep_files,
    bicep_param_default,
    render,
    resources_of_type,
    unquote_keys,
)


def main() -> dict:
    return bicep("main.bicep")


def module_params(name: str) -> dict:
    """Params of a main.bicep module; a conditional module nests its body one level deeper."""
    config = main()["modules"][name]["config"]
    return config["config"]["params"] if "condition" in config else config["params"]


def test_every_file_parses_and_every_module_exists() -> None:
    files = bicep_files()
    assert {f.name for f in files} >= {"main.bicep", "defender-permission.bicep", "eventgrid-subscription.bicep"}
    for f in files:
        assert bicep(str(f.relative_to(BICEP_DIR)))["globals"]["scope"]["value"] == "resourceGroup"
    for name, mod in main()["modules"].items():
        assert (BICEP_DIR / mod["detail"]["path"]).is_file(), name


def test_every_parameter_is_described() -> None:
    for f in bicep_files():
        for name, param in bicep(str(f.relative_to(BICEP_DIR)))["parameters"].items():
            assert any(d["type"] == "description" for d in param["decorators"]), f"{f.name}: {name}"


def test_storage_accounts_refuse_shared_keys_and_old_tls() -> None:
    (account,) = resources_of_type(bicep("modules/storage.bicep"), "Microsoft.Storage/storageAccounts").values()
    props = account["config"]["properties"]
    assert props["allowSharedKeyAccess"] is False
    assert props["defaultToOAuthAuthentication"] is True
    assert props["allowBlobPublicAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["supportsHttpsTrafficOnly"] is True
    assert props["encryption"]["requireInfrastructureEncryption"] is True
    assert props["networkAcls"]["bypass"] == "AzureServices"
    (containers,) = resources_of_type(
        bicep("modules/storage.bicep"), "Microsoft.Storage/storageAccounts/blobServices/containers"
    ).values()
    assert containers["config"]["loop_type"]["detail"]["array_name"] == "containerNames"
    assert containers["config"]["config"]["properties"]["publicAccess"] == "None"


def test_both_accounts_get_their_containers() -> None:
    host = module_params("hostStorage")
    data = module_params("dataStorage")
    assert host["containerNames"] == ["deploymentContainerName"]
    assert data["containerNames"] == [
        "indicatorsContainerName",
        "reportsContainerName",
        "lockContainerName",
        "deadLetterContainerName",
        "jobsContainerName",
        "stateContainerName",  # [mirror] the tenant mirror
    ]
    assert bicep_param_default(main(), "indicatorsContainerName") == "indicators"
    assert bicep_param_default(main(), "reportsContainerName") == "indicator-reports"
    assert bicep_param_default(main(), "lockContainerName") == "indicator-locks"
    assert bicep_param_default(main(), "jobsContainerName") == "indicator-jobs"
    assert bicep_param_default(main(), "stateContainerName") == "indicator-state"
    # Queues and lifecycle rules on the data account only.
    assert "queueNames" not in host and "deleteAfterModificationRules" not in host
    assert data["queueNames"] == ["jobsQueueName", "jobsPoisonQueueName"]
    assert bicep_param_default(main(), "jobsQueueName") == "indicator-jobs"
    assert main()["variables"]["jobsPoisonQueueName"]["value"] == "${jobsQueueName}-poison"


def test_storage_module_creates_its_queues_and_lifecycle_rules() -> None:
    doc = bicep("modules/storage.bicep")
    assert doc["parameters"]["queueNames"]["default"] == []
    assert doc["parameters"]["deleteAfterModificationRules"]["default"] == []
    (service,) = resources_of_type(doc, "Microsoft.Storage/storageAccounts/queueServices").values()
    assert service["existing"] is True and service["config"] == {"parent": "account", "name": "default"}
    (queues,) = resources_of_type(doc, "Microsoft.Storage/storageAccounts/queueServices/queues").values()
    assert queues["config"]["loop_type"]["detail"] == {"item_name": "queueName", "array_name": "queueNames"}
    assert queues["config"]["config"] == {"parent": "queueService", "name": "queueName"}
    (policy,) = resources_of_type(doc, "Microsoft.Storage/storageAccounts/managementPolicies").values()
    # An account without rules gets no policy (a policy needs at least one rule).
    assert render(policy["config"]["condition"]) == "not(empty(deleteAfterModificationRules))"
    body = policy["config"]["config"]
    assert (body["parent"], body["name"]) == ("account", "default")
    rules = body["properties"]["policy"]["rules"]
    assert rules["loop_type"]["detail"] == {"item_name": "rule", "array_name": "deleteAfterModificationRules"}
    rule = rules["config"]
    assert render(rule["name"]) == "rule.name"
    assert (rule["enabled"], rule["type"]) == (True, "Lifecycle")
    filters = rule["definition"]["filters"]
    # Progress logs are append blobs: a block-blob-only rule would leave them behind.
    assert filters["blobTypes"] == ["blockBlob", "appendBlob"]
    assert [render(p) for p in filters["prefixMatch"]] == ["rule.prefix"]
    actions = rule["definition"]["actions"]
    assert list(actions) == ["baseBlob"] and list(actions["baseBlob"]) == ["delete"]
    assert {k: render(v) for k, v in actions["baseBlob"]["delete"].items()} == {
        "daysAfterModificationGreaterThan": "rule.days"
    }


def test_no_storage_key_or_connection_string_anywhere() -> None:
    for f in bicep_files():
        text = f.read_text()
        for forbidden in ("AccountKey=", "DefaultEndpointsProtocol", "StorageAccountConnectionString", "listKeys(st"):
            assert forbidden not in text, f"{f.name}: {forbidden}"
        # The only key read is the blobs_extension system key of the app's host (Event Grid webhook).
        for line in text.splitlines():
            if "listKeys(" in line or ".listKeys" in line:
                assert f.name == "eventgrid-subscription.bicep" and "/host/default" in line, f"{f.name}: {line}"


def test_function_app_is_flex_python_https_only_with_identity_deployment() -> None:
    doc = bicep("modules/functionapp.bicep")
    (plan,) = resources_of_type(doc, "Microsoft.Web/serverfarms").values()
    assert plan["config"]["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["config"]["properties"]["reserved"] is True
    (site,) = resources_of_type(doc, "Microsoft.Web/sites").values()
    cfg = site["config"]
    assert cfg["kind"] == "functionapp,linux"
    assert cfg["identity"]["type"] == "UserAssigned"
    assert list(unquote_keys(cfg["identity"]["userAssignedIdentities"])) == ["${identityId}"]
    props = cfg["properties"]
    assert props["httpsOnly"] is True
    assert props["siteConfig"]["minTlsVersion"] == "1.2"
    assert props["siteConfig"]["scmMinTlsVersion"] == "1.2"
    fac = props["functionAppConfig"]
    assert fac["runtime"] == {"name": "python", "version": "pythonVersion"}
    assert bicep_param_default(main(), "pythonVersion") == "3.12"
    storage = fac["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["value"] == "${hostBlobEndpoint}${deploymentContainerName}"
    assert storage["authentication"] == {"type": "UserAssignedIdentity", "userAssignedIdentityResourceId": "identityId"}
    (scm,) = resources_of_type(doc, "Microsoft.Web/sites/basicPublishingCredentialsPolicies").values()
    assert scm["config"]["name"] == "scm"
    assert scm["config"]["properties"]["allow"] is False
    (settings,) = resources_of_type(doc, "Microsoft.Web/sites/config").values()
    assert settings["config"]["name"] == "appsettings"
    assert render(settings["config"]["properties"]) == "union(platformSettings, contractSettings, cloudSettings)"


@pytest.mark.parametrize(
    ("prefix", "account"),
    [("AzureWebJobsStorage", "host"), ("IndicatorStorage", "data")],
)
def test_identity_based_connections_name_credential_and_client_id(prefix: str, account: str) -> None:
    settings = bicep("modules/functionapp.bicep")["variables"]["platformSettings"]["value"]
    assert settings[f"{prefix}__credential"] == "managedidentity"
    assert settings[f"{prefix}__clientId"] == "identityClientId"
    assert settings[f"{prefix}__blobServiceUri"] == f"{account}BlobEndpoint"
    assert settings[f"{prefix}__queueServiceUri"] == f"{account}QueueEndpoint"  # P5
    assert f"{prefix}__serviceUri" not in settings
    app = module_params("functionApp")
    assert render(app["identityClientId"]) == "identity.outputs.clientId"
    assert render(app[f"{account}BlobEndpoint"]) == f"{account}Storage.outputs.blobEndpoint"
    assert render(app[f"{account}QueueEndpoint"]) == f"{account}Storage.outputs.queueEndpoint"
    storage = bicep("modules/storage.bicep")["outputs"]
    assert render(storage["blobEndpoint"]["value"]) == "account.properties.primaryEndpoints.blob"
    assert render(storage["queueEndpoint"]["value"]) == "account.properties.primaryEndpoints.queue"


def test_telemetry_uses_entra_id_only() -> None:
    doc = bicep("modules/monitoring.bicep")
    (ai,) = resources_of_type(doc, "Microsoft.Insights/components").values()
    assert ai["config"]["properties"]["DisableLocalAuth"] is True
    (ws,) = resources_of_type(doc, "Microsoft.OperationalInsights/workspaces").values()
    assert ws["config"]["properties"]["features"]["disableLocalAuth"] is True
    settings = bicep("modules/functionapp.bicep")["variables"]["platformSettings"]["value"]
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "Authorization=AAD;ClientId=${identityClientId}"
    assert settings["APPLICATIONINSIGHTS_CONNECTION_STRING"] == "appInsightsConnectionString"


def test_no_flex_deprecated_setting() -> None:
    names = set(bicep("modules/functionapp.bicep")["variables"]["platformSettings"]["value"])
    names |= set(main()["variables"]["contractSettings"]["value"])
    for f in bicep_files():
        text = f.read_text()
        for deprecated in FLEX_DEPRECATED:
            assert deprecated not in text, f"{f.name}: {deprecated}"
    for deprecated in FLEX_DEPRECATED:
        assert not any(n.startswith(deprecated) for n in names), deprecated


def test_role_assignments_are_exactly_the_least_privilege_set() -> None:
    doc = bicep("modules/rbac.bicep")
    roles = doc["variables"]["roles"]["value"]
    existing = {name: r["type"] for name, r in doc["resources"].items() if r["existing"]}
    got = set()
    for name, ra in resources_of_type(doc, "Microsoft.Authorization/roleAssignments").items():
        cfg = ra["config"]
        props = cfg["properties"]
        assert props["principalId"] == "principalId", name
        assert props["principalType"] == "ServicePrincipal", name
        role_ref = render(props["roleDefinitionId"])
        assert role_ref.startswith("subscription_resource_id(Microsoft.Authorization/roleDefinitions, roles."), role_ref
        role_key = role_ref.split("roles.")[1].rstrip(")")
        assert render(cfg["name"]) == f"guid({cfg['scope']}.id, principalId, roles.{role_key})", name
        got.add((existing[cfg["scope"]], ROLE_IDS[roles[role_key]]))
    assert got == {
        ("Microsoft.Storage/storageAccounts", "Storage Blob Data Owner"),
        ("Microsoft.Storage/storageAccounts", "Storage Queue Data Contributor"),
        ("Microsoft.Storage/storageAccounts", "Storage Blob Data Contributor"),
        ("Microsoft.Insights/components", "Monitoring Metrics Publisher"),
    }
    scopes = {
        (ra["config"]["scope"], render(ra["config"]["properties"]["roleDefinitionId"]).split("roles.")[1].rstrip(")"))
        for ra in resources_of_type(doc, "Microsoft.Authorization/roleAssignments").values()
    }
    assert scopes == {
        ("hostStorage", "storageBlobDataOwner"),
        ("hostStorage", "storageQueueDataContributor"),
        ("dataStorage", "storageBlobDataContributor"),
        ("dataStorage", "storageQueueDataContributor"),
        ("appInsights", "monitoringMetricsPublisher"),
    }
    rbac = module_params("rbac")
    assert render(rbac["principalId"]) == "identity.outputs.principalId"
    assert render(rbac["hostStorageName"]) == "hostStorage.outputs.name"
    assert render(rbac["dataStorageName"]) == "dataStorage.outputs.name"


def test_event_grid_system_topic_on_the_data_account() -> None:
    doc = bicep("modules/eventgrid.bicep")
    (topic,) = resources_of_type(doc, "Microsoft.EventGrid/systemTopics").values()
    assert topic["config"]["properties"] == {
        "source": "dataStorageId",
        "topicType": "Microsoft.Storage.StorageAccounts",
    }
    assert list(unquote_keys(topic["config"]["identity"]["userAssignedIdentities"])) == ["${identityId}"]
    assert render(main()["modules"]["eventGrid"]["config"]["params"]["dataStorageId"]) == "dataStorage.outputs.id"


def test_event_subscription_targets_the_blobs_webhook_of_import_dropped_file() -> None:
    mod = main()["modules"]["eventSubscription"]
    # Second step only: never created by the first deployment (P2).
    assert mod["config"]["condition"] == "createEventSubscription"
    assert bicep_param_default(main(), "createEventSubscription") is False
    doc = bicep("modules/eventgrid-subscription.bicep")
    assert doc["variables"]["functionName"]["value"] == BLOB_FUNCTION
    assert render(doc["variables"]["blobsExtensionKey"]["value"]) == (
        "listKeys(${site.id}/host/default, 2024-04-01).systemKeys.blobs_extension"
    )
    (sub,) = resources_of_type(doc, "Microsoft.EventGrid/systemTopics/eventSubscriptions").values()
    props = sub["config"]["properties"]
    dest = props["destination"]
    assert dest["endpointType"] == "WebHook"  # not AzureFunction (P4)
    assert dest["properties"]["endpointUrl"] == (
        "https://${site.properties.defaultHostName}/runtime/webhooks/blobs"
        "?functionName=Host.Functions.${functionName}&code=${blobsExtensionKey}"
    )
    flt = props["filter"]
    assert flt["includedEventTypes"] == ["Microsoft.Storage.BlobCreated"]
    assert flt["subjectBeginsWith"] == "/blobServices/default/containers/${indicatorsContainerName}/"
    assert flt["advancedFilters"] == [
        {
            "operatorType": "StringIn",
            "key": "data.api",
            "values": ["PutBlob", "PutBlockList", "FlushWithClose", "CopyBlob"],
        }
    ]
    assert props["retryPolicy"] == {
        "maxDeliveryAttempts": "maxDeliveryAttempts",
        "eventTimeToLiveInMinutes": "eventTimeToLiveInMinutes",
    }
    dead = props["deadLetterWithResourceIdentity"]
    assert dead["identity"] == {"type": "UserAssigned", "userAssignedIdentity": "identityId"}
    assert dead["deadLetterDestination"] == {
        "endpointType": "StorageBlob",
        "properties": {"resourceId": "dataStorageId", "blobContainerName": "deadLetterContainerName"},
    }
    params = mod["config"]["config"]["params"]
    assert params["indicatorsContainerName"] == "indicatorsContainerName"
    assert params["deadLetterContainerName"] == "deadLetterContainerName"


def test_defender_permission_module_grants_ti_readwrite_all_by_value() -> None:
    """The one file checkov skips: parsed and checked here instead."""
    doc = bicep("modules/defender-permission.bicep")
    assert "microsoftGraphV1" in doc["extensions"]
    config = json.loads((BICEP_DIR / "bicepconfig.json").read_text())
    assert config["extensions"]["microsoftGraphV1"].startswith(
        "br:mcr.microsoft.com/bicep/extensions/microsoftgraph/v1.0:"
    )
    sp = doc["resources"]["defenderSp"]
    assert (sp["type"], sp["api_version"], sp["existing"]) == ("Microsoft.Graph/servicePrincipals", "v1.0", True)
    assert sp["config"]["appId"] == "defenderAppId"
    assert bicep_param_default(doc, "defenderAppId") == DEFENDER_APP_ID
    assert bicep_param_default(doc, "appRoleValue") == "Ti.ReadWrite.All"
    (grant,) = resources_of_type(doc, "Microsoft.Graph/appRoleAssignedTo").values()
    cfg = grant["config"]
    assert render(cfg["resourceId"]) == "defenderSp.id"
    assert render(cfg["appRoleId"]) == "filter(defenderSp.appRoles, role => role.value == appRoleValue)[0].id"
    assert cfg["principalId"] == "principalId"
    mod = main()["modules"]["defenderPermission"]
    assert mod["config"]["condition"] == "grantDefenderPermission"
    assert bicep_param_default(main(), "grantDefenderPermission") is True
    assert render(mod["config"]["config"]["params"]["principalId"]) == "identity.outputs.principalId"


def test_checkov_skips_only_the_graph_modules_and_gives_a_reason_for_every_check() -> None:
    lines = (REPO / ".checkov.yaml").read_text().splitlines()
    section = None
    skipped_paths, reasons_missing = [], []
    for i, line in enumerate(lines):
        if line and not line.startswith((" ", "#")):
            section = line.split(":")[0]
            continue
        entry = line.strip()
        if not entry.startswith("- "):
            continue
        if section == "skip-path":
            skipped_paths.append(entry[2:].strip())
        if section == "skip-check":
            check, _, comment = entry[2:].partition("#")
            # A reason: a trailing comment and a comment block above the group.
            above = next(x.strip() for x in reversed(lines[:i]) if not x.strip().startswith("- CKV"))
            if not comment.strip() or not above.startswith("#"):
                reasons_missing.append(check.strip())
    # Graph-only modules (the Defender permission; [entra] the app registration and its grants).
    assert skipped_paths == [
        "infra/bicep/modules/defender-permission.bicep",
        "infra/bicep/modules/entra-app.bicep",
        "infra/bicep/modules/entra-callers.bicep",
    ]
    assert reasons_missing == []


def test_outputs_name_the_app_containers_and_identity() -> None:
    outputs = main()["outputs"]
    assert {
        "functionAppName",
        "functionAppUrl",
        "indicatorsContainerName",
        "reportsContainerName",
        "lockContainerName",
        "deadLetterContainerName",
        "jobsContainerName",
        "jobsQueueName",
        "jobsPoisonQueueName",
        "identityClientId",
        "identityPrincipalId",
    } <= set(outputs)
    assert render(outputs["identityClientId"]["value"]) == "identity.outputs.clientId"
    assert render(outputs["identityPrincipalId"]["value"]) == "identity.outputs.principalId"
