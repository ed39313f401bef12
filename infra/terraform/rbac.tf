# Least-privilege data-plane roles for the app's identity, each on exactly the scope that needs it
# (azure-functions-conventions.md, "Role assignments"). Management roles such as Storage Account
# Contributor are not needed with the Event Grid blob source and are not granted.

locals {
  # Built-in role definition ids (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
  role_ids = {
    storage_blob_data_owner        = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b" # Storage Blob Data Owner
    storage_blob_data_contributor  = "ba92f5b4-2d11-453d-a403-e96b0029c9fe" # Storage Blob Data Contributor
    storage_queue_data_contributor = "974c5e8b-45b9-4653-ba55-5f855dd0fb88" # Storage Queue Data Contributor
    monitoring_metrics_publisher   = "3913510d-42f4-4e42-8a64-420c390055eb" # Monitoring Metrics Publisher
  }
  role_definition_prefix = "/subscriptions/${data.azurerm_client_config.current.subscription_id}/providers/Microsoft.Authorization/roleDefinitions"
}

data "azurerm_client_config" "current" {}

# Host storage: keys, locks and the deployment package (blob); the Event Grid blob trigger's
# internal queue (queue). Names are deterministic, like Bicep's guid(scope, principal, role).
resource "azurerm_role_assignment" "host_blob_owner" {
  name               = uuidv5("url", "${azurerm_storage_account.host.id}/${azurerm_user_assigned_identity.app.principal_id}/${local.role_ids.storage_blob_data_owner}")
  scope              = azurerm_storage_account.host.id
  role_definition_id = "${local.role_definition_prefix}/${local.role_ids.storage_blob_data_owner}"
  principal_id       = azurerm_user_assigned_identity.app.principal_id
  principal_type     = "ServicePrincipal"
}

resource "azurerm_role_assignment" "host_queue_contributor" {
  name               = uuidv5("url", "${azurerm_storage_account.host.id}/${azurerm_user_assigned_identity.app.principal_id}/${local.role_ids.storage_queue_data_contributor}")
  scope              = azurerm_storage_account.host.id
  role_definition_id = "${local.role_definition_prefix}/${local.role_ids.storage_queue_data_contributor}"
  principal_id       = azurerm_user_assigned_identity.app.principal_id
  principal_type     = "ServicePrincipal"
}

# Data storage: read dropped files, write reports, lease the lock blob, dead-letter events, keep the
# job records (blob); the jobs queue (run_import_jobs reads and deletes its doorbells, the app sends
# and re-sends them with a delay, the host moves failed ones to <queue>-poison, creating it if
# needed) and the blob trigger's poison queue on the trigger's account (queue, P5/P6). One Storage
# Queue Data Contributor covers all of it: Reader + Message Processor would not let the app send
# doorbells, Message Sender would not let the trigger receive them, and neither creates queues.
resource "azurerm_role_assignment" "data_blob_contributor" {
  name               = uuidv5("url", "${azurerm_storage_account.data.id}/${azurerm_user_assigned_identity.app.principal_id}/${local.role_ids.storage_blob_data_contributor}")
  scope              = azurerm_storage_account.data.id
  role_definition_id = "${local.role_definition_prefix}/${local.role_ids.storage_blob_data_contributor}"
  principal_id       = azurerm_user_assigned_identity.app.principal_id
  principal_type     = "ServicePrincipal"
}

resource "azurerm_role_assignment" "data_queue_contributor" {
  name               = uuidv5("url", "${azurerm_storage_account.data.id}/${azurerm_user_assigned_identity.app.principal_id}/${local.role_ids.storage_queue_data_contributor}")
  scope              = azurerm_storage_account.data.id
  role_definition_id = "${local.role_definition_prefix}/${local.role_ids.storage_queue_data_contributor}"
  principal_id       = azurerm_user_assigned_identity.app.principal_id
  principal_type     = "ServicePrincipal"
}

# Application Insights with local auth disabled accepts telemetry from this role only.
resource "azurerm_role_assignment" "metrics_publisher" {
  name               = uuidv5("url", "${azurerm_application_insights.main.id}/${azurerm_user_assigned_identity.app.principal_id}/${local.role_ids.monitoring_metrics_publisher}")
  scope              = azurerm_application_insights.main.id
  role_definition_id = "${local.role_definition_prefix}/${local.role_ids.monitoring_metrics_publisher}"
  principal_id       = azurerm_user_assigned_identity.app.principal_id
  principal_type     = "ServicePrincipal"
}
