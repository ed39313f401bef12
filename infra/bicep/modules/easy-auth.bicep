// HTTP_AUTH=entra, optional: App Service Authentication in front of the app, as a second gate (the app still
// validates every token itself). It must leave /runtime/webhooks/blobs alone: Event Grid calls the blob
// trigger's webhook with the blobs_extension key and no token, and would be refused (MicrosoftDocs/azure-docs
// #99036, Azure/azure-functions-host #4674). /api/health keeps its function key.

@description('Name of the existing function app.')
param functionAppName string

@description('Client id of the importer\'s app registration.')
param clientId string

@description('Tenant whose tokens are accepted.')
param tenantId string

@description('Login endpoint of the cloud, e.g. https://login.microsoftonline.com (HTTP_AUTH_AUTHORITY_HOST).')
param authorityHost string

@description('Audiences accepted: the identifier URI and the client id.')
param allowedAudiences array

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
      excludedPaths: [
        '/runtime/webhooks/blobs'
        '/api/health'
      ]
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: clientId
          openIdIssuer: '${authorityHost}/${tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: allowedAudiences
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
}
