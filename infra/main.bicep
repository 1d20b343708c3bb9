// Twin Reconciler in Azure: IoT Hub routes twin-change events to an Event Hub; a Flex Consumption
// Function App (user-assigned identity) reconciles them into Azure Database for PostgreSQL (Entra
// auth only), re-pushes stale desired properties through the IoT Hub service API, and serves the
// compliance reports. Every connection is identity-based: no keys, connection strings or passwords.
//
//   azd up                       (azure.yaml; infra/main.parameters.json maps azd's environment)
//   az deployment group create -g <rg> -f infra/main.bicep -p environmentName=… operatorPrincipalId=… operatorPrincipalName=…
//
// The app settings below are exactly what shared/config.ts reads (minus its local-only settings)
// plus the Functions host's own; test/infra/infraMatchesCode.test.ts keeps the two in step.

targetScope = 'resourceGroup'

@description('Short name of this deployment (e.g. prod, dev). Seeds the unique resource names.')
@minLength(1)
@maxLength(16)
param environmentName string

@description('Region of every resource. Flex Consumption must be available there (az functionapp list-flexconsumption-locations).')
param location string = resourceGroup().location

@description('Tags for every resource.')
param tags object = {}

@description('Node.js version of the Function App.')
@allowed([
  '20'
  '22'
])
param nodeVersion string = '20'

@description('Memory of each Flex Consumption instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Most Flex Consumption instances the app scales out to. Event Hub scale-out is bounded by the partition count anyway. Each instance opens up to postgresPoolMax PostgreSQL connections: see the connection budget below.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 10

@description('Partitions of the twin-changes event hub (the reconcile function scales out to at most this many instances).')
@minValue(1)
@maxValue(32)
param eventHubPartitionCount int = 4

@description('Days the twin-changes event hub keeps events (a new consumer group starts from the oldest one).')
@minValue(1)
@maxValue(7)
param eventHubRetentionDays int = 1

@description('IoT Hub units (S1: 400,000 messages/day, 100 twin reads/s and 50 twin updates/s per hub).')
@minValue(1)
@maxValue(200)
param iotHubUnits int = 1

@description('PostgreSQL Flexible Server compute SKU.')
param postgresSkuName string = 'Standard_B1ms'

@description('PostgreSQL Flexible Server tier of that SKU.')
@allowed([
  'Burstable'
  'GeneralPurpose'
  'MemoryOptimized'
])
param postgresTier string = 'Burstable'

@description('PostgreSQL major version.')
@allowed([
  '15'
  '16'
  '17'
])
param postgresVersion string = '16'

@description('PostgreSQL storage, in GB.')
param postgresStorageSizeGB int = 32

@description('Name of the application database.')
param postgresDatabaseName string = 'twin_reconciler'

@description('PostgreSQL connections each app instance may open (POSTGRES_POOL_MAX). maximumInstanceCount x postgresPoolMax + postgresSpareConnections must fit the server\'s user connections, or the deployment fails.')
@minValue(1)
@maxValue(100)
param postgresPoolMax int = 3

@description('Server connections kept free of the app: an operator\'s psql, the portal, migrations applied by hand.')
@minValue(0)
param postgresSpareConnections int = 5

@description('The server\'s max_connections if changed from its SKU\'s default; 0: the default of postgresSkuName.')
@minValue(0)
@maxValue(5000)
param postgresMaxConnections int = 0

@description('Object ID of the person or (better) Entra group who operates the system: the only PostgreSQL Entra admin (runs migrations and the database setup), IoT Hub Registry and Twin Contributor (create devices, set desired properties with `--auth-type login`), and the developer roles that let `func start` run against the deployed resources (Event Hubs Data Receiver on the twin-changes hub, the host\'s storage roles). azd passes the signed-in user (AZURE_PRINCIPAL_ID).')
@minLength(36)
param operatorPrincipalId string

@description('Name of operatorPrincipalId as PostgreSQL knows it: the user principal name of a user, the display name of a group. The operator signs in to PostgreSQL with this name.')
@minLength(1)
param operatorPrincipalName string

@description('Kind of operatorPrincipalId.')
@allowed([
  'User'
  'Group'
])
param operatorPrincipalType string = 'User'

@description('Refuse IoT Hub\'s shared access policies (iothubowner, service, …). The app never uses them, but the Device Provisioning Service links to hubs with one and readers of the built-in (Event Hub-compatible) endpoint usually connect with one: leave false if the fleet uses either; true for fleets that use neither.')
param iotHubDisableLocalAuth bool = false

@description('How the app reaches PostgreSQL. privateEndpoint: a virtual network, Flex Consumption VNet integration and a private endpoint, public access off (unless postgresAllowedIps lists addresses). allowList: public access restricted to postgresAllowedIps (the app has no fixed outbound address: list \'0.0.0.0\', Azure\'s "all Azure services" rule, only if you accept that).')
@allowed([
  'privateEndpoint'
  'allowList'
])
param postgresNetwork string = 'privateEndpoint'

@description('Addresses PostgreSQL\'s firewall admits: \'203.0.113.7\' or \'203.0.113.0-203.0.113.255\'. Add the operator\'s address to run the database setup from outside the virtual network. Empty with privateEndpoint: no public access at all.')
param postgresAllowedIps array = []

@description('Address space of the virtual network (postgresNetwork = privateEndpoint); its first two /24 are the app and private endpoint subnets.')
param vnetAddressPrefix string = '10.40.0.0/16'

@description('Token-bucket rate shared by every twin read and update the app makes (S1 allows 100 reads/s and 50 updates/s per hub, shared with every other client).')
param hubTwinOpsPerSecond int = 10

@description('NCRONTAB schedule (6 fields) of the re-push timer.')
param repushSchedule string = '0 * * * * *'

@description('Most devices re-pushed per timer run.')
param repushMaxDevicesPerRun int = 100

@description('First re-push back-off (e.g. 2m, PT2M).')
param repushBackoffBase string = '2m'

@description('Longest re-push back-off.')
param repushBackoffCap string = '1h'

@description('Re-pushes before a property is escalated.')
param repushMaxAttempts int = 5

@description('Decide re-pushes but never write twins.')
param repushDryRun bool = false

@description('How long a timer run holds its claim on a device.')
param repushLease string = '5m'

@description('Property history kept for this long (e.g. 90d, P90D; 1d to 365d).')
param historyRetention string = '90d'

@description('Dead letters kept for this long (1d to 365d).')
param deadLetterRetention string = '30d'

@description('NCRONTAB schedule (6 fields) of the retention timer.')
param retentionSchedule string = '0 0 * * * *'
@description('NCRONTAB schedule (6 fields) that starts a fleet sync pass (a twin query over every device and module twin).')
param fleetSyncSchedule string = '0 0 3 * * *'

@description('Twins per twin-query page (x-ms-max-item-count).')
param fleetSyncPageSize int = 1000

@description('How long one timer run works on a fleet sync pass before saving its place (well under the function timeout).')
param fleetSyncRunBudget string = '4m'

@description('Twin queries per minute the app may use: S1 and S2 allow 20 per minute per unit, S3 1,000, shared with every other client.')
param hubQueriesPerMinute int = 20

@description('NCRONTAB schedule of the resync queue (it also continues an unfinished fleet sync pass).')
param resyncSchedule string = '30 * * * * *'

@description('First back-off of a twin whose resync failed.')
param resyncBackoffBase string = '1m'

@description('Longest resync back-off.')
param resyncBackoffCap string = '1h'

@description('Compliance policy file inside the deployed package (relative to the app root). Empty: POLICY_JSON or the default policy.')
param policyPath string = ''

@description('Compliance policy as inline JSON. Empty: POLICY_PATH or the default policy. Set at most one of the two.')
param policyJson string = ''

@description('E-mail address that receives the alerts (infra/modules/alerts.bicep). Empty: the rules still fire and show in Azure Monitor, but no action group notifies anyone.')
param alertEmail string = ''

@description('Hours since the last complete fleet sync pass after which the "fleet sync overdue" alert fires (the default schedule runs a pass daily).')
@minValue(1)
param fleetSyncOverdueHours int = 26

@description('Failed invocations of one function within 15 minutes that raise the "function keeps failing" alert.')
@minValue(1)
param functionFailureThreshold int = 3

var resourceToken = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName))
var functionAppName = 'func-twinrec-${resourceToken}'
var deploymentContainerName = 'app-package'
var twinEventsHubName = 'twin-changes'
var twinEventsConsumerGroup = 'twin-reconciler'

// PostgreSQL connection budget. Default max_connections of each compute SKU, of which the service
// reserves 15 for replication and monitoring ("Maximum connections",
// https://learn.microsoft.com/azure/postgresql/flexible-server/concepts-limits; B1ms: 50, so 35 for users).
// Every instance holds one pool (shared/runtime.ts), so at full scale-out the app opens
// maximumInstanceCount x postgresPoolMax connections. The built-in PgBouncer is not used: the default
// Burstable tier does not offer it.
var postgresDefaultMaxConnections = {
  Standard_B1ms: 50
  Standard_B2s: 429
  Standard_B2ms: 859
  Standard_B4ms: 1718
  Standard_B8ms: 3437
  Standard_B12ms: 5000
  Standard_B16ms: 5000
  Standard_B20ms: 5000
  Standard_D2s_v3: 859
  Standard_D2ds_v4: 859
  Standard_D2ds_v5: 859
  Standard_D2ads_v5: 859
  Standard_D4s_v3: 1718
  Standard_D4ds_v4: 1718
  Standard_D4ds_v5: 1718
  Standard_D4ads_v5: 1718
  Standard_D8s_v3: 3437
  Standard_D8ds_v4: 3437
  Standard_D8ds_v5: 3437
  Standard_D8ads_v5: 3437
  Standard_E2s_v3: 1718
  Standard_E2ds_v4: 1718
  Standard_E2ds_v5: 1718
  Standard_E2ads_v5: 1718
  Standard_E4s_v3: 3437
  Standard_E4ds_v4: 3437
  Standard_E4ds_v5: 3437
  Standard_E4ads_v5: 3437
}
var postgresReservedConnections = 15
var postgresServerConnections = postgresMaxConnections > 0 ? postgresMaxConnections : contains(postgresDefaultMaxConnections, postgresSkuName) ? postgresDefaultMaxConnections[postgresSkuName] : fail('postgresSkuName ${postgresSkuName} is not in postgresDefaultMaxConnections: set postgresMaxConnections to its max_connections')
var postgresUserConnections = postgresServerConnections - postgresReservedConnections
var postgresConnectionBudget = maximumInstanceCount * postgresPoolMax + postgresSpareConnections
// The app setting uses this value, so a budget that does not fit stops the deployment.
var postgresPoolMaxChecked = postgresConnectionBudget <= postgresUserConnections ? postgresPoolMax : fail('PostgreSQL connection budget exceeded: maximumInstanceCount (${maximumInstanceCount}) x postgresPoolMax (${postgresPoolMax}) + postgresSpareConnections (${postgresSpareConnections}) = ${postgresConnectionBudget}, above the ${postgresUserConnections} user connections of the server. Lower maximumInstanceCount or postgresPoolMax, or choose a larger postgresSkuName.')

// ---------------------------------------------------------------------------------------------
// Identities: one for the app (every data-plane call it makes), one for IoT Hub (sending routed
// events). A user-assigned identity for IoT Hub can hold its Event Hubs role *before* the hub is
// created, so IoT Hub's endpoint validation at creation succeeds.
// ---------------------------------------------------------------------------------------------
module appIdentity 'br/public:avm/res/managed-identity/user-assigned-identity:0.4.1' = {
  name: 'appIdentity'
  params: {
    name: 'id-twinrec-app-${resourceToken}'
    location: location
    tags: tags
  }
}

module iotHubIdentity 'br/public:avm/res/managed-identity/user-assigned-identity:0.4.1' = {
  name: 'iotHubIdentity'
  params: {
    name: 'id-twinrec-iothub-${resourceToken}'
    location: location
    tags: tags
  }
}

// ---------------------------------------------------------------------------------------------
// Monitoring: Application Insights on Log Analytics, local (key) auth disabled: the app sends
// telemetry with its identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING).
// ---------------------------------------------------------------------------------------------
module logAnalytics 'br/public:avm/res/operational-insights/workspace:0.7.0' = {
  name: 'logAnalytics'
  params: {
    name: 'log-twinrec-${resourceToken}'
    location: location
    tags: tags
    dataRetention: 30
  }
}

module appInsights 'br/public:avm/res/insights/component:0.4.1' = {
  name: 'appInsights'
  params: {
    name: 'appi-twinrec-${resourceToken}'
    location: location
    tags: tags
    workspaceResourceId: logAnalytics.outputs.resourceId
    kind: 'web'
    applicationType: 'web'
    disableLocalAuth: true
  }
}

// Alert rules on the app's metrics and the host's invocations, and the operator's workbook.
module alerts './modules/alerts.bicep' = {
  name: 'alerts'
  params: {
    namePrefix: 'twinrec-${resourceToken}'
    location: location
    tags: tags
    appInsightsId: appInsights.outputs.resourceId
    alertEmail: alertEmail
    fleetSyncOverdueHours: fleetSyncOverdueHours
    functionFailureThreshold: functionFailureThreshold
  }
}

module workbook './modules/workbook.bicep' = {
  name: 'workbook'
  params: {
    displayName: 'Twin Reconciler (${environmentName})'
    location: location
    tags: tags
    appInsightsId: appInsights.outputs.resourceId
  }
}

// ---------------------------------------------------------------------------------------------
// Storage for the Functions host (leases, Event Hubs checkpoints, diagnostics) and the Flex
// Consumption deployment package. Shared-key access is disabled: identity only.
// ---------------------------------------------------------------------------------------------
module storage 'br/public:avm/res/storage/storage-account:0.13.2' = {
  name: 'storage'
  params: {
    name: 'sttwinrec${resourceToken}'
    location: location
    tags: tags
    kind: 'StorageV2'
    skuName: 'Standard_LRS'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    minimumTlsVersion: 'TLS1_2'
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    blobServices: {
      containers: [
        {
          name: deploymentContainerName
        }
      ]
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Event Hubs: the twin-changes hub, the app's consumer group, and the two data-plane roles
// (IoT Hub's identity sends, the app's identity receives), both scoped to the one event hub.
// ---------------------------------------------------------------------------------------------
module eventHubs './modules/eventHubs.bicep' = {
  name: 'eventHubs'
  params: {
    namespaceName: 'evhns-twinrec-${resourceToken}'
    location: location
    tags: tags
    eventHubName: twinEventsHubName
    consumerGroupName: twinEventsConsumerGroup
    partitionCount: eventHubPartitionCount
    retentionDays: eventHubRetentionDays
    senderPrincipalId: iotHubIdentity.outputs.principalId
    receiverPrincipalId: appIdentity.outputs.principalId
    developerPrincipalId: operatorPrincipalId
    developerPrincipalType: operatorPrincipalType
    developerConsumerGroupName: '${twinEventsConsumerGroup}-dev'
  }
}

// ---------------------------------------------------------------------------------------------
// IoT Hub: route TwinChangeEvents to the event hub (identity-based endpoint), keep the fallback
// route so device telemetry still reaches the built-in endpoint; the app may read and write twins.
// ---------------------------------------------------------------------------------------------
module iotHub './modules/iotHub.bicep' = {
  name: 'iotHub'
  params: {
    name: 'iot-twinrec-${resourceToken}'
    location: location
    tags: tags
    units: iotHubUnits
    identityResourceId: iotHubIdentity.outputs.resourceId
    eventHubsNamespaceHostName: eventHubs.outputs.fullyQualifiedNamespace
    eventHubName: eventHubs.outputs.eventHubName
    twinContributorPrincipalId: appIdentity.outputs.principalId
    operatorPrincipalId: operatorPrincipalId
    operatorPrincipalType: operatorPrincipalType
    disableLocalAuth: iotHubDisableLocalAuth
  }
  // The route's endpoint is validated when the hub is created: the sender role must exist first.
  dependsOn: [
    eventHubs
  ]
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL: Entra authentication only. The operator is the Entra admin; the app's identity is a
// least-privilege database principal created by the setup step (see modules/postgres.bicep).
// ---------------------------------------------------------------------------------------------
module postgres './modules/postgres.bicep' = {
  name: 'postgres'
  params: {
    name: 'psql-twinrec-${resourceToken}'
    location: location
    tags: tags
    skuName: postgresSkuName
    tier: postgresTier
    version: postgresVersion
    storageSizeGB: postgresStorageSizeGB
    databaseName: postgresDatabaseName
    network: postgresNetwork
    allowedIps: postgresAllowedIps
    operatorPrincipalId: operatorPrincipalId
    operatorPrincipalName: operatorPrincipalName
    operatorPrincipalType: operatorPrincipalType
  }
}

// Private networking for PostgreSQL (postgresNetwork = privateEndpoint).
module network './modules/network.bicep' = if (postgresNetwork == 'privateEndpoint') {
  name: 'network'
  params: {
    name: 'vnet-twinrec-${resourceToken}'
    location: location
    tags: tags
    addressPrefix: vnetAddressPrefix
    postgresServerId: postgres.outputs.id
  }
}

// ---------------------------------------------------------------------------------------------
// The Functions host's roles on its storage account and Application Insights.
// ---------------------------------------------------------------------------------------------
module hostRoles './modules/hostRoles.bicep' = {
  name: 'hostRoles'
  params: {
    storageAccountName: storage.outputs.name
    appInsightsName: appInsights.outputs.name
    principalId: appIdentity.outputs.principalId
  }
}

// The operator's developer roles on the host storage, so `func start` runs against Azure.
module developerRoles './modules/developerRoles.bicep' = {
  name: 'developerRoles'
  params: {
    storageAccountName: storage.outputs.name
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}

// ---------------------------------------------------------------------------------------------
// The Function App (Flex Consumption, Node). App settings: identity-based connections only.
// ---------------------------------------------------------------------------------------------
module functionApp './modules/functionApp.bicep' = {
  name: 'functionApp'
  params: {
    name: functionAppName
    planName: 'plan-twinrec-${resourceToken}'
    location: location
    tags: tags
    nodeVersion: nodeVersion
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    identityResourceId: appIdentity.outputs.resourceId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    virtualNetworkSubnetId: postgresNetwork == 'privateEndpoint' ? network.outputs.appSubnetId : ''
    azdServiceName: 'api'
    appSettings: [
      // Functions host storage through the user-assigned identity (the account has no shared keys).
      { name: 'AzureWebJobsStorage__accountName', value: storage.outputs.name }
      { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
      { name: 'AzureWebJobsStorage__clientId', value: appIdentity.outputs.clientId }
      // Application Insights: the connection string names the resource (it is not a secret; local
      // auth is disabled), the authentication string makes the host send telemetry as the identity.
      { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: appInsights.outputs.connectionString }
      { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'Authorization=AAD;ClientId=${appIdentity.outputs.clientId}' }
      // The Event Hub trigger's connection "TwinEvents", identity-based.
      { name: 'TwinEvents__fullyQualifiedNamespace', value: eventHubs.outputs.fullyQualifiedNamespace }
      { name: 'TwinEvents__credential', value: 'managedidentity' }
      { name: 'TwinEvents__clientId', value: appIdentity.outputs.clientId }
      { name: 'TWIN_EVENTS_HUB_NAME', value: eventHubs.outputs.eventHubName }
      { name: 'TWIN_EVENTS_CONSUMER_GROUP', value: eventHubs.outputs.consumerGroupName }
      // DefaultAzureCredential picks the user-assigned identity by this client ID.
      { name: 'AZURE_CLIENT_ID', value: appIdentity.outputs.clientId }
      // Store: Azure Database for PostgreSQL with an Entra access token as the password, signing in
      // as the identity's own database principal (member of twin_reconciler_app, not an admin).
      { name: 'POSTGRES_HOST', value: postgres.outputs.hostName }
      { name: 'POSTGRES_PORT', value: '5432' }
      { name: 'POSTGRES_DATABASE', value: postgres.outputs.databaseName }
      { name: 'POSTGRES_USER', value: appIdentity.outputs.name }
      { name: 'POSTGRES_POOL_MAX', value: string(postgresPoolMaxChecked) }
      // IoT Hub service API through the identity (IoT Hub Twin Contributor).
      { name: 'IOTHUB_HOST_NAME', value: iotHub.outputs.hostName }
      { name: 'HUB_TWIN_OPS_PER_SECOND', value: string(hubTwinOpsPerSecond) }
      { name: 'POLICY_PATH', value: policyPath }
      { name: 'POLICY_JSON', value: policyJson }
      // Re-push timer.
      { name: 'REPUSH_SCHEDULE', value: repushSchedule }
      { name: 'REPUSH_MAX_DEVICES_PER_RUN', value: string(repushMaxDevicesPerRun) }
      { name: 'REPUSH_BACKOFF_BASE', value: repushBackoffBase }
      { name: 'REPUSH_BACKOFF_CAP', value: repushBackoffCap }
      { name: 'REPUSH_MAX_ATTEMPTS', value: string(repushMaxAttempts) }
      { name: 'REPUSH_DRY_RUN', value: string(repushDryRun) }
      { name: 'REPUSH_LEASE', value: repushLease }
      // Retention timer.
      { name: 'HISTORY_RETENTION', value: historyRetention }
      { name: 'DEAD_LETTER_RETENTION', value: deadLetterRetention }
      { name: 'RETENTION_SCHEDULE', value: retentionSchedule }
      // Fleet sync and the resync queue.
      { name: 'FLEET_SYNC_SCHEDULE', value: fleetSyncSchedule }
      { name: 'FLEET_SYNC_PAGE_SIZE', value: string(fleetSyncPageSize) }
      { name: 'FLEET_SYNC_RUN_BUDGET', value: fleetSyncRunBudget }
      { name: 'HUB_QUERIES_PER_MINUTE', value: string(hubQueriesPerMinute) }
      { name: 'RESYNC_SCHEDULE', value: resyncSchedule }
      { name: 'RESYNC_BACKOFF_BASE', value: resyncBackoffBase }
      { name: 'RESYNC_BACKOFF_CAP', value: resyncBackoffCap }
    ]
  }
  // The host starts as soon as the site exists: give it its storage roles first.
  dependsOn: [
    hostRoles
  ]
}

@description('Name of the Function App: `func azure functionapp publish <this>`.')
output functionAppName string = functionApp.outputs.name

@description('Default host name of the Function App.')
output functionAppHostName string = functionApp.outputs.defaultHostName

@description('Base URL of the compliance API (append e.g. /compliance/summary?code=<function key>).')
output complianceApiUrl string = 'https://${functionApp.outputs.defaultHostName}/api'

@description('IoT Hub name (az iot hub device-identity create --hub-name <this> …).')
output iotHubName string = iotHub.outputs.name

@description('IoT Hub host name: IOTHUB_HOST_NAME, and the HostName of device connection strings.')
output IOTHUB_HOST_NAME string = iotHub.outputs.hostName

@description('Event Hubs namespace host name: TwinEvents__fullyQualifiedNamespace.')
output TwinEvents__fullyQualifiedNamespace string = eventHubs.outputs.fullyQualifiedNamespace

@description('Event hub the twin-change route feeds.')
output TWIN_EVENTS_HUB_NAME string = eventHubs.outputs.eventHubName

@description('Consumer group of the reconcile function.')
output TWIN_EVENTS_CONSUMER_GROUP string = eventHubs.outputs.consumerGroupName

@description('Consumer group for `func start` against Azure (TWIN_EVENTS_CONSUMER_GROUP in local.settings.json).')
output TWIN_EVENTS_DEV_CONSUMER_GROUP string = eventHubs.outputs.developerConsumerGroupName

@description('PostgreSQL host name.')
output POSTGRES_HOST string = postgres.outputs.hostName

@description('PostgreSQL database name.')
output POSTGRES_DATABASE string = postgres.outputs.databaseName

@description('PostgreSQL Entra principal the app signs in as (the app identity\'s name; created by local/cli/postgresSetup.ts).')
output POSTGRES_USER string = appIdentity.outputs.name

@description('Client ID of the app\'s user-assigned identity (AZURE_CLIENT_ID).')
output AZURE_CLIENT_ID string = appIdentity.outputs.clientId

@description('Application Insights resource name.')
output appInsightsName string = appInsights.outputs.name

@description('Object (principal) ID of the app\'s identity: local/cli/postgresSetup.ts creates its database principal with it.')
output APP_IDENTITY_PRINCIPAL_ID string = appIdentity.outputs.principalId

@description('The operator\'s PostgreSQL user name (the Entra admin) for local/cli/postgresSetup.ts.')
output POSTGRES_ADMIN_USER string = operatorPrincipalName

@description('Host storage account: AzureWebJobsStorage__accountName for `func start` against Azure.')
output AzureWebJobsStorage__accountName string = storage.outputs.name

@description('azd: region of the deployment.')
output AZURE_LOCATION string = location

@description('azd: tenant of the deployment.')
output AZURE_TENANT_ID string = tenant().tenantId

@description('azd: name of the Function App of service `api`.')
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
