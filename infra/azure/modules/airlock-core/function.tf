# The Function App that runs `handler` (a custom handler) with a system-assigned identity,
# reachable only through its private endpoint, its outbound traffic routed through the TRE
# network. Its host storage and the dead-letter container are identity-only too.

resource "azurerm_storage_account" "host" {
  name                              = "stalfunc${var.tre_id}"
  resource_group_name               = var.resource_group_name
  location                          = var.location
  account_tier                      = "Standard"
  account_replication_type          = "ZRS"
  https_traffic_only_enabled        = true
  min_tls_version                   = "TLS1_2"
  shared_access_key_enabled         = false
  default_to_oauth_authentication   = true
  allow_nested_items_to_be_public   = false
  public_network_access_enabled     = false
  infrastructure_encryption_enabled = true
  cross_tenant_replication_enabled  = false
  local_user_enabled                = false
  tags                              = var.tags
  sas_policy {
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
  }
  network_rules {
    default_action = "Deny"
    bypass         = ["AzureServices"]
  }
}

# The Functions host keeps its state in blobs, queues and tables (identity-based
# AzureWebJobsStorage), all through private endpoints.
resource "azurerm_private_endpoint" "host" {
  for_each = {
    blob  = var.private_dns_zone_ids.blob
    queue = var.private_dns_zone_ids.queue
    table = var.private_dns_zone_ids.table
  }
  name                = "pe-stalfunc-${var.tre_id}-${each.key}"
  resource_group_name = var.resource_group_name
  location            = var.location
  subnet_id           = var.core_private_endpoint_subnet_id
  tags                = var.tags
  private_service_connection {
    name                           = "psc-stalfunc-${each.key}"
    private_connection_resource_id = azurerm_storage_account.host.id
    subresource_names              = [each.key]
    is_manual_connection           = false
  }
  private_dns_zone_group {
    name                 = each.key
    private_dns_zone_ids = [each.value]
  }
}

# Events that could not be delivered after every retry land here, one blob per event.
resource "azurerm_storage_container" "dead_letters" {
  name                  = "deadletters"
  storage_account_id    = azurerm_storage_account.host.id
  container_access_type = "private"
}

resource "azurerm_monitor_diagnostic_setting" "host_blob" {
  name                       = "airlock-blob-access"
  target_resource_id         = "${azurerm_storage_account.host.id}/blobServices/default"
  log_analytics_workspace_id = azurerm_log_analytics_workspace.airlock.id
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

resource "azurerm_log_analytics_workspace" "airlock" {
  name                = "log-airlock-${var.tre_id}"
  resource_group_name = var.resource_group_name
  location            = var.location
  sku                 = "PerGB2018"
  retention_in_days   = var.log_retention_days
  tags                = var.tags
}

resource "azurerm_application_insights" "airlock" {
  name                = "appi-airlock-${var.tre_id}"
  resource_group_name = var.resource_group_name
  location            = var.location
  workspace_id        = azurerm_log_analytics_workspace.airlock.id
  application_type    = "other"
  tags                = var.tags
}

resource "azurerm_service_plan" "airlock" {
  name                   = "asp-airlock-${var.tre_id}"
  resource_group_name    = var.resource_group_name
  location               = var.location
  os_type                = "Linux"
  sku_name               = var.function_plan_sku
  zone_balancing_enabled = true
  worker_count           = 3
  tags                   = var.tags
}

resource "azurerm_linux_function_app" "airlock" {
  name                          = "func-airlock-${var.tre_id}"
  resource_group_name           = var.resource_group_name
  location                      = var.location
  service_plan_id               = azurerm_service_plan.airlock.id
  storage_account_name          = azurerm_storage_account.host.name
  storage_uses_managed_identity = true
  https_only                    = true
  public_network_access_enabled = false
  virtual_network_subnet_id     = var.function_integration_subnet_id
  client_certificate_enabled    = false
  tags                          = var.tags

  identity {
    type = "SystemAssigned"
  }

  site_config {
    # A dedicated plan idles otherwise, and the Reconcile timer must fire.
    always_on                              = true
    minimum_tls_version                    = "1.2"
    ftps_state                             = "Disabled"
    http2_enabled                          = true
    vnet_route_all_enabled                 = true
    application_insights_connection_string = azurerm_application_insights.airlock.connection_string
  }

  app_settings = {
    FUNCTIONS_WORKER_RUNTIME              = "custom"
    AIRLOCK_BACKEND                       = "azure"
    AIRLOCK_TRE_ID                        = var.tre_id
    AIRLOCK_CREDENTIAL                    = "managed-identity"
    AIRLOCK_BLOB_ENDPOINT                 = "https://{account}.blob.core.windows.net"
    AIRLOCK_COSMOS_ENDPOINT               = azurerm_cosmosdb_account.airlock.endpoint
    AIRLOCK_COSMOS_DATABASE               = azurerm_cosmosdb_sql_database.airlock.name
    AIRLOCK_STATUS_CHANGED_TOPIC_ENDPOINT = azurerm_eventgrid_topic.airlock["status-changed"].endpoint
    AIRLOCK_NOTIFICATION_TOPIC_ENDPOINT   = azurerm_eventgrid_topic.airlock["notification"].endpoint
    AIRLOCK_AUTH_ISSUER                   = var.auth_issuer
    AIRLOCK_AUTH_JWKS_URL                 = var.auth_jwks_url
    AIRLOCK_API_AUDIENCE                  = var.api_audience
    AIRLOCK_POLICY_DEFAULTS               = jsonencode(var.policy_defaults)
    AIRLOCK_LOG_FORMAT                    = "json"
  }
}

resource "azurerm_private_endpoint" "function" {
  name                = "pe-func-airlock-${var.tre_id}"
  resource_group_name = var.resource_group_name
  location            = var.location
  subnet_id           = var.core_private_endpoint_subnet_id
  tags                = var.tags
  private_service_connection {
    name                           = "psc-func-airlock"
    private_connection_resource_id = azurerm_linux_function_app.airlock.id
    subresource_names              = ["sites"]
    is_manual_connection           = false
  }
  private_dns_zone_group {
    name                 = "sites"
    private_dns_zone_ids = [var.private_dns_zone_ids.sites]
  }
}
