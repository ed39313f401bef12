# ---------- Naming and placement ----------

variable "subscription_id" {
  type        = string
  description = "Subscription to deploy into, e.g. 00000000-0000-0000-0000-000000000000. null uses ARM_SUBSCRIPTION_ID or the Azure CLI's current subscription."
  default     = null
}

variable "cloud_environment" {
  type        = string
  description = "Azure cloud for both providers: public, usgovernment (GCC High/DoD) or china."
  default     = "public"

  validation {
    condition     = contains(["public", "usgovernment", "china"], var.cloud_environment)
    error_message = "cloud_environment must be public, usgovernment or china, e.g. \"usgovernment\"."
  }
}

variable "azuread_environment" {
  type        = string
  description = "Cloud for the azuread provider when it differs from cloud_environment, e.g. usgovernmentl5 for DoD; null uses cloud_environment."
  default     = null

  validation {
    condition     = var.azuread_environment == null || contains(["global", "usgovernmentl4", "usgovernmentl5", "china"], coalesce(var.azuread_environment, "global"))
    error_message = "azuread_environment must be global, usgovernmentl4, usgovernmentl5 or china, e.g. \"usgovernmentl5\"."
  }
}

variable "resource_group_name" {
  type        = string
  description = "Existing resource group to deploy into, e.g. rg-ioc-importer."
}

variable "base_name" {
  type        = string
  description = "Short lower-case name every resource name derives from, e.g. iocimp7f3k. Must make the storage and app names globally unique."

  validation {
    condition     = can(regex("^[a-z0-9]{3,16}$", var.base_name))
    error_message = "base_name must be 3-16 lower-case letters or digits, e.g. \"iocimp7f3k\"."
  }
}

variable "location" {
  type        = string
  description = "Azure region, e.g. eastus2; null uses the resource group's. Must offer Flex Consumption (az functionapp list-flexconsumption-locations)."
  default     = null
}

variable "tags" {
  type        = map(string)
  description = "Tags for every resource, e.g. { owner = \"secops\" }."
  default     = {}
}

variable "storage_replication_type" {
  type        = string
  description = "Redundancy of both storage accounts: LRS, ZRS, GRS or GZRS."
  default     = "LRS"

  validation {
    condition     = contains(["LRS", "ZRS", "GRS", "GZRS"], var.storage_replication_type)
    error_message = "storage_replication_type must be LRS, ZRS, GRS or GZRS, e.g. \"ZRS\"."
  }
}

variable "indicators_container_name" {
  type        = string
  description = "Container watched for dropped IOC files (INDICATORS_CONTAINER)."
  default     = "indicators"

  validation {
    condition     = can(regex("^[a-z0-9](-?[a-z0-9])+$", var.indicators_container_name)) && length(var.indicators_container_name) <= 63
    error_message = "A container name is 3-63 lower-case letters, digits and single hyphens, e.g. \"indicators\"."
  }
}

variable "reports_container_name" {
  type        = string
  description = "Container that receives reports (REPORTS_CONTAINER). Never the watched container."
  default     = "indicator-reports"

  validation {
    condition     = can(regex("^[a-z0-9](-?[a-z0-9])+$", var.reports_container_name)) && length(var.reports_container_name) <= 63
    error_message = "A container name is 3-63 lower-case letters, digits and single hyphens, e.g. \"indicator-reports\"."
  }
}

variable "lock_container_name" {
  type        = string
  description = "Container for the tenant lock blob (LOCK_CONTAINER), outside the watched container."
  default     = "indicator-locks"

  validation {
    condition     = can(regex("^[a-z0-9](-?[a-z0-9])+$", var.lock_container_name)) && length(var.lock_container_name) <= 63
    error_message = "A container name is 3-63 lower-case letters, digits and single hyphens, e.g. \"indicator-locks\"."
  }
}

variable "state_container_name" {
  type        = string
  description = "Container of the tenant mirror (STATE_CONTAINER): <tenant key>/mirror.ndjson.gz, what the app keeps of the tenant between drains so it lists the tenant only when that view is old (TENANT_REFRESH_MINUTES) or known to be wrong."
  default     = "indicator-state"

  validation {
    condition     = can(regex("^[a-z0-9](-?[a-z0-9])+$", var.state_container_name)) && length(var.state_container_name) <= 63
    error_message = "A container name is 3-63 lower-case letters, digits and single hyphens, e.g. \"indicator-state\"."
  }

  # The app refuses a mirror among the dropped files or the reports.
  validation {
    condition     = !contains([var.indicators_container_name, var.reports_container_name], var.state_container_name)
    error_message = "state_container_name must differ from the indicators and reports containers, e.g. \"indicator-state\"."
  }
}

variable "dead_letter_container_name" {
  type        = string
  description = "Container that receives Event Grid events that could not be delivered."
  default     = "eventgrid-deadletter"

  validation {
    condition     = can(regex("^[a-z0-9](-?[a-z0-9])+$", var.dead_letter_container_name)) && length(var.dead_letter_container_name) <= 63
    error_message = "A container name is 3-63 lower-case letters, digits and single hyphens, e.g. \"eventgrid-deadletter\"."
  }
}

variable "jobs_container_name" {
  type        = string
  description = "Container of the import jobs (JOBS_CONTAINER): job records, saved HTTP rows, progress logs, results. Its own container: a lifecycle rule deletes every blob in it job_result_days + 1 days after its last change."
  default     = "indicator-jobs"

  validation {
    condition     = can(regex("^[a-z0-9](-?[a-z0-9])+$", var.jobs_container_name)) && length(var.jobs_container_name) <= 63
    error_message = "A container name is 3-63 lower-case letters, digits and single hyphens, e.g. \"indicator-jobs\"."
  }

  # The lifecycle rule would delete whatever else lives there.
  validation {
    condition = !contains(
      [var.indicators_container_name, var.reports_container_name, var.lock_container_name, var.dead_letter_container_name, var.state_container_name],
      var.jobs_container_name,
    )
    error_message = "jobs_container_name must differ from the indicators, reports, lock, dead-letter and state containers, e.g. \"indicator-jobs\"."
  }
}

variable "jobs_queue_name" {
  type        = string
  description = "Storage queue of the import-job doorbells (JOBS_QUEUE, trigger of run_import_jobs). Its poison queue <name>-poison is created beside it, hence at most 56 characters."
  default     = "indicator-jobs"

  validation {
    condition     = can(regex("^[a-z0-9](-?[a-z0-9])+$", var.jobs_queue_name)) && length(var.jobs_queue_name) <= 56
    error_message = "jobs_queue_name must be 3-56 lower-case letters, digits and single hyphens (the poison queue adds \"-poison\"), e.g. \"indicator-jobs\"."
  }
}

# ---------- Hosting ----------

variable "python_version" {
  type        = string
  description = "Python version of the Flex runtime: 3.11, 3.12 or 3.13."
  default     = "3.12"

  validation {
    condition     = contains(["3.11", "3.12", "3.13"], var.python_version)
    error_message = "python_version must be 3.11, 3.12 or 3.13, e.g. \"3.12\"."
  }
}

variable "instance_memory_mb" {
  type        = number
  description = "Instance memory in MB: 512, 2048 or 4096."
  default     = 2048

  validation {
    condition     = contains([512, 2048, 4096], var.instance_memory_mb)
    error_message = "instance_memory_mb must be 512, 2048 or 4096, e.g. 2048."
  }
}

variable "maximum_instance_count" {
  type        = number
  description = "Maximum instances the app scales out to (imports are serialised per tenant anyway)."
  default     = 40

  validation {
    condition     = var.maximum_instance_count >= 40 && var.maximum_instance_count <= 1000
    error_message = "maximum_instance_count must be 40 to 1000, e.g. 40."
  }
}

variable "log_retention_in_days" {
  type        = number
  description = "Days Log Analytics keeps data (30-730)."
  default     = 30

  validation {
    condition     = var.log_retention_in_days >= 30 && var.log_retention_in_days <= 730
    error_message = "log_retention_in_days must be 30 to 730, e.g. 90."
  }
}

variable "azure_authority_host" {
  type        = string
  description = "AZURE_AUTHORITY_HOST for sovereign clouds, e.g. https://login.microsoftonline.us for GCC High/DoD; empty leaves it unset."
  default     = ""
}

# ---------- Second step and the Defender permission ----------

variable "create_event_subscription" {
  type        = bool
  description = "Create the Event Grid subscription. Only after the code is deployed (the blobs_extension key exists then)."
  default     = false
}

variable "grant_defender_permission" {
  type        = bool
  description = "Grant the identity Ti.ReadWrite.All on WindowsDefenderATP (deployer needs Graph AppRoleAssignment.ReadWrite.All and Application.Read.All). Set false and run infra/scripts/grant-defender-permission.sh otherwise."
  default     = true
}

variable "event_max_delivery_attempts" {
  type        = number
  description = "Event Grid delivery attempts before an event is dead-lettered (1-30)."
  default     = 30

  validation {
    condition     = var.event_max_delivery_attempts >= 1 && var.event_max_delivery_attempts <= 30
    error_message = "event_max_delivery_attempts must be 1 to 30, e.g. 30."
  }
}

variable "event_time_to_live_in_minutes" {
  type        = number
  description = "Minutes Event Grid keeps retrying one event (1-1440)."
  default     = 1440

  validation {
    condition     = var.event_time_to_live_in_minutes >= 1 && var.event_time_to_live_in_minutes <= 1440
    error_message = "event_time_to_live_in_minutes must be 1 to 1440, e.g. 1440."
  }
}

# ---------- Contract settings (CONTRACT.md "Settings"; defaults match shared/settings.py) ----------

variable "defender_api_url" {
  type        = string
  description = "DEFENDER_API_URL: base URL of the Defender API, e.g. https://api-gov.securitycenter.microsoft.us."
  default     = "https://api.securitycenter.microsoft.com"

  validation {
    condition     = startswith(var.defender_api_url, "https://")
    error_message = "defender_api_url must be an https:// URL, e.g. \"https://api.securitycenter.microsoft.com\"."
  }
}

variable "defender_token_scope" {
  type        = string
  description = "DEFENDER_TOKEN_SCOPE, e.g. https://api-gov.securitycenter.microsoft.us/.default."
  default     = "https://api.securitycenter.microsoft.com/.default"
}

variable "default_action" {
  type        = string
  description = "DEFAULT_ACTION for rows that carry none."
  default     = "Audit"

  validation {
    condition     = contains(["Allowed", "Audit", "Warn", "Block", "BlockAndRemediate"], var.default_action)
    error_message = "default_action must be Allowed, Audit, Warn, Block or BlockAndRemediate, e.g. \"Audit\"."
  }
}

variable "default_severity" {
  type        = string
  description = "DEFAULT_SEVERITY for rows that carry none."
  default     = "Medium"

  validation {
    condition     = contains(["Informational", "Low", "Medium", "High"], var.default_severity)
    error_message = "default_severity must be Informational, Low, Medium or High, e.g. \"Medium\"."
  }
}

variable "default_expiration_days" {
  type        = number
  description = "DEFAULT_EXPIRATION_DAYS for rows that carry none (0 = never expire)."
  default     = 90

  validation {
    condition     = var.default_expiration_days >= 0 && floor(var.default_expiration_days) == var.default_expiration_days
    error_message = "default_expiration_days must be a whole number of days, 0 or more, e.g. 90."
  }
}

variable "expiration_days_by_type" {
  type        = string
  description = "EXPIRATION_DAYS_BY_TYPE, e.g. IpAddress=30,Url=90; empty for none."
  default     = ""
}

variable "default_title" {
  type        = string
  description = "DEFAULT_TITLE for rows that carry none."
  default     = "Imported indicator"
}

variable "default_description" {
  type        = string
  description = "DEFAULT_DESCRIPTION for rows that carry none; {source} becomes the input's name."
  default     = "Imported from {source}"
}

variable "default_rbac_groups" {
  type        = string
  description = "DEFAULT_RBAC_GROUPS: comma-separated device group names, e.g. Servers,Laptops; empty for all devices."
  default     = ""
}

variable "batch_size" {
  type        = number
  description = "BATCH_SIZE: indicators per import call (1-500)."
  default     = 500

  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 500
    error_message = "batch_size must be 1 to 500, e.g. 500."
  }
}

variable "max_calls_per_minute" {
  type        = number
  description = "MAX_CALLS_PER_MINUTE: import calls per 60 seconds for the whole app."
  default     = 30

  validation {
    condition     = var.max_calls_per_minute >= 1
    error_message = "max_calls_per_minute must be 1 or more, e.g. 30."
  }
}

variable "list_calls_per_minute" {
  type        = number
  description = "LIST_CALLS_PER_MINUTE: List calls per 60 seconds for the whole tenant."
  default     = 100

  validation {
    condition     = var.list_calls_per_minute >= 1
    error_message = "list_calls_per_minute must be 1 or more, e.g. 100."
  }
}

variable "list_calls_per_hour" {
  type        = number
  description = "LIST_CALLS_PER_HOUR: List calls per hour for the whole tenant."
  default     = 1500

  validation {
    condition     = var.list_calls_per_hour >= 1
    error_message = "list_calls_per_hour must be 1 or more, e.g. 1500."
  }
}

variable "batch_delete_calls_per_minute" {
  type        = number
  description = "BATCH_DELETE_CALLS_PER_MINUTE: BatchDelete calls per 60 seconds for the whole tenant."
  default     = 30

  validation {
    condition     = var.batch_delete_calls_per_minute >= 1
    error_message = "batch_delete_calls_per_minute must be 1 or more, e.g. 30."
  }
}

variable "batch_delete_calls_per_hour" {
  type        = number
  description = "BATCH_DELETE_CALLS_PER_HOUR: BatchDelete calls per hour for the whole tenant."
  default     = 1500

  validation {
    condition     = var.batch_delete_calls_per_hour >= 1
    error_message = "batch_delete_calls_per_hour must be 1 or more, e.g. 1500."
  }
}

variable "dry_run" {
  type        = bool
  description = "DRY_RUN: validate and report, submit nothing."
  default     = false
}

variable "max_http_body_bytes" {
  type        = number
  description = "MAX_HTTP_BODY_BYTES: larger HTTP bodies get 413."
  default     = 20971520

  validation {
    condition     = var.max_http_body_bytes >= 1
    error_message = "max_http_body_bytes must be 1 or more, e.g. 20971520."
  }
}

variable "max_http_indicators" {
  type        = number
  description = "MAX_HTTP_INDICATORS: more indicators in one HTTP request get 413."
  default     = 15000

  validation {
    condition     = var.max_http_indicators >= 1
    error_message = "max_http_indicators must be 1 or more, e.g. 15000."
  }
}

variable "max_tenant_indicators" {
  type        = number
  description = "MAX_TENANT_INDICATORS: the tenant cap the app plans against."
  default     = 15000

  validation {
    condition     = var.max_tenant_indicators >= 1
    error_message = "max_tenant_indicators must be 1 or more, e.g. 15000."
  }
}

variable "capacity_reserve" {
  type        = number
  description = "CAPACITY_RESERVE: room left free for analysts' own indicators."
  default     = 500

  validation {
    condition     = var.capacity_reserve >= 0
    error_message = "capacity_reserve must be 0 or more, e.g. 500."
  }
}

variable "tenant_refresh_minutes" {
  type        = number
  description = "TENANT_REFRESH_MINUTES: age after which the tenant mirror is refreshed by a full List (0: list at the start of every drain)."
  default     = 60

  validation {
    condition     = var.tenant_refresh_minutes >= 0 && var.tenant_refresh_minutes <= 1440 && floor(var.tenant_refresh_minutes) == var.tenant_refresh_minutes
    error_message = "tenant_refresh_minutes must be a whole number of minutes from 0 to 1440, e.g. 60."
  }
}

variable "defender_request_timeout_seconds" {
  type        = number
  description = "DEFENDER_REQUEST_TIMEOUT_SECONDS: read timeout of one Defender call."
  default     = 180

  validation {
    condition     = var.defender_request_timeout_seconds >= 1
    error_message = "defender_request_timeout_seconds must be 1 or more, e.g. 180."
  }
}

variable "max_value_length" {
  type        = number
  description = "MAX_VALUE_LENGTH: longest value read as a candidate indicator (longer ones are invalid)."
  default     = 8192

  validation {
    condition     = var.max_value_length >= 256
    error_message = "max_value_length must be 256 or more, e.g. 8192."
  }
}

variable "max_gzip_bytes" {
  type        = number
  description = "MAX_GZIP_BYTES: decompression of a .gz input stops past this many bytes."
  default     = 2147483648

  validation {
    condition     = var.max_gzip_bytes >= 1
    error_message = "max_gzip_bytes must be 1 or more, e.g. 2147483648."
  }
}

variable "max_gzip_ratio" {
  type        = number
  description = "MAX_GZIP_RATIO: decompression stops past this many times the compressed size."
  default     = 200

  validation {
    condition     = var.max_gzip_ratio >= 1
    error_message = "max_gzip_ratio must be 1 or more, e.g. 200."
  }
}

variable "duplicate_index_max_mb" {
  type        = number
  description = "DUPLICATE_INDEX_MAX_MB: memory of the duplicate index before it spills to a temporary file."
  default     = 256

  validation {
    condition     = var.duplicate_index_max_mb >= 1
    error_message = "duplicate_index_max_mb must be 1 or more, e.g. 256."
  }
}

variable "job_result_days" {
  type        = number
  description = "JOB_RESULT_DAYS: days a finished job's result stays readable at its status URL (1-365). The jobs container's lifecycle rule deletes job blobs one day after that."
  default     = 7

  validation {
    condition     = var.job_result_days >= 1 && var.job_result_days <= 365 && floor(var.job_result_days) == var.job_result_days
    error_message = "job_result_days must be a whole number of days, 1 to 365, e.g. 7."
  }
}

variable "http_sync_seconds" {
  type        = number
  description = "HTTP_SYNC_SECONDS: how long a POST waits for its job to finish before answering 202 with a status URL (0-60)."
  default     = 25

  validation {
    condition     = var.http_sync_seconds >= 0 && var.http_sync_seconds <= 60 && floor(var.http_sync_seconds) == var.http_sync_seconds
    error_message = "http_sync_seconds must be a whole number of seconds, 0 to 60, e.g. 25."
  }
}

variable "job_retry_schedule_minutes" {
  type        = string
  description = "JOB_RETRY_SCHEDULE_MINUTES: minutes between retries of a job that met an unavailable Defender or identity endpoint, comma-separated, the last one repeating, e.g. 1,5,15,60."
  default     = "1,5,15,60"

  validation {
    condition = can(regex("^[0-9]+(\\.[0-9]+)?(,[0-9]+(\\.[0-9]+)?)*$", var.job_retry_schedule_minutes)) && alltrue([
      for minutes in split(",", var.job_retry_schedule_minutes) : try(tonumber(minutes) > 0, false)
    ])
    error_message = "job_retry_schedule_minutes must be a comma list of positive minutes, e.g. \"1,5,15,60\"."
  }
}

variable "job_retry_max_hours" {
  type        = number
  description = "JOB_RETRY_MAX_HOURS: how long such a job keeps being retried, in whole hours (1-168)."
  default     = 6

  validation {
    condition     = var.job_retry_max_hours >= 1 && var.job_retry_max_hours <= 168 && floor(var.job_retry_max_hours) == var.job_retry_max_hours
    error_message = "job_retry_max_hours must be a whole number of hours, 1 to 168, e.g. 6."
  }
}

variable "access_denied_retry_hours" {
  type        = number
  description = "ACCESS_DENIED_RETRY_HOURS: how long a 403 from Defender is retried on the same schedule, in whole hours (0-168); role grants take time to reach tokens."
  default     = 2

  validation {
    condition     = var.access_denied_retry_hours >= 0 && var.access_denied_retry_hours <= 168 && floor(var.access_denied_retry_hours) == var.access_denied_retry_hours
    error_message = "access_denied_retry_hours must be a whole number of hours, 0 to 168, e.g. 2."
  }
}

variable "drain_max_jobs" {
  type        = number
  description = "DRAIN_MAX_JOBS: at most this many pending HTTP jobs share the import calls of one drain (1-1000)."
  default     = 200

  validation {
    condition     = var.drain_max_jobs >= 1 && var.drain_max_jobs <= 1000 && floor(var.drain_max_jobs) == var.drain_max_jobs
    error_message = "drain_max_jobs must be a whole number, 1 to 1000, e.g. 200."
  }
}

variable "drain_max_seconds" {
  type        = number
  description = "DRAIN_MAX_SECONDS: a drain takes no new jobs after this many seconds (1-1500)."
  default     = 600

  validation {
    condition     = var.drain_max_seconds >= 1 && var.drain_max_seconds <= 1500 && floor(var.drain_max_seconds) == var.drain_max_seconds
    error_message = "drain_max_seconds must be a whole number of seconds, 1 to 1500, e.g. 600."
  }
}

variable "coalesce_window_seconds" {
  type        = number
  description = "COALESCE_WINDOW_SECONDS: how long a partial shared import call waits to fill (0-30)."
  default     = 2

  validation {
    condition     = var.coalesce_window_seconds >= 0 && var.coalesce_window_seconds <= 30 && floor(var.coalesce_window_seconds) == var.coalesce_window_seconds
    error_message = "coalesce_window_seconds must be a whole number of seconds, 0 to 30, e.g. 2."
  }
}
