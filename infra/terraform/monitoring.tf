# Log Analytics and workspace-based Application Insights, both refusing key-based ingestion: the app
# sends telemetry with its managed identity (azure-functions-conventions.md, convention 23).
resource "azurerm_log_analytics_workspace" "main" {
  name                         = local.names.log_analytics
  resource_group_name          = data.azurerm_resource_group.main.name
  location                     = local.location
  sku                          = "PerGB2018"
  retention_in_days            = var.log_retention_in_days
  local_authentication_enabled = false
  tags                         = var.tags
}

resource "azurerm_application_insights" "main" {
  name                = local.names.app_insights
  resource_group_name = data.azurerm_resource_group.main.name
  location            = local.location
  application_type    = "web"
  workspace_id        = azurerm_log_analytics_workspace.main.id
  # Telemetry must carry an Entra token (APPLICATIONINSIGHTS_AUTHENTICATION_STRING on the app).
  local_authentication_disabled = true
  tags                          = var.tags
}
