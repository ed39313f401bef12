// An Azure Monitor workbook over the workspace: imports over time by status, the top rejection codes, Defender
// calls and 429s, each tenant's count against its cap, invocations and warnings. The queries are the files in
// infra/queries/, shared with Terraform (infra/terraform/workbook.tf).

@description('Display name of the workbook.')
param displayName string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Resource id of the Log Analytics workspace the queries run in.')
param workspaceId string

var week = 604800000 // the time range of every query, in milliseconds

// The same items, titles and query files as local.workbook_items in Terraform.
var queries = [
  {
    name: 'imports-by-status'
    title: 'Imports over time by status'
    query: loadTextContent('../../queries/workbook-imports-by-status.kql')
    visualization: 'timechart'
  }
  {
    name: 'rejection-codes'
    title: 'Top rejection codes (invalid and failed entries)'
    query: loadTextContent('../../queries/workbook-rejection-codes.kql')
    visualization: 'table'
  }
  {
    name: 'calls-and-429s'
    title: 'Defender calls and 429 answers'
    query: loadTextContent('../../queries/workbook-calls-and-429s.kql')
    visualization: 'timechart'
  }
  {
    name: 'tenant-vs-cap'
    title: 'Tenant indicators against the cap'
    query: loadTextContent('../../queries/workbook-tenant-vs-cap.kql')
    visualization: 'linechart'
  }
  {
    name: 'invocations'
    title: 'Function invocations'
    query: loadTextContent('../../queries/workbook-invocations.kql')
    visualization: 'timechart'
  }
  {
    name: 'warnings'
    title: 'Warnings and errors in the logs'
    query: loadTextContent('../../queries/workbook-warnings.kql')
    visualization: 'barchart'
  }
]

var content = {
  version: 'Notebook/1.0'
  'items': [
    for item in queries: {
      type: 3
      name: item.name
      content: {
        version: 'KqlItem/1.0'
        title: item.title
        query: item.query
        size: 0
        queryType: 0
        resourceType: 'microsoft.operationalinsights/workspaces'
        visualization: item.visualization
        timeContext: {
          durationMs: week
        }
      }
    }
  ]
  fallbackResourceIds: [
    workspaceId
  ]
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, 'defender-ioc-importer-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: workspaceId
    serializedData: string(content)
  }
}

output workbookId string = workbook.id
