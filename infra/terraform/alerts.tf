# Log alerts on what the app itself reports (shared/core/telemetry.py), queried in the workspace (AppMetrics),
# and the action group they notify. The queries live in infra/queries/*.kql, shared with Bicep
# (infra/bicep/modules/alerts.bicep); README "Alerts" says what each one means and what to do.

variable "alert_email" {
  type        = string
  description = "Email address the alerts' action group notifies, e.g. secops@contoso.com; empty for none."
  default     = ""
}

variable "failed_indicators_threshold" {
  type        = number
  description = "Alert when more indicator entries than this end failed within an hour, e.g. 0."
  default     = 0

  validation {
    condition     = var.failed_indicators_threshold >= 0
    error_message = "failed_indicators_threshold must be 0 or more, e.g. 0."
  }
}

variable "retries_threshold" {
  type        = number
  description = "Alert when Defender calls are repeated (429, 5xx, network errors) more often than this within an hour, e.g. 30."
  default     = 30

  validation {
    condition     = var.retries_threshold >= 0
    error_message = "retries_threshold must be 0 or more, e.g. 30."
  }
}

variable "tenant_room_percent_threshold" {
  type        = number
  description = "Alert when a tenant's room left falls below this percentage of MAX_TENANT_INDICATORS, e.g. 10."
  default     = 10

  validation {
    condition     = var.tenant_room_percent_threshold >= 1 && var.tenant_room_percent_threshold <= 100
    error_message = "tenant_room_percent_threshold must be 1 to 100, e.g. 10."
  }
}

locals {
  queries_dir = "${path.module}/../queries"

  # One entry per alert: the same keys, query files, thresholds and windows as `alerts` in alerts.bicep.
  alerts = {
    "failed-run" = {
      display_name = "IOC importer: a run failed"
      description  = "A job ended with run status failed (nothing read, or Defender unreachable until its retries ran out)."
      severity     = 1
      query        = file("${local.queries_dir}/alert-failed-run.kql")
      measure      = "failedRuns"
      aggregation  = "Total"
      operator     = "GreaterThan"
      threshold    = 0
      frequency    = "PT15M"
      window       = "PT15M"
      dimensions   = []
    }
    "failed-indicators" = {
      display_name = "IOC importer: failed indicators"
      description  = "More indicator entries than the threshold ended failed within an hour."
      severity     = 2
      query        = file("${local.queries_dir}/alert-failed-indicators.kql")
      measure      = "failedIndicators"
      aggregation  = "Total"
      operator     = "GreaterThan"
      threshold    = var.failed_indicators_threshold
      frequency    = "PT1H"
      window       = "PT1H"
      dimensions   = []
    }
    "access-denied" = {
      display_name = "IOC importer: Defender answered 403"
      description  = "The identity lacks Ti.ReadWrite.All of WindowsDefenderATP, or the token scope is wrong."
      severity     = 1
      query        = file("${local.queries_dir}/alert-access-denied.kql")
      measure      = "deniedCalls"
      aggregation  = "Total"
      operator     = "GreaterThan"
      threshold    = 0
      frequency    = "PT15M"
      window       = "PT15M"
      dimensions   = []
    }
    "tenant-room" = {
      display_name = "IOC importer: tenant nearly full"
      description  = "A tenant's room left under the cap (minus the reserve) is below the threshold percentage of the cap."
      severity     = 2
      query        = file("${local.queries_dir}/alert-tenant-room.kql")
      measure      = "roomPercent"
      aggregation  = "Minimum"
      operator     = "LessThan"
      threshold    = var.tenant_room_percent_threshold
      frequency    = "PT1H"
      window       = "P1D"
      dimensions   = ["tenant"]
    }
    "poisoned-jobs" = {
      display_name = "IOC importer: a job was poisoned"
      description  = "A job failed on the last delivery of its message; the host moves the message to the poison queue."
      severity     = 1
      query        = file("${local.queries_dir}/alert-poisoned-jobs.kql")
      measure      = "poisonedJobs"
      aggregation  = "Total"
      operator     = "GreaterThan"
      threshold    = 0
      frequency    = "PT15M"
      window       = "PT15M"
      dimensions   = []
    }
    "retries" = {
      display_name = "IOC importer: retries piling up"
      description  = "Defender calls were repeated (429, 5xx, network errors) more often than the threshold within an hour."
      severity     = 3
      query        = file("${local.queries_dir}/alert-retries.kql")
      measure      = "retries"
      aggregation  = "Total"
      operator     = "GreaterThan"
      threshold    = var.retries_threshold
      frequency    = "PT1H"
      window       = "PT1H"
      dimensions   = []
    }
  }
}

resource "azurerm_monitor_action_group" "alerts" {
  name                = "ag-${var.base_name}"
  resource_group_name = data.azurerm_resource_group.main.name
  short_name          = "iocimporter"
  enabled             = true
  tags                = var.tags

  dynamic "email_receiver" {
    for_each = var.alert_email == "" ? [] : [var.alert_email]
    content {
      name                    = "operators"
      email_address           = email_receiver.value
      use_common_alert_schema = true
    }
  }
}

resource "azurerm_monitor_scheduled_query_rules_alert_v2" "alerts" {
  for_each = local.alerts

  name                    = "alert-${var.base_name}-${each.key}"
  resource_group_name     = data.azurerm_resource_group.main.name
  location                = local.location
  display_name            = each.value.display_name
  description             = each.value.description
  severity                = each.value.severity
  enabled                 = true
  evaluation_frequency    = each.value.frequency
  window_duration         = each.value.window
  scopes                  = [azurerm_log_analytics_workspace.main.id]
  auto_mitigation_enabled = false
  tags                    = var.tags

  criteria {
    query                   = each.value.query
    time_aggregation_method = each.value.aggregation
    metric_measure_column   = each.value.measure
    operator                = each.value.operator
    threshold               = each.value.threshold

    dynamic "dimension" {
      for_each = each.value.dimensions
      content {
        name     = dimension.value
        operator = "Include"
        values   = ["*"]
      }
    }

    failing_periods {
      minimum_failing_periods_to_trigger_alert = 1
      number_of_evaluation_periods             = 1
    }
  }

  action {
    action_groups = [azurerm_monitor_action_group.alerts.id]
  }
}
