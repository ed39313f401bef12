# Tool and provider versions this configuration targets (infra/README.md "Versions").
terraform {
  required_version = ">= 1.9.0"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.47"
    }
    azuread = {
      source  = "hashicorp/azuread"
      version = "~> 3.4"
    }
  }
}

provider "azurerm" {
  features {
    storage {
      # Everything here goes through Azure Resource Manager (containers by storage_account_id), so
      # the deployer needs no data-plane role on accounts that refuse shared keys.
      data_plane_available = false
    }
  }

  # null falls back to ARM_SUBSCRIPTION_ID / the Azure CLI's subscription.
  subscription_id = var.subscription_id
  environment     = var.cloud_environment

  # Storage accounts refuse shared keys: the provider must use Entra ID for data-plane calls
  # (azure-functions-conventions.md, convention 22).
  storage_use_azuread = true
}

provider "azuread" {
  # azuread accepts public/usgovernment/china as aliases; DoD needs usgovernmentl5 (its own Graph).
  environment = coalesce(var.azuread_environment, var.cloud_environment)
}

data "azurerm_resource_group" "main" {
  name = var.resource_group_name
}
