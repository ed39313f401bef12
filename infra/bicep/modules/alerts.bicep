// Log alerts on what the app itself reports (shared/core/telemetry.py), queried in the workspace (AppMetrics),
// and the action group they notify. The queries live in infra/queries/*.kql, shared with Terraform
// (infra/terraform/alerts.tf); README "Alerts" says what each one means and what to do.

@description('Name prefix of the alert rules and the action group, e.g. iocimp7f3k.')
param baseName string

@description('Azure region of the alert rules.')
param location string

@description('Tags for every resource.')
param tags object

@description('Resource id of the Log Analytics workspace behind Application Insights.')
param workspaceId string

@description('Email address the action group notifies; empty for none (attach receivers later).')
param alertEmail string

@description('Alert when more indicator entries than this end `failed` within an hour.')
@minValue(0)
param failedIndicatorsThreshold int

@description('Alert when Defender calls are repeated more often than this within an hour.')
@minValue(0)
param retriesThreshold int

@description('Alert when a tenant\'s room falls below this percentage of its cap.')
@minValue(1)
@maxValue(100)
param tenantRoomPercentThreshold int

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-${baseName}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'iocimporter'
    enabled: true
    emailReceivers: empty(alertEmail) ? [] : [
      {
        name: 'operators'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

// One entry per alert: the same keys, query files, thresholds and windows as local.alerts in Terraform.
var alerts = [
  {
    key: 'failed-run'
    displayName: 'IOC importer: a run failed'
    description: 'A job ended with run status failed (nothing read, or Defender unreachable until its retries ran out).'
    severity: 1
    query: loadTextContent('../../queries/alert-failed-run.kql')
    measure: 'failedRuns'
    aggregation: 'Total'
    operator: 'GreaterThan'
    threshold: 0
    frequency: 'PT15M'
    window: 'PT15M'
    dimensions: []
  }
  {
    key: 'failed-indicators'
    displayName: 'IOC importer: failed indicators'
    description: 'More indicator entries than the threshold ended failed within an hour.'
    severity: 2
    query: loadTextContent('../../queries/alert-failed-indicators.kql')
    measure: 'failedIndicators'
    aggregation: 'Total'
    operator: 'GreaterThan'
    threshold: failedIndicatorsThreshold
    frequency: 'PT1H'
    window: 'PT1H'
    dimensions: []
  }
  {
    key: 'access-denied'
    displayName: 'IOC importer: Defender answered 403'
    description: 'The identity lacks Ti.ReadWrite.All of WindowsDefenderATP, or the token scope is wrong.'
    severity: 1
    query: loadTextContent('../../queries/alert-access-denied.kql')
    measure: 'deniedCalls'
    aggregation: 'Total'
    operator: 'GreaterThan'
    threshold: 0
    frequency: 'PT15M'
    window: 'PT15M'
    dimensions: []
  }
  {
    key: 'tenant-room'
    displayName: 'IOC importer: tenant nearly full'
    description: 'A tenant\'s room left under the cap (minus the reserve) is below the threshold percentage of the cap.'
    severity: 2
    query: loadTextContent('../../queries/alert-tenant-room.kql')
    measure: 'roomPercent'
    aggregation: 'Minimum'
    operator: 'LessThan'
    threshold: tenantRoomPercentThreshold
    frequency: 'PT1H'
    window: 'P1D'
    dimensions: [
      {
        name: 'tenant'
        operator: 'Include'
        values: [
          '*'
        ]
      }
    ]
  }
  {
    key: 'poisoned-jobs'
    displayName: 'IOC importer: a job was poisoned'
    description: 'A job failed on the last delivery of its message; the host moves the message to the poison queue.'
    severity: 1
    query: loadTextContent('../../queries/alert-poisoned-jobs.kql')
    measure: 'poisonedJobs'
    aggregation: 'Total'
    operator: 'GreaterThan'
    threshold: 0
    frequency: 'PT15M'
    window: 'PT15M'
    dimensions: []
  }
  {
    key: 'retries'
    displayName: 'IOC importer: retries piling up'
    description: 'Defender calls were repeated (429, 5xx, network errors) more often than the threshold within an hour.'
    severity: 3
    query: loadTextContent('../../queries/alert-retries.kql')
    measure: 'retries'
    aggregation: 'Total'
    operator: 'GreaterThan'
    threshold: retriesThreshold
    frequency: 'PT1H'
    window: 'PT1H'
    dimensions: []
  }
]

resource rules 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [
  for a in alerts: {
    name: 'alert-${baseName}-${a.key}'
    location: location
    tags: tags
    kind: 'LogAlert'
    properties: {
      displayName: a.displayName
      description: a.description
      severity: a.severity
      enabled: true
      evaluationFrequency: a.frequency
      windowSize: a.window
      scopes: [
        workspaceId
      ]
      criteria: {
        allOf: [
          {
            query: a.query
            timeAggregation: a.aggregation
            metricMeasureColumn: a.measure
            operator: a.operator
            threshold: a.threshold
            dimensions: a.dimensions
            failingPeriods: {
              numberOfEvaluationPeriods: 1
              minFailingPeriodsToAlert: 1
            }
          }
        ]
      }
      autoMitigate: false
      actions: {
        actionGroups: [
          actionGroup.id
        ]
      }
    }
  }
]

output actionGroupId string = actionGroup.id
output alertNames array = [for (a, i) in alerts: rules[i].name]
