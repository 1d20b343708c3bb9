// postgresNetwork = 'privateEndpoint': a virtual network whose `app` subnet the Flex Consumption app
// integrates with (delegated to Microsoft.App/environments, as Flex Consumption requires), a private
// endpoint of the PostgreSQL server in the `private-endpoints` subnet, and the private DNS zone that
// makes the server's usual host name resolve to that endpoint inside the network. The app keeps
// connecting to <server>.postgres.database.azure.com; the server refuses public connections.

@description('Virtual network name.')
param name string

@description('Region.')
param location string

@description('Tags.')
param tags object

@description('Address space of the virtual network (two /24 subnets are carved from its start).')
param addressPrefix string

@description('Resource ID of the PostgreSQL flexible server the private endpoint connects to.')
param postgresServerId string

var appSubnetPrefix = cidrSubnet(addressPrefix, 24, 0)
var privateEndpointSubnetPrefix = cidrSubnet(addressPrefix, 24, 1)
// The zone Azure Database for PostgreSQL flexible server private endpoints register in.
var postgresPrivateDnsZone = 'privatelink.postgres.database.azure.com'

resource vnet 'Microsoft.Network/virtualNetworks@2023-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: 'app'
        properties: {
          addressPrefix: appSubnetPrefix
          // The app still calls IoT Hub, Event Hubs and storage on their public endpoints: keep the
          // subnet's default outbound access (or attach a NAT gateway for a fixed egress address).
          defaultOutboundAccess: true
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
      {
        name: 'private-endpoints'
        properties: {
          addressPrefix: privateEndpointSubnetPrefix
          privateEndpointNetworkPolicies: 'Disabled'
        }
      }
    ]
  }
}

resource dnsZone 'Microsoft.Network/privateDnsZones@2024-06-01' = {
  name: postgresPrivateDnsZone
  location: 'global'
  tags: tags
}

resource dnsLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = {
  parent: dnsZone
  name: '${name}-link'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}

resource postgresEndpoint 'Microsoft.Network/privateEndpoints@2023-11-01' = {
  name: '${name}-postgres'
  location: location
  tags: tags
  properties: {
    subnet: {
      id: vnet.properties.subnets[1].id
    }
    privateLinkServiceConnections: [
      {
        name: 'postgres'
        properties: {
          privateLinkServiceId: postgresServerId
          groupIds: [
            'postgresqlServer'
          ]
        }
      }
    ]
  }
}

resource postgresEndpointDns 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2023-11-01' = {
  parent: postgresEndpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: 'postgres'
        properties: {
          privateDnsZoneId: dnsZone.id
        }
      }
    ]
  }
  dependsOn: [
    dnsLink
  ]
}

@description('Resource ID of the subnet the Function App integrates with.')
output appSubnetId string = vnet.properties.subnets[0].id
