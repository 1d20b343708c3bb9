// The operator's roles on the Functions host's storage account, so that `func start` with
// local.settings.json pointing at the deployed resources (AzureWebJobsStorage__accountName, no
// credential setting: the host then signs in as the developer) can keep its leases, timer locks,
// Event Hubs checkpoints and diagnostic events there — the same set the app's identity holds
// (hostRoles.bicep). Event Hubs Data Receiver on the twin-changes hub is in eventHubs.bicep,
// PostgreSQL (Entra admin) in postgres.bicep, IoT Hub twin access in iotHub.bicep.

@description('Storage account of the Functions host.')
param storageAccountName string

@description('Object ID of the operator (user or group).')
param principalId string

@description('User or Group.')
param principalType string

var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // Storage Queue Data Contributor
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // Storage Table Data Contributor
}

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

// Blob: leases, timer singleton locks, host keys, Event Hubs checkpoints and ownership (Owner, as the
// Functions docs require for an identity-based AzureWebJobsStorage).
resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, principalId, roles.storageBlobDataOwner)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: principalId
    principalType: principalType
  }
}

// Queue: part of the documented role set for an identity-based AzureWebJobsStorage.
resource queueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, principalId, roles.storageQueueDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: principalId
    principalType: principalType
  }
}

// Table: the host's diagnostic events.
resource tableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, principalId, roles.storageTableDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: principalId
    principalType: principalType
  }
}
