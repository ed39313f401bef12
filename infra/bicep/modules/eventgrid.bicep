// The Event Grid system topic on the data account. Only one system topic per source is allowed
// (azure-functions-conventions.md, P3), so this module owns it and subscriptions are added to it.
// The topic carries the app's identity so that dead-lettering authenticates with Entra ID.

@description('System topic name.')
param name string

@description('Azure region (the data account\'s region).')
param location string

@description('Tags for every resource.')
param tags object

@description('Resource id of the data storage account.')
param dataStorageId string

@description('Resource id of the user-assigned managed identity.')
param identityId string

resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: name
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    source: dataStorageId
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

output name string = topic.name
