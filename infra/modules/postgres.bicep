// Azure Database for PostgreSQL Flexible Server with Microsoft Entra authentication only (password
// authentication disabled, so there is no admin password anywhere). The app's identity is an Entra
// admin: it connects with an access token (scope https://ossrdbms-aad.database.windows.net/.default)
// and applies the schema migrations at start-up, which needs DDL rights on the database.
//
// Least privilege instead (manual, once): make only the operator an Entra admin (leave the app out
// of `appAdmin` below), then as that admin, connected to the `postgres` database:
//   SELECT * FROM pgaadauth_create_principal('<app identity name>', false, false);
// and in the application database:
//   GRANT CREATE, USAGE ON SCHEMA public TO "<app identity name>";
// (a non-admin database role cannot be created declaratively through ARM/Bicep).

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

@description('Object (principal) ID of the app\'s user-assigned identity.')
param appPrincipalId string

@description('Name of the app\'s user-assigned identity (its PostgreSQL role name).')
param appPrincipalName string

@description('Optional operator (user or group) object ID made Entra admin too; empty: none.')
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
      publicNetworkAccess: 'Enabled'
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

// Flex Consumption apps without VNet integration call out from shared Azure addresses: allow
// connections from Azure services (every connection still needs an Entra token of an admin/role).
resource allowAzure 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = {
  parent: server
  name: 'AllowAllAzureServicesAndResourcesWithinAzureIps'
  properties: {
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
  dependsOn: [
    database
  ]
}

// Server operations run one at a time: each child waits for the previous one.
resource appAdmin 'Microsoft.DBforPostgreSQL/flexibleServers/administrators@2024-08-01' = {
  parent: server
  name: appPrincipalId
  properties: {
    principalType: 'ServicePrincipal'
    principalName: appPrincipalName
    tenantId: tenant().tenantId
  }
  dependsOn: [
    allowAzure
  ]
}

resource operatorAdmin 'Microsoft.DBforPostgreSQL/flexibleServers/administrators@2024-08-01' = if (!empty(operatorPrincipalId)) {
  parent: server
  name: empty(operatorPrincipalId) ? 'none' : operatorPrincipalId
  properties: {
    principalType: operatorPrincipalType
    principalName: operatorPrincipalName
    tenantId: tenant().tenantId
  }
  dependsOn: [
    appAdmin
  ]
}

@description('Server host name.')
output hostName string = server.properties.fullyQualifiedDomainName

@description('Application database name.')
output databaseName string = database.name
