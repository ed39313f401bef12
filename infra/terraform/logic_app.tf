# HTTP_AUTH=entra, optional: a Consumption Logic App that calls the importer with its system-assigned identity
# (no key anywhere), granted Indicators.Import. Its workflow is infra/logicapp/import-indicators.workflow.json,
# the same file Bicep loads (loadJsonContent): its parameters, trigger and actions become the workflow's here.
# Once a day one HTTP action posts two sample indicators (dryRun=true unless logic_app_dry_run = false) with
# ManagedServiceIdentity authentication and the asynchronous pattern left on, so a 202 is polled on its
# Location with the same identity's token.

locals {
  deploy_logic_app = var.deploy_logic_app && local.create_app_registration
  workflow         = jsondecode(file("${path.module}/../logicapp/import-indicators.workflow.json"))
}

resource "azurerm_logic_app_workflow" "import" {
  count               = local.deploy_logic_app ? 1 : 0
  name                = local.entra_names.logic_app
  resource_group_name = data.azurerm_resource_group.main.name
  location            = local.location
  tags                = var.tags

  identity {
    type = "SystemAssigned"
  }

  workflow_parameters = { for name, definition in local.workflow.parameters : name => jsonencode(definition) }
  parameters = {
    importUrl = "https://${azurerm_function_app_flex_consumption.main.default_hostname}/api/indicators/import"
    audience  = local.api_identifier_uri
    dryRun    = var.logic_app_dry_run ? "true" : "false"
  }
}

resource "azurerm_logic_app_trigger_custom" "import" {
  for_each     = { for name, trigger in local.workflow.triggers : name => trigger if local.deploy_logic_app }
  name         = each.key
  logic_app_id = azurerm_logic_app_workflow.import[0].id
  body         = jsonencode(each.value)
}

resource "azurerm_logic_app_action_custom" "import" {
  for_each     = { for name, action in local.workflow.actions : name => action if local.deploy_logic_app }
  name         = each.key
  logic_app_id = azurerm_logic_app_workflow.import[0].id
  body         = jsonencode(each.value)
}

resource "azuread_app_role_assignment" "logic_app" {
  count               = local.deploy_logic_app ? 1 : 0
  app_role_id         = local.app_roles.import.id
  principal_object_id = azurerm_logic_app_workflow.import[0].identity[0].principal_id
  resource_object_id  = azuread_service_principal.api[0].object_id
}

output "logic_app_principal_id" {
  description = "Principal id of the sample Logic App's identity (empty when it is not deployed)."
  value       = local.deploy_logic_app ? azurerm_logic_app_workflow.import[0].identity[0].principal_id : ""
}
