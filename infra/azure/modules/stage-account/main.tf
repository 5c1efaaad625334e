# One airlock stage storage account, secure by default: Entra ID only (no shared keys),
# HTTPS + TLS 1.2, no anonymous access, public network access only for the two external
# stages, a private endpoint otherwise, and (optionally) deletion of old data.

terraform {
  required_providers {
    azurerm = { source = "hashicorp/azurerm", version = "~> 4.55" }
  }
}

variable "name" {
  description = "Storage account name, e.g. stalimiptre1."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9]{3,24}$", var.name))
    error_message = "A storage account name is 3-24 lower-case letters and digits."
  }
}
variable "resource_group_name" { type = string }
variable "location" { type = string }
variable "external" {
  description = "True for stalimex and stalexapp: reachable from the internet (with a SAS) rather than only through the private endpoint."
  type        = bool
  default     = false
}
variable "trusted_azure_services" {
  description = "True for the Function App's host account: its public endpoint admits no network (default action Deny, no IP or VNet rules) but trusted Azure services (bypass AzureServices), so Event Grid can write dead letters with its managed identity. With public network access disabled that exception does not apply and dead letters would be lost. Ignored for external accounts."
  type        = bool
  default     = false
}
variable "private_endpoint_subnet_id" {
  description = "Subnet for the blob private endpoint (TRE core or workspace network)."
  type        = string
}
variable "blob_private_dns_zone_id" {
  description = "privatelink.blob.core.windows.net zone id."
  type        = string
}
variable "extra_private_endpoints" {
  description = "More private endpoints besides blob: sub-resource (queue, table) => private DNS zone id. The Function App's host storage needs queue and table."
  type        = map(string)
  default     = {}
}
variable "retention_days" {
  description = "Delete blobs this many days after they were last modified (0 = keep). Set for rejected and blocked stages."
  type        = number
  default     = 0
}
variable "log_analytics_workspace_id" {
  description = "Where blob read/write/delete logs go (who touched which data, when)."
  type        = string
}
variable "tags" {
  type    = map(string)
  default = {}
}
variable "cors_allowed_origins" {
  description = "Origins whose pages may use this account's links from a browser (the airlock's web app); empty: none."
  type        = list(string)
  default     = []
}

resource "azurerm_storage_account" "stage" {
  name                              = var.name
  resource_group_name               = var.resource_group_name
  location                          = var.location
  account_tier                      = "Standard"
  account_replication_type          = "ZRS"
  account_kind                      = "StorageV2"
  https_traffic_only_enabled        = true
  min_tls_version                   = "TLS1_2"
  shared_access_key_enabled         = false
  default_to_oauth_authentication   = true
  allow_nested_items_to_be_public   = false
  public_network_access_enabled     = var.external || var.trusted_azure_services
  infrastructure_encryption_enabled = true
  cross_tenant_replication_enabled  = false
  local_user_enabled                = false
  tags                              = var.tags

  sas_policy {
    # User-delegation SAS from the airlock live 60 minutes by default; nothing longer.
    expiration_period = "01.00:00:00"
    expiration_action = "Block"
  }

  blob_properties {
    delete_retention_policy {
      days = 7
    }
    container_delete_retention_policy {
      days = 7
    }
    # The web app uploads and downloads through the links from the browser: a CORS rule for
    # its origin only (Blob service CORS, learn.microsoft.com/rest/api/storageservices/cross-origin-resource-sharing--cors--support-for-the-azure-storage-services).
    dynamic "cors_rule" {
      for_each = length(var.cors_allowed_origins) > 0 ? [1] : []
      content {
        allowed_origins    = var.cors_allowed_origins
        allowed_methods    = ["GET", "HEAD", "PUT", "OPTIONS"]
        allowed_headers    = ["content-type", "x-ms-*"]
        exposed_headers    = ["etag", "content-length", "x-ms-*"]
        max_age_in_seconds = 3600
      }
    }
  }

  network_rules {
    default_action = var.external ? "Allow" : "Deny"
    bypass         = ["AzureServices"]
  }
}

resource "azurerm_private_endpoint" "blob" {
  name                = "pe-${var.name}-blob"
  resource_group_name = var.resource_group_name
  location            = var.location
  subnet_id           = var.private_endpoint_subnet_id
  tags                = var.tags

  private_service_connection {
    name                           = "psc-${var.name}-blob"
    private_connection_resource_id = azurerm_storage_account.stage.id
    subresource_names              = ["blob"]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "blob"
    private_dns_zone_ids = [var.blob_private_dns_zone_id]
  }
}

resource "azurerm_private_endpoint" "extra" {
  for_each            = var.extra_private_endpoints
  name                = "pe-${var.name}-${each.key}"
  resource_group_name = var.resource_group_name
  location            = var.location
  subnet_id           = var.private_endpoint_subnet_id
  tags                = var.tags

  private_service_connection {
    name                           = "psc-${var.name}-${each.key}"
    private_connection_resource_id = azurerm_storage_account.stage.id
    subresource_names              = [each.key]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = each.key
    private_dns_zone_ids = [each.value]
  }
}

resource "azurerm_storage_management_policy" "retention" {
  count              = var.retention_days > 0 ? 1 : 0
  storage_account_id = azurerm_storage_account.stage.id

  rule {
    name    = "delete-after-retention"
    enabled = true
    filters {
      blob_types = ["blockBlob"]
    }
    actions {
      base_blob {
        delete_after_days_since_modification_greater_than = var.retention_days
      }
    }
  }
}

resource "azurerm_monitor_diagnostic_setting" "blob" {
  name                       = "airlock-blob-access"
  target_resource_id         = "${azurerm_storage_account.stage.id}/blobServices/default"
  log_analytics_workspace_id = var.log_analytics_workspace_id

  enabled_log {
    category = "StorageRead"
  }
  enabled_log {
    category = "StorageWrite"
  }
  enabled_log {
    category = "StorageDelete"
  }
}

output "id" {
  value = azurerm_storage_account.stage.id
}
output "name" {
  value = azurerm_storage_account.stage.name
}
