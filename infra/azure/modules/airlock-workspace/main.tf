# One workspace's airlock stages: stalimapp (imports land here), stalexint (export drafts),
# stalexip (export in progress, scanned by Defender), stalexrej and stalexblocked (kept for
# `retention_days`). All internal to the workspace network; the core Function App's identity
# gets exactly the access it needs on each.

terraform {
  required_providers {
    azurerm = { source = "hashicorp/azurerm", version = "~> 4.55" }
  }
}

variable "workspace_short_id" {
  description = "Workspace short id: part of the account names (stalexipws{short_id}); lower-case letters and digits."
  type        = string
  # The longest account name is stalexblockedws{short_id}: 15 + 9 = 24, Azure's limit.
  validation {
    condition     = can(regex("^[a-z0-9]{1,9}$", var.workspace_short_id))
    error_message = "workspace_short_id must be 1-9 lower-case letters or digits (stalexblockedws + id is at most 24 characters)."
  }
}
variable "location" { type = string }
variable "resource_group_name" {
  description = "The workspace's resource group."
  type        = string
}
variable "private_endpoint_subnet_id" {
  description = "Workspace subnet for the stages' private endpoints."
  type        = string
}
variable "blob_private_dns_zone_id" { type = string }
variable "function_principal_id" {
  description = "airlock-core output function_principal_id."
  type        = string
}
variable "blob_tag_reader_role_definition_id" {
  description = "airlock-core output blob_tag_reader_role_definition_id."
  type        = string
}
variable "function_app_id" {
  description = "airlock-core output function_app_id."
  type        = string
}
variable "scan_result_topic_id" {
  description = "airlock-core output scan_result_topic_id."
  type        = string
}
variable "dead_letter_storage_account_id" {
  description = "airlock-core output dead_letter_storage_account_id."
  type        = string
}
variable "blob_stages" {
  description = "airlock-core output blob_stages: stage prefixes that raise BlobCreated."
  type        = list(string)
}
variable "blob_event_types" {
  description = "airlock-core output blob_event_types (from subscriptions.json)."
  type        = list(string)
}
variable "log_analytics_workspace_id" {
  description = "airlock-core output log_analytics_workspace_id: blob access logs of the workspace stages."
  type        = string
}
variable "retention_days" {
  type    = number
  default = 30
}
variable "cors_allowed_origins" {
  description = "The web app's origin (module airlock-core's web_origins)."
  type        = list(string)
  default     = []
}
variable "malware_scanning_cap_gb_per_month" {
  type    = number
  default = 5000
}
variable "tags" {
  type    = map(string)
  default = {}
}

locals {
  stages = {
    stalimapp     = 0
    stalexint     = 0
    stalexip      = 0
    stalexrej     = var.retention_days
    stalexblocked = var.retention_days
  }

}

module "stage" {
  source                     = "../stage-account"
  for_each                   = local.stages
  name                       = "${each.key}ws${var.workspace_short_id}"
  resource_group_name        = var.resource_group_name
  location                   = var.location
  external                   = false
  retention_days             = each.value
  private_endpoint_subnet_id = var.private_endpoint_subnet_id
  blob_private_dns_zone_id   = var.blob_private_dns_zone_id
  log_analytics_workspace_id = var.log_analytics_workspace_id
  cors_allowed_origins       = var.cors_allowed_origins
  tags                       = var.tags
}

resource "azurerm_role_assignment" "stage_data" {
  for_each             = module.stage
  scope                = each.value.id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = var.function_principal_id
}

# Defender's verdict tag on the export in-progress account (see airlock-core's
# blob_tag_reader): read only.
resource "azurerm_role_assignment" "stage_tag_reader" {
  scope              = module.stage["stalexip"].id
  role_definition_id = var.blob_tag_reader_role_definition_id
  principal_id       = var.function_principal_id
}

# Defender's on-demand malware scan of the export in-progress account (see airlock-core's
# stage_rescan): asked for before a missing verdict fails a request.
resource "azurerm_role_assignment" "stage_rescan" {
  scope                = module.stage["stalexip"].id
  role_definition_name = "Security Admin"
  principal_id         = var.function_principal_id
}

module "events" {
  source = "../stage-events"
  # Keys from the inputs (known at plan), values from the accounts.
  stage_account_ids = {
    for k, m in module.stage : "${k}ws${var.workspace_short_id}" => m.id if contains(var.blob_stages, k)
  }
  scanned_account_names             = ["stalexipws${var.workspace_short_id}"]
  resource_group_name               = var.resource_group_name
  location                          = var.location
  function_app_id                   = var.function_app_id
  blob_event_types                  = var.blob_event_types
  dead_letter_storage_account_id    = var.dead_letter_storage_account_id
  scan_result_topic_id              = var.scan_result_topic_id
  malware_scanning_cap_gb_per_month = var.malware_scanning_cap_gb_per_month
  tags                              = var.tags
}

output "stage_account_ids" {
  value = { for k, m in module.stage : k => m.id }
}
