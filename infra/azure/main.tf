# An example composition: the TRE-level airlock plus one module per workspace. A TRE can use
# the modules directly from its own configuration instead.

terraform {
  required_version = ">= 1.6"
  required_providers {
    azurerm = { source = "hashicorp/azurerm", version = "~> 4.55" }
  }
}

provider "azurerm" {
  subscription_id     = var.subscription_id
  storage_use_azuread = true
  features {
    # Every stage account but two is closed to public networks, so the deploying machine
    # cannot reach their blob/queue data planes; azurerm 4.x otherwise polls them after
    # creating an account and fails with 403 (hashicorp/terraform-provider-azurerm#27750).
    # Everything here is managed through Azure Resource Manager.
    storage {
      data_plane_available = false
    }
  }
}

variable "subscription_id" {
  description = "Azure subscription to deploy into (azurerm 4.x requires it; or set ARM_SUBSCRIPTION_ID and leave this null)."
  type        = string
  default     = null
}

variable "tre_id" {
  description = "TRE id (lower-case letters and digits, at most 11)."
  type        = string
}
variable "location" {
  description = "Azure region."
  type        = string
}
variable "core_resource_group_name" {
  description = "Existing resource group of the TRE core."
  type        = string
}
variable "core_private_endpoint_subnet_id" {
  description = "TRE core subnet for private endpoints."
  type        = string
}
variable "function_integration_subnet_id" {
  description = "Subnet delegated to Microsoft.Web/serverFarms for the Function App."
  type        = string
}
variable "private_dns_zone_ids" {
  description = "Private DNS zone ids: blob, queue, table, cosmos, eventgrid, sites."
  type = object({
    blob      = string
    queue     = string
    table     = string
    cosmos    = string
    eventgrid = string
    sites     = string
  })
}
variable "auth_issuer" {
  description = "Entra ID issuer: https://login.microsoftonline.com/{tenant}/v2.0."
  type        = string
}
variable "auth_jwks_url" {
  description = "https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys."
  type        = string
}
variable "api_audience" {
  description = "Audience of TRE-wide tokens (optional)."
  type        = string
  default     = ""
}
variable "web_client_id" {
  description = "The web app's Entra ID client id (a single-page application registration; docs/web.md); empty: no web sign-in."
  type        = string
  default     = ""
}
variable "deploy_allowed_cidrs" {
  description = "IPv4 ranges that may deploy the package over the public SCM endpoint (empty: deploy from inside the TRE network, through the private endpoint)."
  type        = list(string)
  default     = []
}
variable "api_allowed_cidrs" {
  description = "IPv4 ranges that may call the API over the public endpoint (empty: private endpoint only)."
  type        = list(string)
  default     = []
}
variable "policy_defaults" {
  description = "Workspace policy defaults, e.g. { approvalsRequired = 2, linkExpiryMinutes = 30 } (modules/policy-defaults lists the fields)."
  type        = any
  default     = {}
}
variable "retention_days" {
  description = "Days rejected and blocked data is kept."
  type        = number
  default     = 30
}
variable "workspaces" {
  description = "Workspaces with an airlock: short id (1-9 lower-case letters or digits) => resource group and private endpoint subnet."
  type = map(object({
    resource_group_name        = string
    private_endpoint_subnet_id = string
  }))
  default = {}
}

variable "workspace_resource_group_pattern" {
  description = "The resource group of a workspace's stage accounts, {workspace} standing for its short id; null for AzureTRE's rg-{tre_id}-ws-{short id}."
  type        = string
  default     = null
}

module "airlock" {
  source                          = "./modules/airlock-core"
  tre_id                          = var.tre_id
  location                        = var.location
  resource_group_name             = var.core_resource_group_name
  core_private_endpoint_subnet_id = var.core_private_endpoint_subnet_id
  function_integration_subnet_id  = var.function_integration_subnet_id
  private_dns_zone_ids            = var.private_dns_zone_ids
  auth_issuer                     = var.auth_issuer
  auth_jwks_url                   = var.auth_jwks_url
  api_audience                    = var.api_audience
  web_client_id                   = var.web_client_id
  web_authority                   = trimsuffix(var.auth_issuer, "/v2.0")
  api_allowed_cidrs               = var.api_allowed_cidrs
  deploy_allowed_cidrs            = var.deploy_allowed_cidrs
  policy_defaults                 = var.policy_defaults
  retention_days                  = var.retention_days
  workspace_resource_group_pattern = coalesce(
    var.workspace_resource_group_pattern, "rg-${var.tre_id}-ws-{workspace}"
  )
}

module "workspace" {
  source                             = "./modules/airlock-workspace"
  for_each                           = var.workspaces
  workspace_short_id                 = each.key
  location                           = var.location
  resource_group_name                = each.value.resource_group_name
  private_endpoint_subnet_id         = each.value.private_endpoint_subnet_id
  blob_private_dns_zone_id           = var.private_dns_zone_ids.blob
  function_principal_id              = module.airlock.function_principal_id
  blob_tag_reader_role_definition_id = module.airlock.blob_tag_reader_role_definition_id
  function_app_id                    = module.airlock.function_app_id
  scan_result_topic_id               = module.airlock.scan_result_topic_id
  dead_letter_storage_account_id     = module.airlock.dead_letter_storage_account_id
  blob_stages                        = module.airlock.blob_stages
  blob_event_types                   = module.airlock.blob_event_types
  log_analytics_workspace_id         = module.airlock.log_analytics_workspace_id
  retention_days                     = var.retention_days
  cors_allowed_origins               = module.airlock.web_origins
}

output "api_url" {
  value = module.airlock.api_url
}
output "topic_endpoints" {
  value = module.airlock.topic_endpoints
}
output "notification_topic_id" {
  value = module.airlock.notification_topic_id
}
