#!/usr/bin/env bash
# Grants a managed identity the Ti.ReadWrite.All application role of the WindowsDefenderATP service
# principal through Microsoft Graph (defender-api.md §7), for teams whose deployer cannot grant app
# roles from Bicep or Terraform. Idempotent: an existing assignment is reported and left alone.
#
# Who may run it: a principal with Microsoft Graph AppRoleAssignment.ReadWrite.All and
# Application.Read.All, or a Privileged Role Administrator / Global Administrator.
set -euo pipefail

readonly DEFENDER_APP_ID="fc780465-2017-40d4-a0c5-307022471b92" # WindowsDefenderATP, same in every tenant

usage() {
  printf '%s\n' \
    "Usage: ${0##*/} (--principal-id ID | --identity-name NAME --resource-group RG) [options]" \
    "" \
    "Grants the managed identity the WindowsDefenderATP application role (default Ti.ReadWrite.All)." \
    "" \
    "  --principal-id ID        principal (object) id of the identity (output identityPrincipalId)" \
    "  --identity-name NAME     or: the user-assigned identity's name ..." \
    "  --resource-group RG      ... and its resource group" \
    "  --role VALUE             app role value to grant (default Ti.ReadWrite.All)" \
    "  --graph-url URL          Microsoft Graph base URL (default: the current az cloud's," \
    "                           e.g. https://graph.microsoft.us for AzureUSGovernment)" \
    "  -h, --help               show this help" \
    "" \
    "Needs the Azure CLI signed in (az login) as a principal with Graph AppRoleAssignment.ReadWrite.All" \
    "and Application.Read.All (or Privileged Role Administrator / Global Administrator)." \
    "Managed identity tokens are cached for up to 24 hours: the app may get 403 from Defender until" \
    "its next token carries the role."
}

die() {
  printf 'error: %s\n' "$1" >&2
  exit "${2:-1}"
}

principal_id=""
identity_name=""
resource_group=""
role_value="Ti.ReadWrite.All"
graph_url=""

while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help)
      usage
      exit 0
      ;;
    --principal-id | --identity-name | --resource-group | --role | --graph-url)
      [[ $# -ge 2 && -n "$2" ]] || { usage >&2; die "$1 needs a value" 2; }
      case "$1" in
        --principal-id) principal_id="$2" ;;
        --identity-name) identity_name="$2" ;;
        --resource-group) resource_group="$2" ;;
        --role) role_value="$2" ;;
        --graph-url) graph_url="$2" ;;
      esac
      shift 2
      ;;
    *)
      usage >&2
      die "unknown argument: $1" 2
      ;;
  esac
done

if [[ -z "$principal_id" ]]; then
  [[ -n "$identity_name" && -n "$resource_group" ]] ||
    { usage >&2; die "give --principal-id, or --identity-name with --resource-group" 2; }
elif [[ -n "$identity_name" ]]; then
  usage >&2
  die "give either --principal-id or --identity-name, not both" 2
fi

command -v az >/dev/null 2>&1 || die "the Azure CLI (az) is not on PATH: https://learn.microsoft.com/cli/azure/install-azure-cli" 127

if [[ -z "$principal_id" ]]; then
  principal_id="$(az identity show --name "$identity_name" --resource-group "$resource_group" --query principalId -o tsv)"
  [[ -n "$principal_id" ]] || die "identity $identity_name not found in $resource_group"
fi

if [[ -z "$graph_url" ]]; then
  # The current cloud's Graph endpoint, so the same script works in AzureUSGovernment.
  graph_url="$(az cloud show --query endpoints.microsoftGraphResourceId -o tsv)"
fi
graph_url="${graph_url%/}"

sp_id="$(az rest --method GET \
  --url "${graph_url}/v1.0/servicePrincipals?\$filter=appId%20eq%20'${DEFENDER_APP_ID}'&\$select=id" \
  --query 'value[0].id' -o tsv)"
[[ -n "$sp_id" ]] || die "the WindowsDefenderATP service principal (appId $DEFENDER_APP_ID) is not in this tenant: is Defender for Endpoint onboarded?"

# The role id is looked up by its value, never hard-coded (defender-api.md §7).
role_id="$(az rest --method GET \
  --url "${graph_url}/v1.0/servicePrincipals/${sp_id}?\$select=appRoles" \
  --query "appRoles[?value=='${role_value}' && contains(allowedMemberTypes, 'Application')].id | [0]" -o tsv)"
[[ -n "$role_id" ]] || die "WindowsDefenderATP has no application role $role_value"

existing="$(az rest --method GET \
  --url "${graph_url}/v1.0/servicePrincipals/${principal_id}/appRoleAssignments" \
  --query "value[?resourceId=='${sp_id}' && appRoleId=='${role_id}'].id | [0]" -o tsv)"
if [[ -n "$existing" ]]; then
  printf 'Already granted: %s has %s on WindowsDefenderATP (assignment %s).\n' "$principal_id" "$role_value" "$existing"
  exit 0
fi

az rest --method POST \
  --url "${graph_url}/v1.0/servicePrincipals/${sp_id}/appRoleAssignedTo" \
  --headers "Content-Type=application/json" \
  --body "{\"principalId\":\"${principal_id}\",\"resourceId\":\"${sp_id}\",\"appRoleId\":\"${role_id}\"}" \
  --output none

printf 'Granted %s on WindowsDefenderATP to %s.\n' "$role_value" "$principal_id"
printf '%s\n' "Managed identity tokens are cached for up to 24 hours: Defender may answer 403 until the app's next token carries the role."
