# Event routing, from infra/subscriptions.json: storage system topics send BlobCreated (only)
# from the stages that need it; the custom topics feed StatusChanged and ScanCompleted.
# Every subscription retries and then dead-letters.

# BlobCreated from the TRE-level stages; Defender scans the import in-progress stage.
module "stage_events" {
  source = "../stage-events"
  stage_account_ids = {
    for k, m in module.stage : "${k}${var.tre_id}" => m.id if contains(local.blob_stages, k)
  }
  scanned_account_names             = ["stalimip${var.tre_id}"]
  resource_group_name               = var.resource_group_name
  location                          = var.location
  function_app_id                   = azurerm_linux_function_app.airlock.id
  blob_event_types                  = local.blob_events
  dead_letter_storage_account_id    = module.host_storage.id
  dead_letter_container_name        = azurerm_storage_container.dead_letters.name
  scan_result_topic_id              = azurerm_eventgrid_topic.airlock["scan-result"].id
  malware_scanning_cap_gb_per_month = var.malware_scanning_cap_gb_per_month
  tags                              = var.tags
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
    storage_account_id          = module.host_storage.id
    storage_blob_container_name = azurerm_storage_container.dead_letters.name
  }
}
