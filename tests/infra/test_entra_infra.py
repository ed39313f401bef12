"""HTTP_AUTH=entra in both IaC stacks, read statically (no Bicep compiler or Terraform runs here): the app
registration with its two app roles and identifier URI, the caller grants, the optional Azure CLI
pre-authorisation, App Service Authentication that leaves the Event Grid blob webhook alone, and the sample
Logic App whose one workflow file both stacks deploy (CONTRACT.md "HTTP API" [entra]; the Graph modules are the
ones checkov cannot parse, .checkov.yaml skip-path)."""

from __future__ import annotations

import json

import pytest

from shared.app import auth
from shared.app.http_body import check_body
from tests.infra.iac import BICEP_DIR, INFRA, REPO, TF_DIR, bicep, bicep_param_default, render, terraform

WORKFLOW = INFRA / "logicapp" / "import-indicators.workflow.json"
IMPORT_ROLE_ID = "a792c963-aa74-469d-b291-a01f5211bb25"
READ_ROLE_ID = "d4b5e528-c62d-408a-adf0-1351e58da8ff"
SCOPE_ID = "6f1f29c0-0527-4474-9ce5-3315ee909826"
AZURE_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
BLOB_WEBHOOK = "/runtime/webhooks/blobs"


def main() -> dict:
    return bicep("main.bicep")


def module(name: str) -> dict:
    return main()["modules"][name]["config"]


def resources(rtype: str) -> dict:
    return terraform()["resource"].get(rtype, {})


def tf_locals() -> dict:
    return terraform()["locals"]


def workflow() -> dict:
    return json.loads(WORKFLOW.read_text())


# --------------------------------------------------------------------------------------- opt-in, off by default


@pytest.mark.parametrize(
    ("bicep_param", "tf_variable", "default"),
    [
        ("httpAuth", "http_auth", "function-key"),
        ("httpAuthAudience", "http_auth_audience", ""),
        ("httpAuthAuthorityHost", "http_auth_authority_host", ""),
        ("httpAuthImportPrincipalIds", "http_auth_import_principal_ids", []),
        ("httpAuthReadPrincipalIds", "http_auth_read_principal_ids", []),
        ("httpAuthPreauthorizeAzureCli", "http_auth_preauthorize_azure_cli", False),
        ("enableAppServiceAuthentication", "enable_app_service_authentication", False),
        ("deployLogicApp", "deploy_logic_app", False),
        ("logicAppDryRun", "logic_app_dry_run", True),
    ],
)
def test_entra_is_opt_in_with_the_same_defaults(bicep_param, tf_variable, default):
    assert bicep_param_default(main(), bicep_param) == default
    assert terraform()["variable"][tf_variable]["default"] == default


def test_http_auth_takes_the_two_modes_only():
    (allowed,) = [d for d in main()["parameters"]["httpAuth"]["decorators"] if d["type"] == "allowed"]
    assert allowed["argument"] == list(auth.HTTP_AUTH_MODES)
    assert '["function-key", "entra"]' in str(terraform()["variable"]["http_auth"]["validation"])


def test_the_registration_is_created_only_for_entra_without_an_audience_given():
    variables = main()["variables"]
    assert render(variables["entraOn"]["value"]) == "httpAuth == entra"
    assert render(variables["createAppRegistration"]["value"]) == "and(entraOn, empty(httpAuthAudience))"
    for name in ("entraApp", "entraCallers"):
        assert module(name)["condition"] == "createAppRegistration"
    assert tf_locals()["create_app_registration"] == '${local.http_auth_entra && var.http_auth_audience == ""}'
    for rtype, name in [("azuread_application", "api"), ("azuread_application_identifier_uri", "api"),
                        ("azuread_service_principal", "api")]:  # fmt: skip
        assert resources(rtype)[name]["count"] == "${local.create_app_registration ? 1 : 0}"


# --------------------------------------------------------------------------------------- the app registration


def test_bicep_registration_has_both_roles_for_apps_and_users_and_an_identifier_uri():
    doc = bicep("modules/entra-app.bicep")
    assert "microsoftGraphV1" in doc["extensions"]
    app = doc["resources"]["api"]
    assert (app["type"], app["api_version"]) == ("Microsoft.Graph/applications", "v1.0")
    cfg = app["config"]
    assert cfg["signInAudience"] == "AzureADMyOrg"
    assert cfg["identifierUris"] == ["identifierUri"]
    assert doc["variables"]["identifierUri"]["value"] == "api://${tenant().tenantId}/${uniqueName}"
    variables = {k: v["value"] for k, v in doc["variables"].items()}
    roles = {variables[r["id"]]: r for r in cfg["appRoles"]}
    assert set(roles) == {IMPORT_ROLE_ID, READ_ROLE_ID}
    assert roles[IMPORT_ROLE_ID]["value"] == auth.IMPORT_ROLE and roles[READ_ROLE_ID]["value"] == auth.READ_ROLE
    for role in roles.values():
        assert role["allowedMemberTypes"] == ["Application", "User"] and role["isEnabled"] is True
    (scope,) = cfg["api"]["oauth2PermissionScopes"]
    assert (variables[scope["id"]], scope["value"], scope["type"]) == (SCOPE_ID, "user_impersonation", "User")
    assert cfg["api"]["requestedAccessTokenVersion"] == 1
    assert render(cfg["api"]["preAuthorizedApplications"]) == (
        "preAuthorizeAzureCli ? azureCliPreAuthorized : []"
    )
    (cli,) = variables["azureCliPreAuthorized"]
    assert variables[cli["appId"]] == AZURE_CLI and cli["delegatedPermissionIds"] == ["userImpersonationScopeId"]
    sp = doc["resources"]["apiSp"]["config"]
    assert render(sp["appId"]) == "api.appId" and sp["appRoleAssignmentRequired"] is True
    assert doc["outputs"]["audience"]["value"] == "${identifierUri},${api.appId}"
    assert render(module("entraApp")["config"]["params"]["uniqueName"]) == "entraNames.appRegistration"
    assert main()["variables"]["entraNames"]["value"]["appRegistration"] == "ioc-importer-${baseName}"


def test_terraform_registration_matches_bicep():
    app = resources("azuread_application")["api"]
    assert app["sign_in_audience"] == "AzureADMyOrg"
    assert app["lifecycle"][0]["ignore_changes"] == ["identifier_uris"]
    roles = tf_locals()["app_roles"]
    assert {r["id"]: r["value"] for r in roles.values()} == {IMPORT_ROLE_ID: auth.IMPORT_ROLE,
                                                             READ_ROLE_ID: auth.READ_ROLE}  # fmt: skip
    (dynamic,) = app["dynamic"]
    (content,) = dynamic["app_role"]["content"]
    assert dynamic["app_role"]["for_each"] == "${local.app_roles}"
    assert content["allowed_member_types"] == ["Application", "User"] and content["enabled"] is True
    (api,) = app["api"]
    assert api["requested_access_token_version"] == 1
    (scope,) = api["oauth2_permission_scope"]
    assert scope["id"] == "${local.user_impersonation_scope_id}"
    assert tf_locals()["user_impersonation_scope_id"] == SCOPE_ID
    assert (scope["value"], scope["type"]) == ("user_impersonation", "User")
    uri = resources("azuread_application_identifier_uri")["api"]
    assert uri["application_id"] == "${azuread_application.api[0].id}"
    assert uri["identifier_uri"] == "${local.api_identifier_uri}"
    assert tf_locals()["api_identifier_uri"] == (
        "api://${data.azuread_client_config.current.tenant_id}/${local.entra_names.app_registration}"
    )
    assert tf_locals()["entra_names"]["app_registration"] == "ioc-importer-${var.base_name}"
    sp = resources("azuread_service_principal")["api"]
    assert sp["client_id"] == "${azuread_application.api[0].client_id}" and sp["app_role_assignment_required"] is True
    pre = resources("azuread_application_pre_authorized")["azure_cli"]
    assert pre["count"] == "${local.create_app_registration && var.http_auth_preauthorize_azure_cli ? 1 : 0}"
    assert pre["authorized_client_id"] == "${local.azure_cli_client_id}"
    assert tf_locals()["azure_cli_client_id"] == AZURE_CLI
    assert pre["permission_ids"] == ["${local.user_impersonation_scope_id}"]
    assert tf_locals()["http_auth_audience"] == (
        '${local.create_app_registration ? "${local.api_identifier_uri},${azuread_application.api[0].client_id}"'
        " : var.http_auth_audience}"
    )


# --------------------------------------------------------------------------------------- callers


def test_callers_are_granted_indicators_import_in_both():
    doc = bicep("modules/entra-callers.bicep")
    grants = {n: r for n, r in doc["resources"].items() if r["type"] == "Microsoft.Graph/appRoleAssignedTo"}
    assert set(grants) == {"importers", "readers"}
    importers = grants["importers"]["config"]
    assert importers["loop_type"]["detail"] == {"item_name": "principalId", "array_name": "importPrincipalIds"}
    assert importers["config"] == {"resourceId": "servicePrincipalId", "appRoleId": "importRoleId",
                                   "principalId": "principalId"}  # fmt: skip
    assert grants["readers"]["config"]["config"]["appRoleId"] == "readRoleId"
    params = module("entraCallers")["config"]["params"]
    # The list parameter, plus the sample Logic App's identity when it is deployed.
    rendered = render(params["importPrincipalIds"])
    assert rendered.startswith("concat(httpAuthImportPrincipalIds, deployLogicApp ? [") and rendered.endswith("] : [])")
    added = params["importPrincipalIds"]["function"]["parameters"]["arg_2"]["operator"]["operands"]
    assert [render(x) for x in added["true_value"]] == ["logicApp.outputs.principalId"] and added["false_value"] == []
    assert params["readPrincipalIds"] == "httpAuthReadPrincipalIds"
    importers_tf = resources("azuread_app_role_assignment")["importers"]
    assert importers_tf["for_each"] == (
        "${local.create_app_registration ? toset(var.http_auth_import_principal_ids) : toset([])}"
    )
    assert importers_tf["app_role_id"] == "${local.app_roles.import.id}"
    assert importers_tf["resource_object_id"] == "${azuread_service_principal.api[0].object_id}"
    assert resources("azuread_app_role_assignment")["readers"]["app_role_id"] == "${local.app_roles.read.id}"
    logic = resources("azuread_app_role_assignment")["logic_app"]
    assert logic["app_role_id"] == "${local.app_roles.import.id}"
    assert logic["principal_object_id"] == "${azurerm_logic_app_workflow.import[0].identity[0].principal_id}"


# --------------------------------------------------------------------------------------- App Service Authentication


def test_app_service_authentication_excludes_the_blob_webhook_in_both():
    """Event Grid posts to /runtime/webhooks/blobs with the blobs_extension key and no token: Easy Auth in front
    of it would refuse every BlobCreated event (MicrosoftDocs/azure-docs #99036, Azure/azure-functions-host #4674)."""
    doc = bicep("modules/easy-auth.bicep")
    (config,) = [r for r in doc["resources"].values() if r["type"] == "Microsoft.Web/sites/config"]
    assert config["config"]["name"] == "authsettingsV2"
    props = config["config"]["properties"]
    validation = props["globalValidation"]
    assert validation["requireAuthentication"] is True and validation["unauthenticatedClientAction"] == "Return401"
    assert BLOB_WEBHOOK in validation["excludedPaths"] and "/api/health" in validation["excludedPaths"]
    aad = props["identityProviders"]["azureActiveDirectory"]
    assert aad["enabled"] is True and aad["registration"]["openIdIssuer"] == "${authorityHost}/${tenantId}/v2.0"
    assert aad["validation"]["allowedAudiences"] == "allowedAudiences"
    assert render(module("easyAuth")["condition"]) == "and(enableAppServiceAuthentication, createAppRegistration)"

    assert tf_locals()["easy_auth_excluded_paths"] == [BLOB_WEBHOOK, "/api/health"]
    assert tf_locals()["easy_auth_enabled"] == (
        "${var.enable_app_service_authentication && local.create_app_registration}"
    )
    app = resources("azurerm_function_app_flex_consumption")["main"]
    (dynamic,) = [d for d in app["dynamic"] if "auth_settings_v2" in d]
    block = dynamic["auth_settings_v2"]
    assert block["for_each"] == "${local.easy_auth_enabled ? [1] : []}"
    (content,) = block["content"]
    assert content["excluded_paths"] == "${local.easy_auth_excluded_paths}"
    assert (content["require_authentication"], content["unauthenticated_action"]) == (True, "Return401")
    (aad_tf,) = content["active_directory_v2"]
    assert aad_tf["client_id"] == "${azuread_application.api[0].client_id}"


def test_no_other_easy_auth_anywhere():
    """Only the optional, webhook-excluding one: no other auth settings in either stack."""
    for path in BICEP_DIR.rglob("*.bicep"):
        text = path.read_text()
        if path.name != "easy-auth.bicep":
            assert "'authsettings" not in text.lower(), path  # the config resource's name
    for path in TF_DIR.glob("*.tf"):
        text = path.read_text()
        assert "auth_settings {" not in text and ("auth_settings_v2" not in text or path.name == "functionapp.tf")


# --------------------------------------------------------------------------------------- the Logic App


def test_workflow_file_posts_a_defender_body_with_its_managed_identity_and_keeps_the_async_pattern():
    doc = workflow()
    assert set(doc["parameters"]) == {"importUrl", "audience", "dryRun"}
    assert all(p["type"] == "String" for p in doc["parameters"].values())  # Terraform passes strings
    (trigger,) = doc["triggers"].values()
    assert trigger["type"] == "Recurrence"
    http = [a for a in doc["actions"].values() if a["type"] == "Http"]
    assert len(http) == 1
    action = http[0]
    inputs = action["inputs"]
    assert inputs["method"] == "POST"
    assert inputs["uri"] == "@parameters('importUrl')"
    assert inputs["authentication"] == {"type": "ManagedServiceIdentity", "audience": "@parameters('audience')"}
    assert inputs["queries"] == {"dryRun": "@parameters('dryRun')"}
    # The asynchronous request-reply pattern stays on: a 202 is polled on Location (with the same identity).
    assert "DisableAsyncPattern" not in json.dumps(action)
    assert "operationOptions" not in action
    # Nothing secret in the file: no key, no code= query.
    text = WORKFLOW.read_text()
    assert "code" not in inputs["queries"] and "x-functions-key" not in text.lower()
    # A Defender-shaped body the app accepts as it is (the app's own body checks).
    body = json.dumps(inputs["body"]).encode()
    parsed = check_body(inputs["headers"], body, max_bytes=20971520, max_indicators=15000)
    assert parsed.count == len(inputs["body"]["Indicators"]) == 2
    assert all("indicatorValue" in i for i in inputs["body"]["Indicators"])


def test_both_stacks_deploy_that_one_workflow_file():
    doc = bicep("modules/logic-app.bicep")
    (wf,) = [r for r in doc["resources"].values() if r["type"] == "Microsoft.Logic/workflows"]
    props = wf["config"]["properties"]
    path = props["definition"]["function"]["parameters"]["file_path"]
    assert props["definition"]["function"]["type"] == "load_json_content"
    assert (BICEP_DIR / "modules" / path).resolve() == WORKFLOW
    assert wf["config"]["identity"] == {"type": "SystemAssigned"}
    assert set(props["parameters"]) == set(workflow()["parameters"])
    params = module("logicApp")["config"]["params"]
    assert params["importUrl"] == "https://${functionApp.outputs.defaultHostName}/api/indicators/import"
    assert render(params["audience"]) == "entraApp.outputs.identifierUri"
    assert render(module("logicApp")["condition"]) == "and(deployLogicApp, createAppRegistration)"

    assert tf_locals()["workflow"] == (
        '${jsondecode(file("${path.module}/../logicapp/import-indicators.workflow.json"))}'
    )
    assert (TF_DIR / ".." / "logicapp" / "import-indicators.workflow.json").resolve() == WORKFLOW
    la = resources("azurerm_logic_app_workflow")["import"]
    assert la["identity"] == [{"type": "SystemAssigned"}]
    assert la["parameters"]["importUrl"] == (
        "https://${azurerm_function_app_flex_consumption.main.default_hostname}/api/indicators/import"
    )
    assert la["parameters"]["audience"] == "${local.api_identifier_uri}"
    assert set(la["parameters"]) == set(workflow()["parameters"])
    assert "local.workflow.parameters" in la["workflow_parameters"]
    assert "local.workflow.actions" in resources("azurerm_logic_app_action_custom")["import"]["for_each"]
    assert "local.workflow.triggers" in resources("azurerm_logic_app_trigger_custom")["import"]["for_each"]
    assert bicep("main.bicep")["variables"]["entraNames"]["value"]["logicApp"] == "logic-${baseName}-import"
    assert tf_locals()["entra_names"]["logic_app"] == "logic-${var.base_name}-import"


def test_readme_lists_the_graph_permissions_the_deployer_needs():
    text = (INFRA / "README.md").read_text()
    for needed in ("Application.ReadWrite.OwnedBy", "Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All",
                   "Application.Read.All", "Cloud Application Administrator"):  # fmt: skip
        assert needed in text, needed
    assert "04b07795-8ddb-461a-bbee-02f9e1bf7b46" in (REPO / "README.md").read_text() + text
