// Azure Database for PostgreSQL Flexible Server with Microsoft Entra authentication only (password
// authentication disabled, so there is no admin password anywhere).
//
// Who is what:
//   - the operator (a person or, better, an Entra group) is the only Entra admin; as admin it runs the
//     schema migrations and the one-time database setup (local/cli/postgresSetup.ts, run by `azd up`'s
//     postprovision hook or by hand), which creates the app identity's database principal
//     (pgaadauth_create_principal_with_oid) and grants it the least-privilege role
//     `twin_reconciler_app` that migration 008 defines;
//   - the app's managed identity is NOT an admin: it signs in as that principal (its identity's name)
//     with an Entra access token and holds only what twin_reconciler_app grants.
// A non-admin database principal cannot be created through ARM/Bicep, hence the setup step.
//
// Network (postgresNetwork in main.bicep):
//   - 'privateEndpoint': the server is reached through a private endpoint (modules/network.bicep);
//     public access is off unless allowedIps lists addresses (e.g. the operator's, for the setup);
//   - 'allowList': public access, limited to allowedIps. There is no 0.0.0.0 ("all of Azure") rule
//     unless allowedIps names '0.0.0.0' explicitly.

@description('Server name.')
param name string

@description('Region.')
param location string

@description('Tags.')
param tags object

@description('Compute SKU, e.g. Standard_B1ms.')
param skuName string

@description('Tier of skuName.')
param tier string

@description('PostgreSQL major version.')
param version string

@description('Storage in GB.')
param storageSizeGB int

@description('Application database name.')
param databaseName string

@description('privateEndpoint or allowList.')
param network string

@description('Addresses allowed through the firewall: \'1.2.3.4\' or \'1.2.3.4-1.2.3.9\'; \'0.0.0.0\' is Azure\'s "allow Azure services" rule.')
param allowedIps array

@description('Object ID of the operator (user or group): the Entra admin.')
param operatorPrincipalId string

@description('Display name of the operator principal.')
param operatorPrincipalName string

@description('User or Group.')
param operatorPrincipalType string

resource server 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
    tier: tier
  }
  properties: {
    version: version
    storage: {
      storageSizeGB: storageSizeGB
    }
    authConfig: {
      activeDirectoryAuth: 'Enabled'
      passwordAuth: 'Disabled'
      tenantId: tenant().tenantId
    }
    backup: {
      backupRetentionDays: 7
      geoRedundantBackup: 'Disabled'
    }
    highAvailability: {
      mode: 'Disabled'
    }
    network: {
      publicNetworkAccess: network == 'allowList' || !empty(allowedIps) ? 'Enabled' : 'Disabled'
    }
  }
}

resource database 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = {
  parent: server
  name: databaseName
  properties: {
    charset: 'UTF8'
    collation: 'en_US.utf8'
  }
}

// Server operations run one at a time: each child waits for the previous one.
@batchSize(1)
resource firewall 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = [for (ip, i) in allowedIps: {
  parent: server
  name: ip == '0.0.0.0' ? 'AllowAllAzureServicesAndResourcesWithinAzureIps' : 'allow-${i}'
  properties: {
    startIpAddress: first(split(ip, '-'))
    endIpAddress: last(split(ip, '-'))
  }
  dependsOn: [
    database
  ]
}]

resource operatorAdmin 'Microsoft.DBforPostgreSQL/flexibleServers/administrators@2024-08-01' = {
  parent: server
  name: operatorPrincipalId
  properties: {
    principalType: operatorPrincipalType
    principalName: operatorPrincipalName
    tenantId: tenant().tenantId
  }
  dependsOn: [
    database
    firewall
  ]
}

@description('Server host name.')
output hostName string = server.properties.fullyQualifiedDomainName

@description('Application database name.')
output databaseName string = database.name

@description('Server resource ID.')
output id string = server.id
