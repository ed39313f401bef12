# Grants the app's identity the Ti.ReadWrite.All application role of the WindowsDefenderATP service
# principal, the role id looked up by its value at plan time (defender-api.md §7). The deploying
# principal needs Microsoft Graph AppRoleAssignment.ReadWrite.All and Application.Read.All; teams
# whose deployer cannot grant app roles set grant_defender_permission = false and run
# infra/scripts/grant-defender-permission.sh instead.

locals {
  defender_app_id         = "fc780465-2017-40d4-a0c5-307022471b92" # WindowsDefenderATP, same in every tenant
  defender_app_role_value = "Ti.ReadWrite.All"
}

data "azuread_service_principal" "defender" {
  count     = var.grant_defender_permission ? 1 : 0
  client_id = local.defender_app_id
}

resource "azuread_app_role_assignment" "defender_ti_readwrite" {
  count               = var.grant_defender_permission ? 1 : 0
  app_role_id         = data.azuread_service_principal.defender[0].app_role_ids[local.defender_app_role_value]
  principal_object_id = azurerm_user_assigned_identity.app.principal_id
  resource_object_id  = data.azuread_service_principal.defender[0].object_id
}
