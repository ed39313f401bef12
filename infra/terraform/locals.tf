locals {
  location = coalesce(var.location, data.azurerm_resource_group.main.location)

  # Same names as infra/bicep/main.bicep.
  names = {
    identity      = "id-${var.base_name}"
    host_storage  = "st${var.base_name}host"
    data_storage  = "st${var.base_name}data"
    log_analytics = "log-${var.base_name}"
    app_insights  = "appi-${var.base_name}"
    plan          = "plan-${var.base_name}"
    function_app  = "func-${var.base_name}"
    system_topic  = "evgt-${var.base_name}"
  }
  deployment_container_name = "app-package-${local.names.function_app}"

  # The queue trigger's poison queue: the host's own naming rule.
  jobs_poison_queue_name = "${var.jobs_queue_name}-poison"

  # CONTRACT.md "Function names": the Event Grid subscription targets this function (P4).
  blob_function_name = "import_dropped_file"

  # Every contract setting, each overridable by its variable (CONTRACT.md "Settings").
  contract_settings = {
    DEFENDER_API_URL        = var.defender_api_url
    DEFENDER_TOKEN_SCOPE    = var.defender_token_scope
    AZURE_CLIENT_ID         = azurerm_user_assigned_identity.app.client_id
    INDICATORS_CONTAINER    = var.indicators_container_name
    REPORTS_CONTAINER       = var.reports_container_name
    DEFAULT_ACTION          = var.default_action
    DEFAULT_SEVERITY        = var.default_severity
    DEFAULT_EXPIRATION_DAYS = tostring(var.default_expiration_days)
    EXPIRATION_DAYS_BY_TYPE = var.expiration_days_by_type
    DEFAULT_TITLE           = var.default_title
    DEFAULT_DESCRIPTION     = var.default_description
    DEFAULT_RBAC_GROUPS     = var.default_rbac_groups
    BATCH_SIZE              = tostring(var.batch_size)
    MAX_CALLS_PER_MINUTE    = tostring(var.max_calls_per_minute)

    # List and BatchDelete pacing, both of Defender's windows (defender-api.md §2).
    LIST_CALLS_PER_MINUTE         = tostring(var.list_calls_per_minute)
    LIST_CALLS_PER_HOUR           = tostring(var.list_calls_per_hour)
    BATCH_DELETE_CALLS_PER_MINUTE = tostring(var.batch_delete_calls_per_minute)
    BATCH_DELETE_CALLS_PER_HOUR   = tostring(var.batch_delete_calls_per_hour)

    DRY_RUN                          = var.dry_run ? "true" : "false"
    MAX_HTTP_BODY_BYTES              = tostring(var.max_http_body_bytes)
    MAX_HTTP_INDICATORS              = tostring(var.max_http_indicators)
    MAX_TENANT_INDICATORS            = tostring(var.max_tenant_indicators)
    CAPACITY_RESERVE                 = tostring(var.capacity_reserve)
    TENANT_REFRESH_MINUTES           = tostring(var.tenant_refresh_minutes)
    STATE_CONTAINER                  = var.state_container_name
    MAX_VALUE_LENGTH                 = tostring(var.max_value_length)
    DEFENDER_REQUEST_TIMEOUT_SECONDS = tostring(var.defender_request_timeout_seconds)
    MAX_GZIP_BYTES                   = tostring(var.max_gzip_bytes)
    MAX_GZIP_RATIO                   = tostring(var.max_gzip_ratio)
    DUPLICATE_INDEX_MAX_MB           = tostring(var.duplicate_index_max_mb)
    JOBS_QUEUE                       = var.jobs_queue_name
    JOBS_CONTAINER                   = var.jobs_container_name
    JOB_RESULT_DAYS                  = tostring(var.job_result_days)
    HTTP_SYNC_SECONDS                = tostring(var.http_sync_seconds)
    JOB_RETRY_SCHEDULE_MINUTES       = var.job_retry_schedule_minutes
    JOB_RETRY_MAX_HOURS              = tostring(var.job_retry_max_hours)
    ACCESS_DENIED_RETRY_HOURS        = tostring(var.access_denied_retry_hours)
    DRAIN_MAX_JOBS                   = tostring(var.drain_max_jobs)
    DRAIN_MAX_SECONDS                = tostring(var.drain_max_seconds)
    COALESCE_WINDOW_SECONDS          = tostring(var.coalesce_window_seconds)
  }

  # Identity-based connections: every one names the credential and the identity's client id, or
  # the host falls back to connection strings (azure-functions-conventions.md, P10, convention 24).
  platform_settings = {
    # An explicit empty value keeps the provider from writing a key-based AzureWebJobsStorage
    # string next to the identity settings (azure-functions-conventions.md, P9).
    AzureWebJobsStorage                       = ""
    AzureWebJobsStorage__credential           = "managedidentity"
    AzureWebJobsStorage__clientId             = azurerm_user_assigned_identity.app.client_id
    AzureWebJobsStorage__blobServiceUri       = azurerm_storage_account.host.primary_blob_endpoint
    AzureWebJobsStorage__queueServiceUri      = azurerm_storage_account.host.primary_queue_endpoint
    IndicatorStorage__credential              = "managedidentity"
    IndicatorStorage__clientId                = azurerm_user_assigned_identity.app.client_id
    IndicatorStorage__blobServiceUri          = azurerm_storage_account.data.primary_blob_endpoint
    IndicatorStorage__queueServiceUri         = azurerm_storage_account.data.primary_queue_endpoint
    LOCK_CONTAINER                            = var.lock_container_name
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING = "Authorization=AAD;ClientId=${azurerm_user_assigned_identity.app.client_id}"
  }

  cloud_settings = var.azure_authority_host == "" ? {} : { AZURE_AUTHORITY_HOST = var.azure_authority_host }

  app_settings = merge(local.platform_settings, local.contract_settings, local.cloud_settings, local.http_auth_settings)
}
