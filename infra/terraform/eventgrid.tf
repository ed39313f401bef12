# The Event Grid system topic on the data account (only one per source is allowed, P3) and, in the
# second step after the code is deployed, the subscription of the blobs-extension webhook of
# `import_dropped_file` (azure-functions-conventions.md, P2 and "Event Grid subscription wiring").
# infra/scripts/create-event-subscription.sh creates the same subscription with the Azure CLI.

resource "azurerm_eventgrid_system_topic" "data" {
  name                = local.names.system_topic
  resource_group_name = data.azurerm_resource_group.main.name
  location            = local.location
  source_resource_id  = azurerm_storage_account.data.id
  topic_type          = "Microsoft.Storage.StorageAccounts"
  tags                = var.tags

  # Dead-lettering authenticates with the app's identity (Blob Data Contributor on the data account).
  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.app.id]
  }
}

# The blobs_extension system key exists only once the code with the Event Grid blob trigger runs.
data "azurerm_function_app_host_keys" "main" {
  count               = var.create_event_subscription ? 1 : 0
  name                = azurerm_function_app_flex_consumption.main.name
  resource_group_name = data.azurerm_resource_group.main.name
}

resource "azurerm_eventgrid_system_topic_event_subscription" "import_dropped_file" {
  count               = var.create_event_subscription ? 1 : 0
  name                = "import-dropped-file"
  system_topic        = azurerm_eventgrid_system_topic.data.name
  resource_group_name = data.azurerm_resource_group.main.name

  event_delivery_schema = "EventGridSchema"

  # WebHook to the blobs extension, not azure_function_endpoint (that targets Event Grid triggers; P4).
  # The key is a sensitive attribute and ends up in the state: keep the state in a protected backend.
  webhook_endpoint {
    url                               = "https://${azurerm_function_app_flex_consumption.main.default_hostname}/runtime/webhooks/blobs?functionName=Host.Functions.${local.blob_function_name}&code=${data.azurerm_function_app_host_keys.main[0].blobs_extension_key}"
    max_events_per_batch              = 1
    preferred_batch_size_in_kilobytes = 64
  }

  included_event_types = ["Microsoft.Storage.BlobCreated"]

  # Only the watched container: reports go elsewhere and never re-trigger (convention 8).
  subject_filter {
    subject_begins_with = "/blobServices/default/containers/${var.indicators_container_name}/"
  }

  # Skips the empty CreateFile event of hierarchical-namespace accounts.
  advanced_filter {
    string_in {
      key    = "data.api"
      values = ["PutBlob", "PutBlockList", "FlushWithClose", "CopyBlob"]
    }
  }

  retry_policy {
    max_delivery_attempts = var.event_max_delivery_attempts
    event_time_to_live    = var.event_time_to_live_in_minutes
  }

  dead_letter_identity {
    type                   = "UserAssigned"
    user_assigned_identity = azurerm_user_assigned_identity.app.id
  }

  storage_blob_dead_letter_destination {
    storage_account_id          = azurerm_storage_account.data.id
    storage_blob_container_name = azurerm_storage_container.dead_letter.name
  }

  depends_on = [azurerm_role_assignment.data_blob_contributor]
}
