// HTTP_AUTH=entra, optional: a Consumption Logic App that calls the importer with its system-assigned
// identity (no key anywhere). Its workflow is infra/logicapp/import-indicators.workflow.json, the same file
// Terraform deploys: once a day one HTTP action posts two sample indicators (dryRun=true unless set otherwise)
// with ManagedServiceIdentity authentication and the asynchronous pattern left on, so a 202 is polled on its
// Location with the same identity's token.

@description('Logic App (workflow) name.')
param name string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('The importer\'s import route, https://<host>/api/indicators/import.')
param importUrl string

@description('Audience the identity asks a token for: the registration\'s identifier URI.')
param audience string

@description('Send the sample with dryRun=true (validate and report only).')
param dryRun bool

resource workflow 'Microsoft.Logic/workflows@2019-05-01' = {
  name: name
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    state: 'Enabled'
    definition: loadJsonContent('../../logicapp/import-indicators.workflow.json')
    parameters: {
      importUrl: {
        value: importUrl
      }
      audience: {
        value: audience
      }
      dryRun: {
        value: dryRun ? 'true' : 'false'
      }
    }
  }
}

output name string = workflow.name
output principalId string = workflow.identity.principalId
