# The one user-assigned managed identity the app uses for everything: host storage, data storage,
# Application Insights and Defender (azure-functions-conventions.md, convention 21).
resource "azurerm_user_assigned_identity" "app" {
  name                = local.names.identity
  resource_group_name = data.azurerm_resource_group.main.name
  location            = local.location
  tags                = var.tags
}
