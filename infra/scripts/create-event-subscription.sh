#!/usr/bin/env bash
# Second deployment step, after the code is published: subscribes the blobs-extension webhook of
# `import_dropped_file` to BlobCreated events in the indicators container, on the existing Event
# Grid system topic of the data account. The filter, retry policy and dead-letter destination are
# those of infra/bicep/modules/eventgrid-subscription.bicep and infra/terraform/eventgrid.tf; the
# subscription is written with one idempotent PUT, so running the script again updates it.
set -euo pipefail

readonly FUNCTION_NAME="import_dropped_file" # CONTRACT.md "Function names"
readonly API_VERSION="2025-02-15"

usage() {
  printf '%s\n' \
    "Usage: ${0##*/} --resource-group RG --base-name NAME [options]" \
    "" \
    "Creates or updates the Event Grid subscription 'import-dropped-file' once the code is deployed." \
    "Resource names default to the ones the IaC derives from the base name." \
    "" \
    "  --resource-group RG            resource group of the deployment" \
    "  --base-name NAME               baseName / base_name used at deployment" \
    "  --app NAME                     function app (default func-<base>)" \
    "  --storage-account NAME         data storage account (default st<base>data)" \
    "  --topic NAME                   system topic (default evgt-<base>)" \
    "  --identity-name NAME           user-assigned identity (default id-<base>)" \
    "  --container NAME               watched container (default indicators)" \
    "  --dead-letter-container NAME   dead-letter container (default eventgrid-deadletter)" \
    "  --max-delivery-attempts N      1-30 (default 30)" \
    "  --event-ttl MINUTES            1-1440 (default 1440)" \
    "  -h, --help                     show this help" \
    "" \
    "Needs the Azure CLI signed in (az login) with rights to read the app's keys and write the topic."
}

die() {
  printf 'error: %s\n' "$1" >&2
  exit "${2:-1}"
}

urlencode() {
  local s="$1" out="" c i
  for ((i = 0; i < ${#s}; i++)); do
    c="${s:i:1}"
    case "$c" in
      [a-zA-Z0-9._~-]) out+="$c" ;;
      *) out+="$(printf '%%%02X' "'$c")" ;;
    esac
  done
  printf '%s' "$out"
}

resource_group=""
base_name=""
app=""
storage_account=""
topic=""
identity_name=""
container="indicators"
dead_letter_container="eventgrid-deadletter"
max_delivery_attempts="30"
event_ttl="1440"

while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help)
      usage
      exit 0
      ;;
    --resource-group | --base-name | --app | --storage-account | --topic | --identity-name | \
      --container | --dead-letter-container | --max-delivery-attempts | --event-ttl)
      [[ $# -ge 2 && -n "$2" ]] || { usage >&2; die "$1 needs a value" 2; }
      case "$1" in
        --resource-group) resource_group="$2" ;;
        --base-name) base_name="$2" ;;
        --app) app="$2" ;;
        --storage-account) storage_account="$2" ;;
        --topic) topic="$2" ;;
        --identity-name) identity_name="$2" ;;
        --container) container="$2" ;;
        --dead-letter-container) dead_letter_container="$2" ;;
        --max-delivery-attempts) max_delivery_attempts="$2" ;;
        --event-ttl) event_ttl="$2" ;;
      esac
      shift 2
      ;;
    *)
      usage >&2
      die "unknown argument: $1" 2
      ;;
  esac
done

[[ -n "$resource_group" ]] || { usage >&2; die "--resource-group is required" 2; }
if [[ -z "$base_name" && (-z "$app" || -z "$storage_account" || -z "$topic" || -z "$identity_name") ]]; then
  usage >&2
  die "give --base-name, or all of --app, --storage-account, --topic and --identity-name" 2
fi
[[ "$max_delivery_attempts" =~ ^[0-9]+$ ]] && ((max_delivery_attempts >= 1 && max_delivery_attempts <= 30)) ||
  die "--max-delivery-attempts must be 1 to 30" 2
[[ "$event_ttl" =~ ^[0-9]+$ ]] && ((event_ttl >= 1 && event_ttl <= 1440)) ||
  die "--event-ttl must be 1 to 1440" 2

app="${app:-func-${base_name}}"
storage_account="${storage_account:-st${base_name}data}"
topic="${topic:-evgt-${base_name}}"
identity_name="${identity_name:-id-${base_name}}"

command -v az >/dev/null 2>&1 || die "the Azure CLI (az) is not on PATH: https://learn.microsoft.com/cli/azure/install-azure-cli" 127

# The key exists only once code with the Event Grid blob trigger is deployed
# (azure-functions-conventions.md, P2).
key="$(az functionapp keys list --resource-group "$resource_group" --name "$app" --query systemKeys.blobs_extension -o tsv)"
[[ -n "$key" ]] || die "no blobs_extension key on $app yet: publish the code first (func azure functionapp publish $app --python)"

host="$(az functionapp show --resource-group "$resource_group" --name "$app" --query defaultHostName -o tsv)"
storage_id="$(az storage account show --resource-group "$resource_group" --name "$storage_account" --query id -o tsv)"
identity_id="$(az identity show --resource-group "$resource_group" --name "$identity_name" --query id -o tsv)"
topic_id="$(az eventgrid system-topic show --resource-group "$resource_group" --name "$topic" --query id -o tsv)"

endpoint="https://${host}/runtime/webhooks/blobs?functionName=Host.Functions.${FUNCTION_NAME}&code=$(urlencode "$key")"

body="$(
  cat <<JSON
{
  "properties": {
    "destination": {
      "endpointType": "WebHook",
      "properties": {
        "endpointUrl": "${endpoint}",
        "maxEventsPerBatch": 1,
        "preferredBatchSizeInKilobytes": 64
      }
    },
    "eventDeliverySchema": "EventGridSchema",
    "filter": {
      "includedEventTypes": ["Microsoft.Storage.BlobCreated"],
      "subjectBeginsWith": "/blobServices/default/containers/${container}/",
      "advancedFilters": [
        {"operatorType": "StringIn", "key": "data.api", "values": ["PutBlob", "PutBlockList", "FlushWithClose", "CopyBlob"]}
      ]
    },
    "retryPolicy": {
      "maxDeliveryAttempts": ${max_delivery_attempts},
      "eventTimeToLiveInMinutes": ${event_ttl}
    },
    "deadLetterWithResourceIdentity": {
      "identity": {"type": "UserAssigned", "userAssignedIdentity": "${identity_id}"},
      "deadLetterDestination": {
        "endpointType": "StorageBlob",
        "properties": {"resourceId": "${storage_id}", "blobContainerName": "${dead_letter_container}"}
      }
    }
  }
}
JSON
)"

# A URL without a host is taken by az rest as a resource id on the current cloud's Resource Manager.
az rest --method PUT \
  --url "${topic_id}/eventSubscriptions/import-dropped-file?api-version=${API_VERSION}" \
  --headers "Content-Type=application/json" \
  --body "$body" \
  --output none

printf 'Event Grid subscription import-dropped-file on %s now delivers BlobCreated in %s to %s.\n' \
  "$topic" "$container" "$FUNCTION_NAME"
