// Grants the app's identity the Ti.ReadWrite.All application role of the WindowsDefenderATP
// service principal, looking the role id up by its value at deploy time (defender-api.md §7).
// The deploying principal needs Microsoft Graph AppRoleAssignment.ReadWrite.All and
// Application.Read.All; teams whose deployer cannot grant app roles use
// infra/scripts/grant-defender-permission.sh instead.
extension microsoftGraphV1

@description('Principal (object) id of the user-assigned managed identity.')
param principalId string

@description('appId of the WindowsDefenderATP service principal (same in every tenant).')
param defenderAppId string = 'fc780465-2017-40d4-a0c5-307022471b92'

@description('Application role value to grant.')
param appRoleValue string = 'Ti.ReadWrite.All'

resource defenderSp 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: defenderAppId
}

resource tiReadWrite 'Microsoft.Graph/appRoleAssignedTo@v1.0' = {
  resourceId: defenderSp.id
  appRoleId: filter(defenderSp.appRoles, role => role.value == appRoleValue)[0].id
  principalId: principalId
}

output appRoleId string = tiReadWrite.appRoleId
output resourceId string = defenderSp.id
