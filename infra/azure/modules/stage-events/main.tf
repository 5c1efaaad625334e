# BlobCreated from a set of stage accounts to the airlock's BlobCreated function, written once
# for the TRE-level and the workspace stages: one Event Grid system topic per account, its
# subscription (retries, then dead letters), the dead-letter role, and, on the accounts that
# are scanned, Defender for Storage malware scanning created only after the system topic.
#
# Azure allows one system topic per source; enabling malware scanning makes Defender create a
# tracked system topic on the account unless one exists (AzureTRE #4978). Creating ours first
# (depends_on below) leaves exactly one, which Defender then uses for its own subscription.

terraform {
  required_providers {
    azurerm = { source = "hashicorp/azurerm", version = "~> 4.55" }
  }
}

variable "stage_account_ids" {
  description = "Stage account name => resource id, for every account whose BlobCreated events the airlock consumes."
  type        = map(string)
}
variable "scanned_account_names" {
  description = "Names (keys of stage_account_ids) of the accounts Defender for Storage scans on upload."
  type        = set(string)
  default     = []
}
variable "resource_group_name" {
  description = "Resource group for the system topics."
  type        = string
}
variable "location" {
  description = "Azure region (of the accounts)."
  type        = string
}
variable "function_app_id" {
  description = "The airlock Function App's resource id."
  type        = string
}
variable "blob_event_types" {
  description = "Event types of the blob-created subscription (from subscriptions.json)."
  type        = list(string)
}
variable "dead_letter_storage_account_id" {
  description = "Account holding the dead-letter container."
  type        = string
}
variable "dead_letter_container_name" {
  description = "Container for events that could not be delivered after every retry."
  type        = string
  default     = "deadletters"
}
variable "scan_result_topic_id" {
  description = "Event Grid custom topic Defender sends its verdicts to."
  type        = string
}
variable "malware_scanning_cap_gb_per_month" {
  description = "Defender for Storage malware scanning cap per scanned account."
  type        = number
  default     = 5000
}
variable "tags" {
  description = "Tags for the system topics."
  type        = map(string)
  default     = {}
}

resource "azurerm_eventgrid_system_topic" "stage" {
  for_each            = var.stage_account_ids
  name                = "evgst-${each.key}"
  resource_group_name = var.resource_group_name
  location            = var.location
  source_resource_id  = each.value
  topic_type          = "Microsoft.Storage.StorageAccounts"
  tags                = var.tags
  identity {
    type = "SystemAssigned"
  }
}

# Event Grid writes dead letters with the system topic's identity.
resource "azurerm_role_assignment" "dead_letter" {
  for_each             = azurerm_eventgrid_system_topic.stage
  scope                = var.dead_letter_storage_account_id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = each.value.identity[0].principal_id
}

resource "azurerm_eventgrid_system_topic_event_subscription" "blob_created" {
  for_each             = azurerm_eventgrid_system_topic.stage
  name                 = "blob-created"
  system_topic         = each.value.name
  resource_group_name  = var.resource_group_name
  included_event_types = var.blob_event_types

  # Delivered to the function's Event Grid webhook on the Function App's public endpoint,
  # which admits only the AzureEventGrid service tag and needs the host's system key
  # (docs/deploy.md, "How events reach the functions").
  azure_function_endpoint {
    function_id                       = "${var.function_app_id}/functions/BlobCreated"
    max_events_per_batch              = 1
    preferred_batch_size_in_kilobytes = 64
  }
  retry_policy {
    max_delivery_attempts = 30
    event_time_to_live    = 1440
  }
  dead_letter_identity {
    type = "SystemAssigned"
  }
  storage_blob_dead_letter_destination {
    storage_account_id          = var.dead_letter_storage_account_id
    storage_blob_container_name = var.dead_letter_container_name
  }
  depends_on = [azurerm_role_assignment.dead_letter]
}

resource "azurerm_security_center_storage_defender" "scanned" {
  for_each                                    = var.scanned_account_names
  storage_account_id                          = var.stage_account_ids[each.key]
  override_subscription_settings_enabled      = true
  malware_scanning_on_upload_enabled          = true
  malware_scanning_on_upload_cap_gb_per_month = var.malware_scanning_cap_gb_per_month
  scan_results_event_grid_topic_id            = var.scan_result_topic_id
  sensitive_data_discovery_enabled            = false
  depends_on                                  = [azurerm_eventgrid_system_topic.stage]
}

output "system_topic_ids" {
  description = "Stage account name => its Event Grid system topic id."
  value       = { for k, t in azurerm_eventgrid_system_topic.stage : k => t.id }
}
