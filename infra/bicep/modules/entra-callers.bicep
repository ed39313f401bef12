// HTTP_AUTH=entra: grants the app roles of the importer's registration to its callers (managed identities,
// service principals, users or groups, by object id), the Logic App's identity included. Needs Microsoft
// Graph AppRoleAssignment.ReadWrite.All and Application.Read.All (infra/README.md "Who can deploy").
extension microsoftGraphV1

@description('Object id of the importer\'s service principal (the resource of the grants).')
param servicePrincipalId string

@description('Id of the Indicators.Import app role.')
param importRoleId string

@description('Id of the Indicators.Read app role.')
param readRoleId string

@description('Object ids granted Indicators.Import (POST, and the status of their own jobs).')
param importPrincipalIds array

@description('Object ids granted Indicators.Read (the status of any job).')
param readPrincipalIds array

resource importers 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [
  for principalId in importPrincipalIds: {
    resourceId: servicePrincipalId
    appRoleId: importRoleId
    principalId: principalId
  }
]

resource readers 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [
  for principalId in readPrincipalIds: {
    resourceId: servicePrincipalId
    appRoleId: readRoleId
    principalId: principalId
  }
]
