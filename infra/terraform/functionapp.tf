# The Flex Consumption plan and the Linux Python function app. Runtime, memory and scale are
# arguments of the resource (functionAppConfig); no Flex-deprecated setting is set
# (azure-functions-conventions.md, conventions 25, 26 and 31).
resource "azurerm_service_plan" "main" {
  name                = local.names.plan
  resource_group_name = data.azurerm_resource_group.main.name
  location            = local.location
  os_type             = "Linux"
  sku_name            = "FC1"
  tags                = var.tags
}

resource "azurerm_function_app_flex_consumption" "main" {
  name                = local.names.function_app
  resource_group_name = data.azurerm_resource_group.main.name
  location            = local.location
  service_plan_id     = azurerm_service_plan.main.id

  # Deployment package container, read with the user-assigned identity.
  storage_container_type            = "blobContainer"
  storage_container_endpoint        = "${azurerm_storage_account.host.primary_blob_endpoint}${azurerm_storage_container.deployment.name}"
  storage_authentication_type       = "UserAssignedIdentity"
  storage_user_assigned_identity_id = azurerm_user_assigned_identity.app.id

  runtime_name           = "python"
  runtime_version        = var.python_version
  instance_memory_in_mb  = var.instance_memory_mb
  maximum_instance_count = var.maximum_instance_count

  https_only                 = true
  client_certificate_enabled = false # callers (Logic Apps) authenticate with the function key
  # Deployments authenticate with Entra ID; basic (publishing profile) credentials stay off.
  webdeploy_publish_basic_authentication_enabled = false

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.app.id]
  }

  app_settings = local.app_settings

  # [entra] Optional App Service Authentication in front (entra_auth.tf): it must exclude the Event Grid blob
  # webhook (local.easy_auth_excluded_paths); the app validates every token itself anyway.
  dynamic "auth_settings_v2" {
    for_each = local.easy_auth_enabled ? [1] : []
    content {
      auth_enabled           = true
      require_authentication = true
      unauthenticated_action = "Return401"
      excluded_paths         = local.easy_auth_excluded_paths
      require_https          = true

      active_directory_v2 {
        client_id            = azuread_application.api[0].client_id
        tenant_auth_endpoint = "${local.http_auth_authority_host}/${data.azuread_client_config.current.tenant_id}/v2.0/"
        allowed_audiences    = split(",", local.http_auth_audience)
      }

      login {
        token_store_enabled = false
      }
    }
  }

  site_config {
    minimum_tls_version                    = "1.2"
    scm_minimum_tls_version                = "1.2"
    http2_enabled                          = true
    application_insights_connection_string = azurerm_application_insights.main.connection_string
  }

  tags = var.tags

  # The host starts right away: let its storage and telemetry roles exist first (P13).
  depends_on = [
    azurerm_role_assignment.host_blob_owner,
    azurerm_role_assignment.host_queue_contributor,
    azurerm_role_assignment.data_blob_contributor,
    azurerm_role_assignment.data_queue_contributor,
    azurerm_role_assignment.metrics_publisher,
  ]
}
