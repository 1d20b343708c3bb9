// Event Hubs namespace (Standard, local auth disabled) with the twin-changes event hub, the app's
// consumer group, and the two data-plane roles scoped to that one event hub.

@description('Event Hubs namespace name.')
param namespaceName string

@description('Region.')
param location string

@description('Tags.')
param tags object

@description('Event hub the IoT Hub route feeds.')
param eventHubName string

@description('Consumer group of the reconcile function.')
param consumerGroupName string

@description('Partitions of the event hub.')
param partitionCount int

@description('Days events are kept.')
param retentionDays int

@description('Principal (IoT Hub\'s identity) that sends the routed events.')
param senderPrincipalId string

@description('Principal (the app\'s identity) that receives them.')
param receiverPrincipalId string

@description('The operator (a user or group), who may also receive them: `func start` against the deployed hub, through its own consumer group.')
param developerPrincipalId string

@description('User or Group.')
param developerPrincipalType string

@description('Consumer group of a developer\'s local host (`func start`), so it never takes partitions from the deployed app.')
param developerConsumerGroupName string

var roles = {
  eventHubsDataSender: '2b629674-e913-4c01-ae53-ef4638d8f975' // Azure Event Hubs Data Sender
  eventHubsDataReceiver: 'a638d3c7-ab3a-418d-83e6-5f17a39d4fde' // Azure Event Hubs Data Receiver
}

resource namespace 'Microsoft.EventHub/namespaces@2024-01-01' = {
  name: namespaceName
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
    capacity: 1
  }
  properties: {
    // Entra ID only: no SAS keys to leak.
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource eventHub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' = {
  parent: namespace
  name: eventHubName
  properties: {
    partitionCount: partitionCount
    messageRetentionInDays: retentionDays
  }
}

resource consumerGroup 'Microsoft.EventHub/namespaces/eventhubs/consumergroups@2024-01-01' = {
  parent: eventHub
  name: consumerGroupName
  properties: {
    userMetadata: 'Twin Reconciler: reconcileTwinChanges'
  }
}

resource developerConsumerGroup 'Microsoft.EventHub/namespaces/eventhubs/consumergroups@2024-01-01' = {
  parent: eventHub
  name: developerConsumerGroupName
  properties: {
    userMetadata: 'Twin Reconciler: a developer\'s func start against this hub'
  }
}

// IoT Hub's identity sends the routed twin-change events into this event hub only.
resource senderRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(eventHub.id, senderPrincipalId, roles.eventHubsDataSender)
  scope: eventHub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventHubsDataSender)
    principalId: senderPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The app's identity reads this event hub only (the trigger's checkpoints live in host storage).
resource receiverRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(eventHub.id, receiverPrincipalId, roles.eventHubsDataReceiver)
  scope: eventHub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventHubsDataReceiver)
    principalId: receiverPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The operator reads this event hub only, e.g. `func start` with local.settings.json pointing here.
resource developerReceiverRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(eventHub.id, developerPrincipalId, roles.eventHubsDataReceiver)
  scope: eventHub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventHubsDataReceiver)
    principalId: developerPrincipalId
    principalType: developerPrincipalType
  }
}

@description('Namespace host name, e.g. evhns-x.servicebus.windows.net (serviceBusEndpoint is https://<host>:443/).')
output fullyQualifiedNamespace string = replace(replace(namespace.properties.serviceBusEndpoint, 'https://', ''), ':443/', '')

@description('Event hub name.')
output eventHubName string = eventHub.name

@description('Consumer group name.')
output consumerGroupName string = consumerGroup.name

@description('Consumer group of a developer\'s local host.')
output developerConsumerGroupName string = developerConsumerGroup.name
