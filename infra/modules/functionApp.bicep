// Flex Consumption plan and Function App (Linux, Node) running as a user-assigned identity, with
// its deployment package in a blob container reached through that identity. The app settings come
// from main.bicep, where they are reviewed (and checked against shared/config.ts by the tests).
// Flex Consumption sets the runtime in functionAppConfig: FUNCTIONS_WORKER_RUNTIME and
// FUNCTIONS_EXTENSION_VERSION are not allowed as app settings.

@description('Function App name.')
param name string

@description('Flex Consumption plan name.')
param planName string

@description('Region.')
param location string

@description('Tags.')
param tags object

@description('Node.js version.')
param nodeVersion string

@description('Memory of each instance, in MB.')
param instanceMemoryMB int

@description('Most instances.')
param maximumInstanceCount int

@description('Resource ID of the app\'s user-assigned identity.')
param identityResourceId string

@description('Storage account holding the deployment container.')
param storageAccountName string

@description('Blob container of the deployment package.')
param deploymentContainerName string

@description('App settings: [{ name, value }].')
param appSettings array

@description('Subnet (delegated to Microsoft.App/environments) the app integrates with, so it reaches the PostgreSQL private endpoint; empty: no virtual network integration.')
param virtualNetworkSubnetId string

@description('Name of this app\'s service in azure.yaml: `azd deploy` finds the app by its azd-service-name tag.')
param azdServiceName string

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': azdServiceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityResourceId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Flex Consumption virtual network integration: outbound calls (PostgreSQL's private endpoint,
    // resolved through the linked private DNS zone) leave through this subnet.
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      appSettings: appSettings
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageAccount.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityResourceId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'node'
        version: nodeVersion
      }
    }
  }
}

@description('Function App name.')
output name string = site.name

@description('Default host name.')
output defaultHostName string = site.properties.defaultHostName
