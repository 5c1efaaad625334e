variable "tre_id" {
  description = "TRE id: lower-case letters and digits, part of every TRE-level account name (stalimip{tre_id})."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9]{1,11}$", var.tre_id))
    error_message = "tre_id must be 1-11 lower-case letters or digits."
  }
}
variable "location" {
  description = "Azure region."
  type        = string
}
variable "resource_group_name" {
  description = "Resource group of the TRE core (created beforehand)."
  type        = string
}
variable "core_private_endpoint_subnet_id" {
  description = "TRE core subnet for private endpoints (internal stages, Cosmos DB, topics, the Function App)."
  type        = string
}
variable "function_integration_subnet_id" {
  description = "Subnet delegated to Microsoft.Web/serverFarms for the Function App's outbound VNet integration."
  type        = string
}
variable "private_dns_zone_ids" {
  description = "Private DNS zone ids: blob, queue, table (privatelink.{blob,queue,table}.core.windows.net), cosmos (privatelink.documents.azure.com), eventgrid (privatelink.eventgrid.azure.net), sites (privatelink.azurewebsites.net)."
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
  description = "Token issuer, e.g. https://login.microsoftonline.com/{tenant}/v2.0."
  type        = string
}
variable "auth_jwks_url" {
  description = "The issuer's JWKS, e.g. https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys."
  type        = string
}
variable "api_audience" {
  description = "Audience of TRE-wide tokens (TREAdmin listing across workspaces)."
  type        = string
  default     = ""
}
variable "web_client_id" {
  description = "The web app's client id (an Entra ID single-page application registration whose redirect URI is https://func-airlock-{tre_id}.azurewebsites.net/api/app/index.html); empty: no web sign-in."
  type        = string
  default     = ""
}
variable "web_authority" {
  description = "The web app's identity provider: https://login.microsoftonline.com/{tenant}."
  type        = string
  default     = ""
}
variable "policy_defaults" {
  description = "Workspace policy defaults (AIRLOCK_POLICY_DEFAULTS), e.g. { linkExpiryMinutes = 30, scanRequired = true }; typed and checked by modules/policy-defaults."
  type        = any
  default     = {}
}
variable "deploy_allowed_cidrs" {
  description = "IPv4 ranges (CIDR) that may deploy the Function App package over the public SCM endpoint (az functionapp deployment source config-zip). Empty: deploy from inside the TRE network, through the private endpoint."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for c in var.deploy_allowed_cidrs : can(cidrhost(c, 0)) && !strcontains(c, ":")])
    error_message = "deploy_allowed_cidrs must be IPv4 CIDR ranges."
  }
}
variable "api_allowed_cidrs" {
  description = "IPv4 ranges (CIDR) that may call the API over the Function App's public endpoint, besides the private endpoint. Empty: the API only through the private endpoint."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for c in var.api_allowed_cidrs : can(cidrhost(c, 0)) && !strcontains(c, ":")])
    error_message = "api_allowed_cidrs must be IPv4 CIDR ranges."
  }
}
variable "retention_days" {
  description = "Days rejected and blocked data is kept before the storage service deletes it."
  type        = number
  default     = 30
}
variable "function_plan_sku" {
  description = "Dedicated Linux App Service plan SKU. Dedicated (not Elastic Premium or Consumption) because those need an Azure Files content share with a storage key, and shared keys are off."
  type        = string
  default     = "P1v3"
}
variable "log_retention_days" {
  description = "Log Analytics retention for Application Insights data."
  type        = number
  default     = 90
}
variable "malware_scanning_cap_gb_per_month" {
  description = "Defender for Storage malware scanning cap per in-progress account."
  type        = number
  default     = 5000
}
variable "tags" {
  type    = map(string)
  default = {}
}

variable "workspace_resource_group_pattern" {
  description = "The resource group of a workspace's stage accounts, {workspace} standing for its short id (AzureTRE: rg-{tre_id}-ws-{short id}); the handler names the export in-progress account to Defender's on-demand scan through it."
  type        = string
  validation {
    condition     = strcontains(var.workspace_resource_group_pattern, "{workspace}")
    error_message = "workspace_resource_group_pattern must contain {workspace}."
  }
}
