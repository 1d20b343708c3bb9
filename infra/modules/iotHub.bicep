// IoT Hub (S1) whose TwinChangeEvents and DeviceLifecycleEvents are routed to an Event Hub custom endpoint reached with a
// user-assigned identity, with the fallback route kept for device telemetry, and the roles on it.

@description('IoT Hub name.')
param name string

@description('Region.')
param location string

@description('Tags.')
param tags object

@description('S1 units.')
param units int

@description('Resource ID of the user-assigned identity that holds Azure Event Hubs Data Sender on the event hub.')
param identityResourceId string

@description('Event Hubs namespace host name (evhns-x.servicebus.windows.net).')
param eventHubsNamespaceHostName string

@description('Event hub of the twin-change route.')
param eventHubName string

@description('Principal (the app\'s identity) that reads and writes twins.')
param twinContributorPrincipalId string

@description('Optional operator principal that manages devices and sets desired properties by hand; empty: none.')
param operatorPrincipalId string

@description('User or Group.')
param operatorPrincipalType string

@description('Refuse the hub\'s shared access policies (iothubowner, service, …): see iotHubDisableLocalAuth in main.bicep.')
param disableLocalAuth bool

var roles = {
  iotHubTwinContributor: '494bdba2-168f-4f31-a0a1-191d2f7c028c' // IoT Hub Twin Contributor
  iotHubRegistryContributor: '4ea46cd5-c1b2-4a8e-910b-273211f9ce47' // IoT Hub Registry Contributor
}
var twinChangesEndpointName = 'twin-changes'

resource hub 'Microsoft.Devices/IotHubs@2023-06-30' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: 'S1'
    capacity: units
  }
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityResourceId}': {}
    }
  }
  properties: {
    // This app reaches the service API with Entra identities only, so it works either way. But with
    // local auth disabled the hub refuses every hub-level shared access policy (iothubowner,
    // service, registryRead…): the Device Provisioning Service links to its hubs with such a policy,
    // and readers of the built-in endpoint (the `events` Event Hub-compatible endpoint that device
    // telemetry reaches through the fallback route below) typically connect with one too; both
    // stop working. Hence a parameter, off by default; turn it on for fleets that use neither.
    // Devices authenticate with their own keys or X.509 certificates regardless.
    disableLocalAuth: disableLocalAuth
    eventHubEndpoints: {
      events: {
        retentionTimeInDays: 1
        partitionCount: 4
      }
    }
    routing: {
      endpoints: {
        eventHubs: [
          {
            name: twinChangesEndpointName
            authenticationType: 'identityBased'
            identity: {
              userAssignedIdentity: identityResourceId
            }
            endpointUri: 'sb://${eventHubsNamespaceHostName}'
            entityPath: eventHubName
            subscriptionId: subscription().subscriptionId
            resourceGroup: resourceGroup().name
          }
        ]
      }
      routes: [
        {
          name: 'twin-changes'
          source: 'TwinChangeEvents'
          condition: 'true'
          endpointNames: [
            twinChangesEndpointName
          ]
          isEnabled: true
        }
        {
          // Device and module create/delete: the reconciler removes a deleted twin's records and starts
          // a re-created device's twin afresh. Same event hub, so a device's lifecycle and twin events
          // share its partition and keep their order.
          name: 'device-lifecycle'
          source: 'DeviceLifecycleEvents'
          condition: 'true'
          endpointNames: [
            twinChangesEndpointName
          ]
          isEnabled: true
        }
      ]
      // Once any route exists, device telemetry reaches the built-in endpoint only through a route
      // or the fallback route: keep the fallback on so telemetry still arrives there (its readers
      // also need the hub's local auth: see disableLocalAuth above).
      fallbackRoute: {
        name: '$fallback'
        source: 'DeviceMessages'
        condition: 'true'
        endpointNames: [
          'events'
        ]
        isEnabled: true
      }
    }
  }
}

// The app reads twins (resync, re-push) and writes desired properties (re-push): twins only, no
// device registry, no messaging.
resource twinContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hub.id, twinContributorPrincipalId, roles.iotHubTwinContributor)
  scope: hub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.iotHubTwinContributor)
    principalId: twinContributorPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Optional: the operator creates devices and reads their keys (az iot hub device-identity … --auth-type login).
resource operatorRegistry 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(hub.id, operatorPrincipalId, roles.iotHubRegistryContributor)
  scope: hub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.iotHubRegistryContributor)
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}

// Optional: the operator sets desired properties by hand (az iot hub device-twin update … --auth-type login).
resource operatorTwin 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(hub.id, operatorPrincipalId, roles.iotHubTwinContributor)
  scope: hub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.iotHubTwinContributor)
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}

@description('IoT Hub name.')
output name string = hub.name

@description('IoT Hub host name (x.azure-devices.net).')
output hostName string = hub.properties.hostName
