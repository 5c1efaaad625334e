# Event routing, from infra/subscriptions.json: storage system topics send BlobCreated (only)
# from the stages that need it; the custom topics feed StatusChanged and ScanCompleted.
# Every subscription retries and then dead-letters.

resource "azurerm_eventgrid_system_topic" "stage" {
  for_each            = toset([for s in keys(local.stages) : s if contains(local.blob_stages, s)])
  name                = "evgst-${each.key}${var.tre_id}"
  resource_group_name = var.resource_group_name
  location            = var.location
  source_resource_id  = module.stage[each.key].id
  topic_type          = "Microsoft.Storage.StorageAccounts"
  tags                = var.tags
  identity {
    type = "SystemAssigned"
  }
}

resource "azurerm_eventgrid_system_topic_event_subscription" "blob_created" {
  for_each             = azurerm_eventgrid_system_topic.stage
  name                 = "blob-created"
  system_topic         = each.value.name
  resource_group_name  = var.resource_group_name
  included_event_types = local.blob_events

  azure_function_endpoint {
    function_id                       = "${azurerm_linux_function_app.airlock.id}/functions/BlobCreated"
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
    storage_account_id          = azurerm_storage_account.host.id
    storage_blob_container_name = azurerm_storage_container.dead_letters.name
  }
}

# Custom-topic subscriptions (status-changed -> StatusChanged, scan-result -> ScanCompleted).
resource "azurerm_eventgrid_event_subscription" "function" {
  for_each             = { for s in local.subscriptions : s.name => s if try(s.source.topic, null) != null }
  name                 = each.key
  scope                = azurerm_eventgrid_topic.airlock[each.value.source.topic].id
  included_event_types = each.value.eventTypes

  azure_function_endpoint {
    function_id          = "${azurerm_linux_function_app.airlock.id}/functions/${each.value.function}"
    max_events_per_batch = 1
  }
  retry_policy {
    max_delivery_attempts = 30
    event_time_to_live    = 1440
  }
  dead_letter_identity {
    type = "SystemAssigned"
  }
  storage_blob_dead_letter_destination {
    storage_account_id          = azurerm_storage_account.host.id
    storage_blob_container_name = azurerm_storage_container.dead_letters.name
  }
}

# Defender for Storage scans every blob landing in the import in-progress stage and sends
# the verdict to the scan-result topic.
resource "azurerm_security_center_storage_defender" "import_in_progress" {
  storage_account_id                          = module.stage["stalimip"].id
  override_subscription_settings_enabled      = true
  malware_scanning_on_upload_enabled          = true
  malware_scanning_on_upload_cap_gb_per_month = var.malware_scanning_cap_gb_per_month
  scan_results_event_grid_topic_id            = azurerm_eventgrid_topic.airlock["scan-result"].id
  sensitive_data_discovery_enabled            = false
}
