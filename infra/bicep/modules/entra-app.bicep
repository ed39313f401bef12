// HTTP_AUTH=entra: the app registration callers get tokens for, with the two app roles the app checks
// (shared/app/auth.py) and an identifier URI, plus its service principal. Needs Microsoft Graph rights
// (infra/README.md "Who can deploy"). Role and scope ids are fixed values, the same as in Terraform.
extension microsoftGraphV1

@description('Unique name of the registration (a deploy-time key), e.g. ioc-importer-iocimp7f3k.')
param uniqueName string

@description('Display name of the registration.')
param displayName string

@description('Pre-authorise the Azure CLI (04b07795-8ddb-461a-bbee-02f9e1bf7b46) for the user_impersonation scope, so analysts\' scripts get tokens without a consent prompt.')
param preAuthorizeAzureCli bool

// Fixed ids (an app role id is unique within its application; keeping them constant keeps grants stable).
var importRoleId = 'a792c963-aa74-469d-b291-a01f5211bb25' // Indicators.Import
var readRoleId = 'd4b5e528-c62d-408a-adf0-1351e58da8ff' // Indicators.Read
var userImpersonationScopeId = '6f1f29c0-0527-4474-9ce5-3315ee909826'
var azureCliAppId = '04b07795-8ddb-461a-bbee-02f9e1bf7b46' // Microsoft Azure CLI, the same in every tenant

// api://<tenant id>/<unique name>: carries the tenant id, as Entra's default identifier-URI policy asks
// (a Bicep resource cannot name its own appId, so api://<appId> is not available here).
var azureCliPreAuthorized = [
  {
    appId: azureCliAppId
    delegatedPermissionIds: [
      userImpersonationScopeId
    ]
  }
]

var identifierUri = 'api://${tenant().tenantId}/${uniqueName}'

resource api 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: uniqueName
  displayName: displayName
  signInAudience: 'AzureADMyOrg'
  identifierUris: [
    identifierUri
  ]
  appRoles: [
    {
      id: importRoleId
      value: 'Indicators.Import'
      displayName: 'Import indicators'
      description: 'POST indicators to the IOC importer and read the status of the caller\'s own import jobs.'
      allowedMemberTypes: [
        'Application'
        'User'
      ]
      isEnabled: true
    }
    {
      id: readRoleId
      value: 'Indicators.Read'
      displayName: 'Read import jobs'
      description: 'Read the status and result of any import job of the IOC importer.'
      allowedMemberTypes: [
        'Application'
        'User'
      ]
      isEnabled: true
    }
  ]
  api: {
    // 1 (v1 tokens): what a managed identity gets for a custom API; the app accepts v2 tokens as well.
    requestedAccessTokenVersion: 1
    oauth2PermissionScopes: [
      {
        id: userImpersonationScopeId
        value: 'user_impersonation'
        type: 'User'
        isEnabled: true
        adminConsentDisplayName: 'Call the IOC importer as the signed-in user'
        adminConsentDescription: 'Lets the application call the IOC importer\'s HTTP API for the signed-in user; the user\'s app roles still decide what is allowed.'
        userConsentDisplayName: 'Call the IOC importer for you'
        userConsentDescription: 'Lets the application call the IOC importer\'s HTTP API for you.'
      }
    ]
    preAuthorizedApplications: preAuthorizeAzureCli ? azureCliPreAuthorized : []
  }
}

resource apiSp 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: api.appId
  // Only principals granted a role get tokens for the app at all (the app checks the role again).
  appRoleAssignmentRequired: true
}

output appId string = api.appId
output identifierUri string = identifierUri
// HTTP_AUTH_AUDIENCE: a v1 token carries the identifier URI it was requested for, a v2 token the client id.
output audience string = '${identifierUri},${api.appId}'
output servicePrincipalId string = apiSp.id
output importRoleId string = importRoleId
output readRoleId string = readRoleId
