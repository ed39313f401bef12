// Defender IOC importer: everything the function app needs, deployed into one resource group.
// Step 1 deploys with createEventSubscription=false; after the code is published, step 2 runs the
// same deployment with createEventSubscription=true (or infra/scripts/create-event-subscription.sh).
// See infra/README.md.
targetScope = 'resourceGroup'

// ---------- Naming and placement ----------

@description('Short lower-case name every resource name derives from, e.g. iocimp7f3k. Must make the storage and app names globally unique.')
@minLength(3)
@maxLength(16)
param baseName string

@description('Azure region; defaults to the resource group\'s. Must offer Flex Consumption (az functionapp list-flexconsumption-locations).')
param location string = resourceGroup().location

@description('Tags for every resource.')
param tags object = {}

@description('Redundancy of both storage accounts.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param storageSku string = 'Standard_LRS'

@description('Container watched for dropped IOC files (INDICATORS_CONTAINER).')
@minLength(3)
@maxLength(63)
param indicatorsContainerName string = 'indicators'

@description('Container that receives reports (REPORTS_CONTAINER). Never the watched container.')
@minLength(3)
@maxLength(63)
param reportsContainerName string = 'indicator-reports'

@description('Container for the tenant lock blob (LOCK_CONTAINER), outside the watched container.')
@minLength(3)
@maxLength(63)
param lockContainerName string = 'indicator-locks'

@description('Container that receives Event Grid events that could not be delivered.')
@minLength(3)
@maxLength(63)
param deadLetterContainerName string = 'eventgrid-deadletter'

@description('Container of the import jobs (JOBS_CONTAINER): job records, saved HTTP rows, progress logs, results. Its own container: a lifecycle rule deletes every blob in it jobResultDays + 1 days after its last change.')
@minLength(3)
@maxLength(63)
param jobsContainerName string = 'indicator-jobs'

@description('Container of the tenant mirror (STATE_CONTAINER): <tenant key>/mirror.ndjson.gz, what the app keeps of the tenant between drains so it lists the tenant only when that view is old (TENANT_REFRESH_MINUTES) or known to be wrong.')
@minLength(3)
@maxLength(63)
param stateContainerName string = 'indicator-state'

@description('Storage queue of the import-job doorbells (JOBS_QUEUE, trigger of run_import_jobs). Its poison queue <name>-poison is created beside it, hence at most 56 characters.')
@minLength(3)
@maxLength(56)
param jobsQueueName string = 'indicator-jobs'

// ---------- Hosting ----------

@description('Python version of the Flex runtime.')
@allowed([
  '3.11'
  '3.12'
  '3.13'
])
param pythonVersion string = '3.12'

@description('Instance memory in MB (512, 2048 or 4096).')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Maximum instances the app scales out to (imports are serialised per tenant anyway).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Days Log Analytics keeps data.')
@minValue(30)
@maxValue(730)
param logRetentionInDays int = 30

@description('AZURE_AUTHORITY_HOST for sovereign clouds, e.g. https://login.microsoftonline.us for GCC High/DoD; empty leaves it unset.')
param azureAuthorityHost string = ''

// ---------- Second step and the Defender permission ----------

@description('Create the Event Grid subscription. Only after the code is deployed (the blobs_extension key exists then).')
param createEventSubscription bool = false

@description('Grant the identity Ti.ReadWrite.All on WindowsDefenderATP with the Microsoft Graph extension (deployer needs AppRoleAssignment.ReadWrite.All and Application.Read.All). Set false and run infra/scripts/grant-defender-permission.sh otherwise.')
param grantDefenderPermission bool = true

@description('Event Grid delivery attempts before an event is dead-lettered.')
@minValue(1)
@maxValue(30)
param eventMaxDeliveryAttempts int = 30

@description('Minutes Event Grid keeps retrying one event.')
@minValue(1)
@maxValue(1440)
param eventTimeToLiveInMinutes int = 1440

// ---------- Contract settings (CONTRACT.md "Settings"; defaults match shared/settings.py) ----------

@description('DEFENDER_API_URL: base URL of the Defender API (regional or government host).')
param defenderApiUrl string = 'https://api.securitycenter.microsoft.com'

@description('DEFENDER_TOKEN_SCOPE: token scope for the Defender API.')
param defenderTokenScope string = 'https://api.securitycenter.microsoft.com/.default'

@description('DEFAULT_ACTION for rows that carry none.')
@allowed([
  'Allowed'
  'Audit'
  'Warn'
  'Block'
  'BlockAndRemediate'
])
param defaultAction string = 'Audit'

@description('DEFAULT_SEVERITY for rows that carry none.')
@allowed([
  'Informational'
  'Low'
  'Medium'
  'High'
])
param defaultSeverity string = 'Medium'

@description('DEFAULT_EXPIRATION_DAYS for rows that carry none (0 = never expire).')
@minValue(0)
param defaultExpirationDays int = 90

@description('EXPIRATION_DAYS_BY_TYPE, e.g. IpAddress=30,Url=90; empty for none.')
param expirationDaysByType string = ''

@description('DEFAULT_TITLE for rows that carry none.')
@minLength(1)
param defaultTitle string = 'Imported indicator'

@description('DEFAULT_DESCRIPTION for rows that carry none; {source} becomes the input\'s name.')
@minLength(1)
param defaultDescription string = 'Imported from {source}'

@description('DEFAULT_RBAC_GROUPS: comma-separated device group names; empty for all devices.')
param defaultRbacGroups string = ''

@description('BATCH_SIZE: indicators per import call.')
@minValue(1)
@maxValue(500)
param batchSize int = 500

@description('MAX_CALLS_PER_MINUTE: import calls per 60 seconds for the whole app.')
@minValue(1)
param maxCallsPerMinute int = 30

@description('LIST_CALLS_PER_MINUTE: List calls per 60 seconds for the whole tenant.')
@minValue(1)
param listCallsPerMinute int = 100

@description('LIST_CALLS_PER_HOUR: List calls per hour for the whole tenant.')
@minValue(1)
param listCallsPerHour int = 1500

@description('BATCH_DELETE_CALLS_PER_MINUTE: BatchDelete calls per 60 seconds for the whole tenant.')
@minValue(1)
param batchDeleteCallsPerMinute int = 30

@description('BATCH_DELETE_CALLS_PER_HOUR: BatchDelete calls per hour for the whole tenant.')
@minValue(1)
param batchDeleteCallsPerHour int = 1500

@description('DRY_RUN: validate and report, submit nothing.')
param dryRun bool = false

@description('MAX_HTTP_BODY_BYTES: larger HTTP bodies get 413.')
@minValue(1)
param maxHttpBodyBytes int = 20971520

@description('MAX_HTTP_INDICATORS: more indicators in one HTTP request get 413.')
@minValue(1)
param maxHttpIndicators int = 15000

@description('MAX_TENANT_INDICATORS: the tenant cap the app plans against.')
@minValue(1)
param maxTenantIndicators int = 15000

@description('CAPACITY_RESERVE: room left free for analysts\' own indicators.')
@minValue(0)
param capacityReserve int = 500

@description('TENANT_REFRESH_MINUTES: age after which the tenant mirror is refreshed by a full List (0: list at the start of every drain).')
@minValue(0)
@maxValue(1440)
param tenantRefreshMinutes int = 60

@description('DEFENDER_REQUEST_TIMEOUT_SECONDS: read timeout of one Defender call.')
@minValue(1)
param defenderRequestTimeoutSeconds int = 180

@description('MAX_VALUE_LENGTH: longest value read as a candidate indicator (longer ones are invalid).')
@minValue(256)
param maxValueLength int = 8192

@description('MAX_GZIP_BYTES: decompression of a .gz input stops past this many bytes.')
@minValue(1)
param maxGzipBytes int = 2147483648

@description('MAX_GZIP_RATIO: decompression stops past this many times the compressed size.')
@minValue(1)
param maxGzipRatio int = 200

@description('DUPLICATE_INDEX_MAX_MB: memory of the duplicate index before it spills to a temporary file.')
@minValue(1)
param duplicateIndexMaxMB int = 256

@description('JOB_RESULT_DAYS: days a finished job\'s result stays readable at its status URL. The jobs container\'s lifecycle rule deletes job blobs one day after that.')
@minValue(1)
@maxValue(365)
param jobResultDays int = 7

@description('HTTP_SYNC_SECONDS: how long a POST waits for its job to finish before answering 202 with a status URL (0-60).')
@minValue(0)
@maxValue(60)
param httpSyncSeconds int = 25

@description('JOB_RETRY_SCHEDULE_MINUTES: minutes between retries of a job that met an unavailable Defender or identity endpoint, comma-separated, the last one repeating, e.g. 1,5,15,60.')
@minLength(1)
param jobRetryScheduleMinutes string = '1,5,15,60'

@description('JOB_RETRY_MAX_HOURS: how long such a job keeps being retried, in whole hours (1-168).')
@minValue(1)
@maxValue(168)
param jobRetryMaxHours int = 6

@description('ACCESS_DENIED_RETRY_HOURS: how long a 403 from Defender is retried on the same schedule, in whole hours (0-168); role grants take time to reach tokens.')
@minValue(0)
@maxValue(168)
param accessDeniedRetryHours int = 2

@description('DRAIN_MAX_JOBS: at most this many pending HTTP jobs share the import calls of one drain (1-1000).')
@minValue(1)
@maxValue(1000)
param drainMaxJobs int = 200

@description('DRAIN_MAX_SECONDS: a drain takes no new jobs after this many seconds (1-1500).')
@minValue(1)
@maxValue(1500)
param drainMaxSeconds int = 600

@description('COALESCE_WINDOW_SECONDS: how long a partial shared import call waits to fill (0-30).')
@minValue(0)
@maxValue(30)
param coalesceWindowSeconds int = 2

// ---------- HTTP API authentication [entra] (opt-in; infra/README.md "Entra ID tokens instead of function keys") ----------

@description('HTTP_AUTH: function-key (the host checks a function key) or entra (the app checks Entra ID tokens and app roles). With entra and httpAuthAudience empty, this deployment creates the app registration, which needs Microsoft Graph rights.')
@allowed([
  'function-key'
  'entra'
])
param httpAuth string = 'function-key'

@description('HTTP_AUTH_AUDIENCE of an existing app registration (comma list: identifier URI, client id); empty creates one here when httpAuth is entra.')
param httpAuthAudience string = ''

@description('HTTP_AUTH_AUTHORITY_HOST; empty uses the deployment cloud\'s login endpoint (https://login.microsoftonline.com in the public cloud).')
param httpAuthAuthorityHost string = ''

@description('Object ids of callers (managed identities, service principals, users, groups) granted Indicators.Import on the created registration.')
param httpAuthImportPrincipalIds array = []

@description('Object ids granted Indicators.Read (the status of any job) on the created registration.')
param httpAuthReadPrincipalIds array = []

@description('Pre-authorise the Azure CLI (04b07795-8ddb-461a-bbee-02f9e1bf7b46) for the created registration, for analysts\' scripts.')
param httpAuthPreauthorizeAzureCli bool = false

@description('Put App Service Authentication in front of the app too (excluding /runtime/webhooks/blobs and /api/health); needs the created registration.')
param enableAppServiceAuthentication bool = false

@description('Deploy a sample Consumption Logic App that posts indicators with its managed identity, granted Indicators.Import; needs httpAuth=entra and the created registration.')
param deployLogicApp bool = false

@description('The sample Logic App posts with dryRun=true (validate and report only).')
param logicAppDryRun bool = true

// ---------- Alerts (README "Alerts"; thresholds match infra/terraform/alerts.tf) ----------

@description('Email address the alerts\' action group notifies, e.g. secops@contoso.com; empty for none.')
param alertEmail string = ''

@description('Alert when more indicator entries than this end failed within an hour.')
@minValue(0)
param failedIndicatorsThreshold int = 0

@description('Alert when Defender calls are repeated (429, 5xx, network errors) more often than this within an hour.')
@minValue(0)
param retriesThreshold int = 30

@description('Alert when a tenant\'s room left falls below this percentage of MAX_TENANT_INDICATORS.')
@minValue(1)
@maxValue(100)
param tenantRoomPercentThreshold int = 10

// ---------- Names ----------

var names = {
  identity: 'id-${baseName}'
  hostStorage: 'st${baseName}host'
  dataStorage: 'st${baseName}data'
  logAnalytics: 'log-${baseName}'
  appInsights: 'appi-${baseName}'
  plan: 'plan-${baseName}'
  functionApp: 'func-${baseName}'
  systemTopic: 'evgt-${baseName}'
}
var deploymentContainerName = 'app-package-${names.functionApp}'
// The queue trigger's poison queue: the host's own naming rule.
var jobsPoisonQueueName = '${jobsQueueName}-poison'

// ---------- Resources ----------

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    name: names.identity
    location: location
    tags: tags
  }
}

module hostStorage 'modules/storage.bicep' = {
  name: 'host-storage'
  params: {
    name: names.hostStorage
    location: location
    tags: tags
    skuName: storageSku
    containerNames: [
      deploymentContainerName
    ]
  }
}

module dataStorage 'modules/storage.bicep' = {
  name: 'data-storage'
  params: {
    name: names.dataStorage
    location: location
    tags: tags
    skuName: storageSku
    containerNames: [
      indicatorsContainerName
      reportsContainerName
      lockContainerName
      deadLetterContainerName
      jobsContainerName
      stateContainerName
    ]
    // The host creates the poison queue on first use; creating it here gives operators a queue to
    // alert on from the start.
    queueNames: [
      jobsQueueName
      jobsPoisonQueueName
    ]
    // Collects finished jobs' blobs only; the app decides what a status URL answers (JOB_RESULT_DAYS).
    deleteAfterModificationRules: [
      {
        name: 'delete-old-import-jobs'
        prefix: '${jobsContainerName}/'
        days: jobResultDays + 1
      }
    ]
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    logAnalyticsName: names.logAnalytics
    appInsightsName: names.appInsights
    location: location
    tags: tags
    retentionInDays: logRetentionInDays
  }
}

module rbac 'modules/rbac.bicep' = {
  name: 'rbac'
  params: {
    principalId: identity.outputs.principalId
    hostStorageName: hostStorage.outputs.name
    dataStorageName: dataStorage.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
  }
}

// Every contract setting, each overridable by the parameter above it (CONTRACT.md "Settings").
var contractSettings = {
  DEFENDER_API_URL: defenderApiUrl
  DEFENDER_TOKEN_SCOPE: defenderTokenScope
  AZURE_CLIENT_ID: identity.outputs.clientId
  INDICATORS_CONTAINER: indicatorsContainerName
  REPORTS_CONTAINER: reportsContainerName
  DEFAULT_ACTION: defaultAction
  DEFAULT_SEVERITY: defaultSeverity
  DEFAULT_EXPIRATION_DAYS: string(defaultExpirationDays)
  EXPIRATION_DAYS_BY_TYPE: expirationDaysByType
  DEFAULT_TITLE: defaultTitle
  DEFAULT_DESCRIPTION: defaultDescription
  DEFAULT_RBAC_GROUPS: defaultRbacGroups
  BATCH_SIZE: string(batchSize)
  MAX_CALLS_PER_MINUTE: string(maxCallsPerMinute)
  LIST_CALLS_PER_MINUTE: string(listCallsPerMinute)
  LIST_CALLS_PER_HOUR: string(listCallsPerHour)
  BATCH_DELETE_CALLS_PER_MINUTE: string(batchDeleteCallsPerMinute)
  BATCH_DELETE_CALLS_PER_HOUR: string(batchDeleteCallsPerHour)
  DRY_RUN: dryRun ? 'true' : 'false'
  MAX_HTTP_BODY_BYTES: string(maxHttpBodyBytes)
  MAX_HTTP_INDICATORS: string(maxHttpIndicators)
  MAX_TENANT_INDICATORS: string(maxTenantIndicators)
  CAPACITY_RESERVE: string(capacityReserve)
  TENANT_REFRESH_MINUTES: string(tenantRefreshMinutes)
  STATE_CONTAINER: stateContainerName
  DEFENDER_REQUEST_TIMEOUT_SECONDS: string(defenderRequestTimeoutSeconds)
  MAX_VALUE_LENGTH: string(maxValueLength)
  MAX_GZIP_BYTES: string(maxGzipBytes)
  MAX_GZIP_RATIO: string(maxGzipRatio)
  DUPLICATE_INDEX_MAX_MB: string(duplicateIndexMaxMB)
  JOBS_QUEUE: jobsQueueName
  JOBS_CONTAINER: jobsContainerName
  JOB_RESULT_DAYS: string(jobResultDays)
  HTTP_SYNC_SECONDS: string(httpSyncSeconds)
  JOB_RETRY_SCHEDULE_MINUTES: jobRetryScheduleMinutes
  JOB_RETRY_MAX_HOURS: string(jobRetryMaxHours)
  ACCESS_DENIED_RETRY_HOURS: string(accessDeniedRetryHours)
  DRAIN_MAX_JOBS: string(drainMaxJobs)
  DRAIN_MAX_SECONDS: string(drainMaxSeconds)
  COALESCE_WINDOW_SECONDS: string(coalesceWindowSeconds)
}

// [entra] HTTP_AUTH and its settings; the registration (a Graph resource) only when tokens are on and no
// existing registration's audience is given.
var entraOn = httpAuth == 'entra'
var createAppRegistration = entraOn && empty(httpAuthAudience)
var loginEndpoint = empty(httpAuthAuthorityHost) ? environment().authentication.loginEndpoint : httpAuthAuthorityHost
var authorityHost = endsWith(loginEndpoint, '/') ? substring(loginEndpoint, 0, length(loginEndpoint) - 1) : loginEndpoint
var entraNames = {
  appRegistration: 'ioc-importer-${baseName}'
  logicApp: 'logic-${baseName}-import'
}

module entraApp 'modules/entra-app.bicep' = if (createAppRegistration) {
  name: 'entra-app'
  params: {
    uniqueName: entraNames.appRegistration
    displayName: 'Defender IOC importer (${baseName})'
    preAuthorizeAzureCli: httpAuthPreauthorizeAzureCli
  }
}

var httpAuthSettings = {
  HTTP_AUTH: httpAuth
  HTTP_AUTH_TENANT_ID: entraOn ? tenant().tenantId : ''
  HTTP_AUTH_AUDIENCE: entraOn ? (createAppRegistration ? entraApp!.outputs.audience : httpAuthAudience) : ''
  HTTP_AUTH_AUTHORITY_HOST: authorityHost
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'function-app'
  params: {
    name: names.functionApp
    planName: names.plan
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    hostBlobEndpoint: hostStorage.outputs.blobEndpoint
    hostQueueEndpoint: hostStorage.outputs.queueEndpoint
    deploymentContainerName: deploymentContainerName
    dataBlobEndpoint: dataStorage.outputs.blobEndpoint
    dataQueueEndpoint: dataStorage.outputs.queueEndpoint
    lockContainerName: lockContainerName
    appInsightsConnectionString: monitoring.outputs.connectionString
    pythonVersion: pythonVersion
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    contractSettings: union(contractSettings, httpAuthSettings)
    azureAuthorityHost: azureAuthorityHost
  }
  // The host starts right away: let its storage and telemetry roles exist first (P13).
  dependsOn: [
    rbac
  ]
}

module eventGrid 'modules/eventgrid.bicep' = {
  name: 'event-grid'
  params: {
    name: names.systemTopic
    location: location
    tags: tags
    dataStorageId: dataStorage.outputs.id
    identityId: identity.outputs.id
  }
}

module eventSubscription 'modules/eventgrid-subscription.bicep' = if (createEventSubscription) {
  name: 'event-subscription'
  params: {
    systemTopicName: eventGrid.outputs.name
    functionAppName: functionApp.outputs.name
    indicatorsContainerName: indicatorsContainerName
    dataStorageId: dataStorage.outputs.id
    deadLetterContainerName: deadLetterContainerName
    identityId: identity.outputs.id
    maxDeliveryAttempts: eventMaxDeliveryAttempts
    eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
  }
  // Dead-lettering writes with the identity's blob role on the data account.
  dependsOn: [
    rbac
  ]
}

module defenderPermission 'modules/defender-permission.bicep' = if (grantDefenderPermission) {
  name: 'defender-permission'
  params: {
    principalId: identity.outputs.principalId
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  params: {
    baseName: baseName
    location: location
    tags: tags
    workspaceId: monitoring.outputs.workspaceId
    alertEmail: alertEmail
    failedIndicatorsThreshold: failedIndicatorsThreshold
    retriesThreshold: retriesThreshold
    tenantRoomPercentThreshold: tenantRoomPercentThreshold
  }
}

module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  params: {
    displayName: 'Defender IOC importer (${baseName})'
    location: location
    tags: tags
    workspaceId: monitoring.outputs.workspaceId
  }
}

// [entra] The optional caller, the role grants and App Service Authentication.
module logicApp 'modules/logic-app.bicep' = if (deployLogicApp && createAppRegistration) {
  name: 'logic-app'
  params: {
    name: entraNames.logicApp
    location: location
    tags: tags
    importUrl: 'https://${functionApp.outputs.defaultHostName}/api/indicators/import'
    audience: entraApp!.outputs.identifierUri
    dryRun: logicAppDryRun
  }
}

module entraCallers 'modules/entra-callers.bicep' = if (createAppRegistration) {
  name: 'entra-callers'
  params: {
    servicePrincipalId: entraApp!.outputs.servicePrincipalId
    importRoleId: entraApp!.outputs.importRoleId
    readRoleId: entraApp!.outputs.readRoleId
    importPrincipalIds: concat(httpAuthImportPrincipalIds, deployLogicApp ? [logicApp!.outputs.principalId] : [])
    readPrincipalIds: httpAuthReadPrincipalIds
  }
}

module easyAuth 'modules/easy-auth.bicep' = if (enableAppServiceAuthentication && createAppRegistration) {
  name: 'easy-auth'
  params: {
    functionAppName: functionApp.outputs.name
    clientId: entraApp!.outputs.appId
    tenantId: tenant().tenantId
    authorityHost: authorityHost
    allowedAudiences: split(entraApp!.outputs.audience, ',')
  }
}

// ---------- Outputs ----------

output functionAppName string = functionApp.outputs.name
output functionAppUrl string = 'https://${functionApp.outputs.defaultHostName}'
output resourceGroupName string = resourceGroup().name
output dataStorageAccountName string = dataStorage.outputs.name
output hostStorageAccountName string = hostStorage.outputs.name
output systemTopicName string = eventGrid.outputs.name
output indicatorsContainerName string = indicatorsContainerName
output reportsContainerName string = reportsContainerName
output lockContainerName string = lockContainerName
output deadLetterContainerName string = deadLetterContainerName
output jobsContainerName string = jobsContainerName
output stateContainerName string = stateContainerName
output jobsQueueName string = jobsQueueName
output jobsPoisonQueueName string = jobsPoisonQueueName
output identityClientId string = identity.outputs.clientId
output identityPrincipalId string = identity.outputs.principalId
output httpAuthAudience string = httpAuthSettings.HTTP_AUTH_AUDIENCE
output apiAppId string = createAppRegistration ? entraApp!.outputs.appId : ''
output logicAppPrincipalId string = deployLogicApp && createAppRegistration ? logicApp!.outputs.principalId : ''
