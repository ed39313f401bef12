// The Flex Consumption plan and the Linux Python function app. Runtime, memory and scale live in
// functionAppConfig; no Flex-deprecated setting is set (azure-functions-conventions.md, conventions 25-26).

@description('Function app name (globally unique host name).')
param name string

@description('Flex Consumption plan name.')
param planName string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Resource id of the user-assigned managed identity.')
param identityId string

@description('Client id of the user-assigned managed identity.')
param identityClientId string

@description('Blob endpoint of the host storage account (AzureWebJobsStorage and the deployment package).')
param hostBlobEndpoint string

@description('Queue endpoint of the host storage account (the Event Grid blob trigger queue lives here).')
param hostQueueEndpoint string

@description('Deployment package container on the host storage account.')
param deploymentContainerName string

@description('Blob endpoint of the data storage account (connection IndicatorStorage).')
param dataBlobEndpoint string

@description('Queue endpoint of the data storage account (the jobs queue of run_import_jobs, the blob trigger poison queue).')
param dataQueueEndpoint string

@description('Container on the data account that holds the tenant lock blob.')
param lockContainerName string

@description('Application Insights connection string.')
param appInsightsConnectionString string

@description('Python version of the Flex runtime.')
param pythonVersion string

@description('Instance memory in MB.')
param instanceMemoryMB int

@description('Maximum instances the app scales out to.')
param maximumInstanceCount int

@description('The contract settings (CONTRACT.md "Settings"), already resolved.')
param contractSettings object

@description('AZURE_AUTHORITY_HOST for sovereign clouds; empty leaves it unset.')
param azureAuthorityHost string

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true // Linux
  }
}

// Identity-based connections: every one names the credential and the identity's client id, or the
// host falls back to connection strings (azure-functions-conventions.md, P10 and convention 24).
var platformSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AzureWebJobsStorage__blobServiceUri: hostBlobEndpoint
  AzureWebJobsStorage__queueServiceUri: hostQueueEndpoint
  IndicatorStorage__credential: 'managedidentity'
  IndicatorStorage__clientId: identityClientId
  IndicatorStorage__blobServiceUri: dataBlobEndpoint
  IndicatorStorage__queueServiceUri: dataQueueEndpoint
  LOCK_CONTAINER: lockContainerName
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD;ClientId=${identityClientId}'
}

var cloudSettings = empty(azureAuthorityHost) ? {} : { AZURE_AUTHORITY_HOST: azureAuthorityHost }

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false // callers (Logic Apps) authenticate with the function key
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${hostBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: union(platformSettings, contractSettings, cloudSettings)
}

// Deployments authenticate with Entra ID; basic (publishing profile) credentials stay off.
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = site.name
output defaultHostName string = site.properties.defaultHostName
