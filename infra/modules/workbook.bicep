// The operator's workbook (infra/workbook.json): compliance over time and the pipeline's health,
// charted from the app's OpenTelemetry metrics in Application Insights. Opens from the Application
// Insights resource (Workbooks) or from Azure Monitor > Workbooks.

@description('Display name of the workbook.')
param displayName string

@description('Region.')
param location string

@description('Tags.')
param tags object

@description('Resource ID of the Application Insights component the workbook queries.')
param appInsightsId string

// The JSON names its default resource with a placeholder: the component's ID goes there.
var serializedData = replace(loadTextContent('../workbook.json'), '__APP_INSIGHTS_RESOURCE_ID__', appInsightsId)

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // Workbook names are GUIDs; this one is stable per component, so a redeploy updates it.
  name: guid(appInsightsId, 'twin-reconciler-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: appInsightsId
    serializedData: serializedData
  }
}

@description('Workbook resource ID.')
output id string = workbook.id
