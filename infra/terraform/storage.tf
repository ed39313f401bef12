# Two storage accounts that accept Microsoft Entra ID only: shared keys off, TLS 1.2, HTTPS only,
# no public blob access (azure-functions-conventions.md, convention 22). "host" carries
# AzureWebJobsStorage and the deployment package; "data" carries the indicators, the reports, the
# tenant lock, the import jobs (container and queue) and Event Grid's dead letters.

resource "azurerm_storage_account" "host" {
  name                              = local.names.host_storage
  resource_group_name               = data.azurerm_resource_group.main.name
  location                          = local.location
  account_kind                      = "StorageV2"
  account_tier                      = "Standard"
  account_replication_type          = var.storage_replication_type
  access_tier                       = "Hot"
  shared_access_key_enabled         = false
  default_to_oauth_authentication   = true
  allow_nested_items_to_be_public   = false
  cross_tenant_replication_enabled  = false
  min_tls_version                   = "TLS1_2"
  https_traffic_only_enabled        = true
  public_network_access_enabled     = true
  infrastructure_encryption_enabled = true
  tags                              = var.tags

  # Flex Consumption without VNet integration reaches storage over public endpoints
  # (azure-functions-conventions.md, convention 34).
  network_rules {
    default_action = "Allow"
    bypass         = ["AzureServices"]
  }

  blob_properties {
    delete_retention_policy {
      days = 7
    }
    container_delete_retention_policy {
      days = 7
    }
  }
}

resource "azurerm_storage_account" "data" {
  name                              = local.names.data_storage
  resource_group_name               = data.azurerm_resource_group.main.name
  location                          = local.location
  account_kind                      = "StorageV2"
  account_tier                      = "Standard"
  account_replication_type          = var.storage_replication_type
  access_tier                       = "Hot"
  shared_access_key_enabled         = false
  default_to_oauth_authentication   = true
  allow_nested_items_to_be_public   = false
  cross_tenant_replication_enabled  = false
  min_tls_version                   = "TLS1_2"
  https_traffic_only_enabled        = true
  public_network_access_enabled     = true
  infrastructure_encryption_enabled = true
  tags                              = var.tags

  # AzureServices keeps Event Grid delivery and dead-lettering working.
  network_rules {
    default_action = "Allow"
    bypass         = ["AzureServices"]
  }

  blob_properties {
    delete_retention_policy {
      days = 7
    }
    container_delete_retention_policy {
      days = 7
    }
  }
}

# Containers are created through Resource Manager (storage_account_id), not the data plane.
resource "azurerm_storage_container" "deployment" {
  name                  = local.deployment_container_name
  storage_account_id    = azurerm_storage_account.host.id
  container_access_type = "private"
}

resource "azurerm_storage_container" "indicators" {
  name                  = var.indicators_container_name
  storage_account_id    = azurerm_storage_account.data.id
  container_access_type = "private"
}

resource "azurerm_storage_container" "reports" {
  name                  = var.reports_container_name
  storage_account_id    = azurerm_storage_account.data.id
  container_access_type = "private"
}

resource "azurerm_storage_container" "locks" {
  name                  = var.lock_container_name
  storage_account_id    = azurerm_storage_account.data.id
  container_access_type = "private"
}

# The tenant mirror: one blob per tenant key, written by the tenant lock's holder (ETag-guarded).
resource "azurerm_storage_container" "state" {
  name                  = var.state_container_name
  storage_account_id    = azurerm_storage_account.data.id
  container_access_type = "private"
}

resource "azurerm_storage_container" "dead_letter" {
  name                  = var.dead_letter_container_name
  storage_account_id    = azurerm_storage_account.data.id
  container_access_type = "private"
}

resource "azurerm_storage_container" "jobs" {
  name                  = var.jobs_container_name
  storage_account_id    = azurerm_storage_account.data.id
  container_access_type = "private"
}

# The doorbells of run_import_jobs, and the poison queue the host moves failed ones to. The host
# creates the poison queue on first use; creating it here gives operators a queue to alert on from
# the start. Through Resource Manager (storage_account_id), like the containers.
resource "azurerm_storage_queue" "jobs" {
  name               = var.jobs_queue_name
  storage_account_id = azurerm_storage_account.data.id
}

resource "azurerm_storage_queue" "jobs_poison" {
  name               = local.jobs_poison_queue_name
  storage_account_id = azurerm_storage_account.data.id
}

# Garbage collection only: every blob of the jobs container goes job_result_days + 1 days after its
# last change. What a status URL answers is the app's business (JOB_RESULT_DAYS).
resource "azurerm_storage_management_policy" "data" {
  storage_account_id = azurerm_storage_account.data.id

  rule {
    name    = "delete-old-import-jobs"
    enabled = true

    filters {
      prefix_match = ["${azurerm_storage_container.jobs.name}/"]
      blob_types   = ["blockBlob", "appendBlob"]
    }

    actions {
      base_blob {
        delete_after_days_since_modification_greater_than = var.job_result_days + 1
      }
    }
  }
}
