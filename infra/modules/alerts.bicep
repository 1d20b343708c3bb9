// Log search alert rules on Application Insights (the app's OpenTelemetry metrics land in its
// customMetrics table; the Functions host's invocations in requests) and the action group that
// e-mails them. The queries live in infra/alerts/*.kql; test/infra/alertsNameMetrics.test.ts checks
// that every metric they name is in shared/telemetry/metricNames.ts.
//
// Without an e-mail address no action group is created: the rules still fire and show under
// Monitor > Alerts, they just notify nobody.

@description('Prefix of the rule names.')
param namePrefix string

@description('Region of the rules.')
param location string

@description('Tags.')
param tags object

@description('Resource ID of the Application Insights component the rules query.')
param appInsightsId string

@description('E-mail address that receives the alerts; empty: no action group.')
param alertEmail string

@description('Hours since the last complete fleet sync pass after which it is overdue.')
param fleetSyncOverdueHours int

@description('Failed invocations of one function within 15 minutes that raise an alert.')
param functionFailureThreshold int

resource actionGroup 'Microsoft.Insights/actionGroups@2022-04-01' = if (!empty(alertEmail)) {
  name: '${namePrefix}-operators'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'twinrec'
    enabled: true
    emailReceivers: [
      {
        name: 'operators'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

// One entry per rule: `measure` is the column the query summarizes into, `dimensions` the columns it
// splits by (one alert per partition or function).
var rules = [
  {
    name: 'event-age'
    displayName: 'Twin events older than 5 minutes at commit (lagging or stalled partition)'
    description: 'An event took more than 5 minutes from Event Hubs to the store on some partition: the reconciler is behind (scale, store slowness) or a partition is stuck retrying a batch. See README, Operate.'
    severity: 2
    query: loadTextContent('../alerts/event-age.kql')
    measure: 'oldestSeconds'
    aggregation: 'Maximum'
    threshold: 300
    window: 'PT5M'
    frequency: 'PT5M'
    dimensions: [
      {
        name: 'partition'
        operator: 'Include'
        values: [
          '*'
        ]
      }
    ]
  }
  {
    name: 'dead-letters'
    displayName: 'Twin events dead-lettered in the last hour'
    description: 'Events the reconciler could not decode or apply were stored as dead letters: read their reason and raw event in the database\'s dead_letters table and fix the sender or the policy. See README, Operate.'
    severity: 3
    query: loadTextContent('../alerts/dead-letters.kql')
    measure: 'deadLettered'
    aggregation: 'Total'
    threshold: 0
    window: 'PT1H'
    frequency: 'PT15M'
    dimensions: []
  }
  {
    name: 'escalations'
    displayName: 'Desired properties escalated in the last hour'
    description: 'Re-push gave up on properties after REPUSH_MAX_ATTEMPTS: the devices are offline, reject the value or never report it. See README, Operate.'
    severity: 3
    query: loadTextContent('../alerts/escalations.kql')
    measure: 'escalated'
    aggregation: 'Total'
    threshold: 0
    window: 'PT1H'
    frequency: 'PT15M'
    dimensions: []
  }
  {
    name: 'function-failures'
    displayName: 'A function keeps failing'
    description: 'One function failed repeatedly within 15 minutes (the Functions host\'s request telemetry): a store or hub outage, a permission, or a bad deployment. See README, Operate.'
    severity: 1
    query: loadTextContent('../alerts/function-failures.kql')
    measure: 'failures'
    aggregation: 'Total'
    threshold: functionFailureThreshold - 1
    window: 'PT15M'
    frequency: 'PT5M'
    dimensions: [
      {
        name: 'operation_Name'
        operator: 'Include'
        values: [
          '*'
        ]
      }
    ]
  }
  {
    name: 'fleet-sync-overdue'
    displayName: 'Fleet sync overdue'
    description: 'No complete fleet sync pass ended within the expected time: passes are failing, throttled, or the timer does not run. See README, Operate.'
    severity: 3
    query: loadTextContent('../alerts/fleet-sync-overdue.kql')
    measure: 'syncAgeSeconds'
    aggregation: 'Maximum'
    threshold: fleetSyncOverdueHours * 3600
    window: 'PT1H'
    frequency: 'PT30M'
    dimensions: []
  }
]

resource rule 'Microsoft.Insights/scheduledQueryRules@2021-08-01' = [for r in rules: {
  name: '${namePrefix}-${r.name}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: r.displayName
    description: r.description
    severity: r.severity
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: r.frequency
    windowSize: r.window
    criteria: {
      allOf: [
        {
          query: r.query
          timeAggregation: r.aggregation
          metricMeasureColumn: r.measure
          operator: 'GreaterThan'
          threshold: r.threshold
          dimensions: r.dimensions
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: empty(alertEmail) ? [] : [
        actionGroup.id
      ]
    }
  }
}]

@description('Names of the alert rules.')
output ruleNames array = [for (r, i) in rules: rule[i].name]
