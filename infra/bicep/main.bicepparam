// Example parameters: copy, set baseName, deploy with
//   az deployment group create -g <rg> -f infra/bicep/main.bicep -p infra/bicep/main.bicepparam
using 'main.bicep'

param baseName = 'iocimp7f3k'
param pythonVersion = '3.12'
param createEventSubscription = false
param grantDefenderPermission = true

// Entra ID tokens instead of function keys (infra/README.md): creates the app registration (Graph rights needed).
// param httpAuth = 'entra'
// param httpAuthImportPrincipalIds = ['<object id of a caller identity>']
// param httpAuthPreauthorizeAzureCli = true
// param deployLogicApp = true
