// Second step, after the code is deployed: subscribe the blobs-extension webhook of
// `import_dropped_file` to BlobCreated events in the indicators container. The blobs_extension
// key and the webhook handshake exist only once the function is deployed
// (azure-functions-conventions.md, P2 and "Event Grid subscription wiring"); the same
// subscription is what infra/scripts/create-event-subscription.sh creates.

@description('Existing Event Grid system topic on the data account.')
param systemTopicName string

@description('Function app name.')
param functionAppName string

@description('Container watched for dropped files.')
param indicatorsContainerName string

@description('Resource id of the data storage account (dead-letter destination).')
param dataStorageId string

@description('Dead-letter container on the data account.')
param deadLetterContainerName string

@description('Resource id of the user-assigned managed identity (dead-letter writer).')
param identityId string

@description('Event Grid delivery attempts before dead-lettering.')
@minValue(1)
@maxValue(30)
param maxDeliveryAttempts int

@description('Minutes Event Grid keeps retrying one event.')
@minValue(1)
@maxValue(1440)
param eventTimeToLiveInMinutes int

// CONTRACT.md "Function names": renaming the function breaks this subscription (P4).
var functionName = 'import_dropped_file'

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = {
  name: systemTopicName
}

var blobsExtensionKey = listKeys('${site.id}/host/default', '2024-04-01').systemKeys.blobs_extension

resource subscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = {
  parent: topic
  name: 'import-dropped-file'
  properties: {
    destination: {
      // WebHook to the blobs extension, not an AzureFunction endpoint (that targets Event Grid
      // triggers; P4).
      endpointType: 'WebHook'
      properties: {
        endpointUrl: 'https://${site.properties.defaultHostName}/runtime/webhooks/blobs?functionName=Host.Functions.${functionName}&code=${blobsExtensionKey}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      // Only the watched container: reports go elsewhere and never re-trigger (convention 8).
      subjectBeginsWith: '/blobServices/default/containers/${indicatorsContainerName}/'
      advancedFilters: [
        {
          // Skips the empty CreateFile event of hierarchical-namespace accounts.
          operatorType: 'StringIn'
          key: 'data.api'
          values: [
            'PutBlob'
            'PutBlockList'
            'FlushWithClose'
            'CopyBlob'
          ]
        }
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'UserAssigned'
        userAssignedIdentity: identityId
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: dataStorageId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

output name string = subscription.name
