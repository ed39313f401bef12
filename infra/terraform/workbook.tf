# An Azure Monitor workbook over the workspace: imports over time by status, the top rejection codes, Defender
# calls and 429s, each tenant's count against its cap, invocations and warnings. The queries are the files in
# infra/queries/, shared with Bicep (infra/bicep/modules/workbook.bicep).

locals {
  # The same items, titles and query files as `queries` in workbook.bicep.
  workbook_items = [
    {
      name          = "imports-by-status"
      title         = "Imports over time by status"
      query         = file("${local.queries_dir}/workbook-imports-by-status.kql")
      visualization = "timechart"
    },
    {
      name          = "rejection-codes"
      title         = "Top rejection codes (invalid and failed entries)"
      query         = file("${local.queries_dir}/workbook-rejection-codes.kql")
      visualization = "table"
    },
    {
      name          = "calls-and-429s"
      title         = "Defender calls and 429 answers"
      query         = file("${local.queries_dir}/workbook-calls-and-429s.kql")
      visualization = "timechart"
    },
    {
      name          = "tenant-vs-cap"
      title         = "Tenant indicators against the cap"
      query         = file("${local.queries_dir}/workbook-tenant-vs-cap.kql")
      visualization = "linechart"
    },
    {
      name          = "invocations"
      title         = "Function invocations"
      query         = file("${local.queries_dir}/workbook-invocations.kql")
      visualization = "timechart"
    },
    {
      name          = "warnings"
      title         = "Warnings and errors in the logs"
      query         = file("${local.queries_dir}/workbook-warnings.kql")
      visualization = "barchart"
    },
  ]
}

resource "azurerm_application_insights_workbook" "main" {
  name                = uuidv5("url", "${data.azurerm_resource_group.main.id}/defender-ioc-importer-workbook")
  resource_group_name = data.azurerm_resource_group.main.name
  location            = local.location
  display_name        = "Defender IOC importer (${var.base_name})"
  source_id           = lower(azurerm_log_analytics_workspace.main.id)
  category            = "workbook"
  tags                = var.tags

  data_json = jsonencode({
    version = "Notebook/1.0"
    items = [for item in local.workbook_items : {
      type = 3
      name = item.name
      content = {
        version       = "KqlItem/1.0"
        title         = item.title
        query         = item.query
        size          = 0
        queryType     = 0
        resourceType  = "microsoft.operationalinsights/workspaces"
        visualization = item.visualization
        timeContext   = { durationMs = 604800000 }
      }
    }]
    fallbackResourceIds = [azurerm_log_analytics_workspace.main.id]
  })
}
