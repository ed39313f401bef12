output "function_app_name" {
  description = "Function app name (for publishing and keys)."
  value       = azurerm_function_app_flex_consumption.main.name
}

output "function_app_url" {
  description = "Base URL of the function app."
  value       = "https://${azurerm_function_app_flex_consumption.main.default_hostname}"
}

output "resource_group_name" {
  description = "Resource group the app lives in."
  value       = data.azurerm_resource_group.main.name
}

output "data_storage_account_name" {
  description = "Data storage account (indicators, reports, locks, jobs, dead letters)."
  value       = azurerm_storage_account.data.name
}

output "host_storage_account_name" {
  description = "Host storage account (AzureWebJobsStorage, deployment package)."
  value       = azurerm_storage_account.host.name
}

output "system_topic_name" {
  description = "Event Grid system topic on the data account."
  value       = azurerm_eventgrid_system_topic.data.name
}

output "indicators_container_name" {
  description = "Container watched for dropped files."
  value       = azurerm_storage_container.indicators.name
}

output "reports_container_name" {
  description = "Container that receives reports."
  value       = azurerm_storage_container.reports.name
}

output "lock_container_name" {
  description = "Container of the tenant lock blob."
  value       = azurerm_storage_container.locks.name
}

output "state_container_name" {
  description = "Container of the tenant mirror."
  value       = azurerm_storage_container.state.name
}

output "dead_letter_container_name" {
  description = "Container of Event Grid's dead letters."
  value       = azurerm_storage_container.dead_letter.name
}

output "jobs_container_name" {
  description = "Container of the import jobs."
  value       = azurerm_storage_container.jobs.name
}

output "jobs_queue_name" {
  description = "Queue of the import-job doorbells."
  value       = azurerm_storage_queue.jobs.name
}

output "jobs_poison_queue_name" {
  description = "Poison queue of the import-job doorbells (alert when it is not empty)."
  value       = azurerm_storage_queue.jobs_poison.name
}

output "identity_client_id" {
  description = "Client id of the app's user-assigned identity (AZURE_CLIENT_ID)."
  value       = azurerm_user_assigned_identity.app.client_id
}

output "identity_principal_id" {
  description = "Principal (object) id of the app's identity, for grant-defender-permission.sh."
  value       = azurerm_user_assigned_identity.app.principal_id
}
