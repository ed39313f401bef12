# HTTP_AUTH=entra (opt-in; infra/README.md "Entra ID tokens instead of function keys"): the app registration
# callers get tokens for, with the two app roles the app checks (shared/app/auth.py), its identifier URI and
# service principal, the role grants, and optional App Service Authentication (functionapp.tf). Creating the
# registration needs Microsoft Graph rights (infra/README.md "Who can deploy"). Same resources, names and ids
# as infra/bicep/modules/entra-app.bicep and entra-callers.bicep.

# ---------- Variables ----------

variable "http_auth" {
  type        = string
  description = "HTTP_AUTH: function-key (the host checks a function key) or entra (the app checks Entra ID tokens and app roles). With entra and http_auth_audience empty, the app registration is created here (Graph rights needed)."
  default     = "function-key"

  validation {
    condition     = contains(["function-key", "entra"], var.http_auth)
    error_message = "http_auth must be function-key or entra, e.g. \"entra\"."
  }
}

variable "http_auth_audience" {
  type        = string
  description = "HTTP_AUTH_AUDIENCE of an existing app registration (comma list: identifier URI, client id), e.g. \"api://<tenant>/ioc-importer,<client id>\"; empty creates one here when http_auth is entra."
  default     = ""
}

variable "http_auth_authority_host" {
  type        = string
  description = "HTTP_AUTH_AUTHORITY_HOST, e.g. https://login.microsoftonline.us; empty uses cloud_environment's login endpoint (https://login.microsoftonline.com in the public cloud)."
  default     = ""

  validation {
    condition     = var.http_auth_authority_host == "" || startswith(var.http_auth_authority_host, "https://")
    error_message = "http_auth_authority_host must be an https URL, e.g. \"https://login.microsoftonline.us\"."
  }
}

variable "http_auth_import_principal_ids" {
  type        = list(string)
  description = "Object ids of callers (managed identities, service principals, users, groups) granted Indicators.Import on the created registration, e.g. [\"00000000-0000-0000-0000-000000000000\"]."
  default     = []

  validation {
    condition     = alltrue([for id in var.http_auth_import_principal_ids : can(regex("^[0-9a-fA-F-]{36}$", id))])
    error_message = "Each principal id is an object id (a GUID), e.g. \"00000000-0000-0000-0000-000000000000\"."
  }
}

variable "http_auth_read_principal_ids" {
  type        = list(string)
  description = "Object ids granted Indicators.Read (the status of any job) on the created registration, e.g. [\"00000000-0000-0000-0000-000000000000\"]."
  default     = []

  validation {
    condition     = alltrue([for id in var.http_auth_read_principal_ids : can(regex("^[0-9a-fA-F-]{36}$", id))])
    error_message = "Each principal id is an object id (a GUID), e.g. \"00000000-0000-0000-0000-000000000000\"."
  }
}

variable "http_auth_preauthorize_azure_cli" {
  type        = bool
  description = "Pre-authorise the Azure CLI (04b07795-8ddb-461a-bbee-02f9e1bf7b46) for the created registration's user_impersonation scope, for analysts' scripts."
  default     = false
}

variable "enable_app_service_authentication" {
  type        = bool
  description = "Put App Service Authentication in front of the app too (excluding /runtime/webhooks/blobs and /api/health); needs the created registration."
  default     = false
}

variable "deploy_logic_app" {
  type        = bool
  description = "Deploy a sample Consumption Logic App that posts indicators with its managed identity, granted Indicators.Import; needs http_auth = \"entra\" and the created registration."
  default     = false
}

variable "logic_app_dry_run" {
  type        = bool
  description = "The sample Logic App posts with dryRun=true (validate and report only)."
  default     = true
}

# ---------- The registration ----------

data "azuread_client_config" "current" {}

locals {
  http_auth_entra         = var.http_auth == "entra"
  create_app_registration = local.http_auth_entra && var.http_auth_audience == ""

  # The login endpoint of each cloud_environment (Bicep takes environment().authentication.loginEndpoint).
  login_endpoints = {
    public       = "https://login.microsoftonline.com"
    usgovernment = "https://login.microsoftonline.us"
    china        = "https://login.chinacloudapi.cn"
  }
  http_auth_authority_host = trimsuffix(var.http_auth_authority_host != "" ? var.http_auth_authority_host : local.login_endpoints[var.cloud_environment], "/")

  entra_names = {
    app_registration = "ioc-importer-${var.base_name}"
    logic_app        = "logic-${var.base_name}-import"
  }
  # api://<tenant id>/<unique name>, the same as Bicep (where a registration cannot name its own appId).
  api_identifier_uri = "api://${data.azuread_client_config.current.tenant_id}/${local.entra_names.app_registration}"

  # Fixed ids, the same as infra/bicep/modules/entra-app.bicep.
  app_roles = {
    import = {
      id           = "a792c963-aa74-469d-b291-a01f5211bb25"
      value        = "Indicators.Import"
      display_name = "Import indicators"
      description  = "POST indicators to the IOC importer and read the status of the caller's own import jobs."
    }
    read = {
      id           = "d4b5e528-c62d-408a-adf0-1351e58da8ff"
      value        = "Indicators.Read"
      display_name = "Read import jobs"
      description  = "Read the status and result of any import job of the IOC importer."
    }
  }
  user_impersonation_scope_id = "6f1f29c0-0527-4474-9ce5-3315ee909826"
  azure_cli_client_id         = "04b07795-8ddb-461a-bbee-02f9e1bf7b46" # Microsoft Azure CLI, the same in every tenant

  # HTTP_AUTH_AUDIENCE: a v1 token carries the identifier URI it was requested for, a v2 token the client id.
  http_auth_audience = local.create_app_registration ? "${local.api_identifier_uri},${azuread_application.api[0].client_id}" : var.http_auth_audience

  # The app settings of CONTRACT.md "Settings" [entra]; merged into the app's settings in locals.tf.
  http_auth_settings = {
    HTTP_AUTH                = var.http_auth
    HTTP_AUTH_TENANT_ID      = local.http_auth_entra ? data.azuread_client_config.current.tenant_id : ""
    HTTP_AUTH_AUDIENCE       = local.http_auth_entra ? local.http_auth_audience : ""
    HTTP_AUTH_AUTHORITY_HOST = local.http_auth_authority_host
  }

  # Optional App Service Authentication: never in front of the Event Grid blob webhook, which calls with the
  # blobs_extension key and no token (MicrosoftDocs/azure-docs #99036, Azure/azure-functions-host #4674), nor
  # of /api/health, which keeps its function key.
  easy_auth_enabled        = var.enable_app_service_authentication && local.create_app_registration
  easy_auth_excluded_paths = ["/runtime/webhooks/blobs", "/api/health"]
}

resource "azuread_application" "api" {
  count            = local.create_app_registration ? 1 : 0
  display_name     = "Defender IOC importer (${var.base_name})"
  sign_in_audience = "AzureADMyOrg"
  owners           = [data.azuread_client_config.current.object_id]

  api {
    # 1 (v1 tokens): what a managed identity gets for a custom API; the app accepts v2 tokens as well.
    requested_access_token_version = 1

    oauth2_permission_scope {
      id                         = local.user_impersonation_scope_id
      value                      = "user_impersonation"
      type                       = "User"
      enabled                    = true
      admin_consent_display_name = "Call the IOC importer as the signed-in user"
      admin_consent_description  = "Lets the application call the IOC importer's HTTP API for the signed-in user; the user's app roles still decide what is allowed."
      user_consent_display_name  = "Call the IOC importer for you"
      user_consent_description   = "Lets the application call the IOC importer's HTTP API for you."
    }
  }

  dynamic "app_role" {
    for_each = local.app_roles
    content {
      id                   = app_role.value.id
      value                = app_role.value.value
      display_name         = app_role.value.display_name
      description          = app_role.value.description
      allowed_member_types = ["Application", "User"]
      enabled              = true
    }
  }

  lifecycle {
    # Managed by azuread_application_identifier_uri (the provider's advice for using both).
    ignore_changes = [identifier_uris]
  }
}

resource "azuread_application_identifier_uri" "api" {
  count          = local.create_app_registration ? 1 : 0
  application_id = azuread_application.api[0].id
  identifier_uri = local.api_identifier_uri
}

resource "azuread_service_principal" "api" {
  count     = local.create_app_registration ? 1 : 0
  client_id = azuread_application.api[0].client_id
  owners    = [data.azuread_client_config.current.object_id]
  # Only principals granted a role get tokens for the app at all (the app checks the role again).
  app_role_assignment_required = true
}

resource "azuread_application_pre_authorized" "azure_cli" {
  count                = local.create_app_registration && var.http_auth_preauthorize_azure_cli ? 1 : 0
  application_id       = azuread_application.api[0].id
  authorized_client_id = local.azure_cli_client_id
  permission_ids       = [local.user_impersonation_scope_id]
}

# ---------- Callers ----------

resource "azuread_app_role_assignment" "importers" {
  for_each            = local.create_app_registration ? toset(var.http_auth_import_principal_ids) : toset([])
  app_role_id         = local.app_roles.import.id
  principal_object_id = each.value
  resource_object_id  = azuread_service_principal.api[0].object_id
}

resource "azuread_app_role_assignment" "readers" {
  for_each            = local.create_app_registration ? toset(var.http_auth_read_principal_ids) : toset([])
  app_role_id         = local.app_roles.read.id
  principal_object_id = each.value
  resource_object_id  = azuread_service_principal.api[0].object_id
}

# ---------- Outputs ----------

output "http_auth_audience" {
  description = "HTTP_AUTH_AUDIENCE as set on the app (empty with function keys)."
  value       = local.http_auth_settings.HTTP_AUTH_AUDIENCE
}

output "api_app_id" {
  description = "Client id of the created app registration (empty when none was created)."
  value       = local.create_app_registration ? azuread_application.api[0].client_id : ""
}
