output "api_url" {
  description = "Base URL of the airlock API (through the private endpoint)."
  value       = "https://${azurerm_linux_function_app.airlock.default_hostname}/api"
}
output "function_app_id" {
  value = azurerm_linux_function_app.airlock.id
}
output "function_app_name" {
  value = azurerm_linux_function_app.airlock.name
}
output "function_principal_id" {
  description = "The Function App's managed identity (workspace modules grant it access)."
  value       = local.function_principal
}
output "topic_endpoints" {
  description = "Event Grid topic endpoints: status-changed, scan-result, notification."
  value       = { for k, t in azurerm_eventgrid_topic.airlock : k => t.endpoint }
}
output "scan_result_topic_id" {
  value = azurerm_eventgrid_topic.airlock["scan-result"].id
}
output "notification_topic_id" {
  description = "Subscribe your notification Logic App here (see docs/notifications.md)."
  value       = azurerm_eventgrid_topic.airlock["notification"].id
}
output "cosmos_endpoint" {
  value = azurerm_cosmosdb_account.airlock.endpoint
}
output "dead_letter_storage_account_id" {
  value = module.host_storage.id
}
output "blob_stages" {
  description = "Stage prefixes whose BlobCreated events the airlock consumes."
  value       = local.blob_stages
}
output "log_analytics_workspace_id" {
  value = azurerm_log_analytics_workspace.airlock.id
}
output "blob_event_types" {
  description = "Event types the blob-created subscription takes (from subscriptions.json)."
  value       = local.blob_events
}
output "blob_tag_reader_role_definition_id" {
  description = "The custom role that reads blob index tags only (workspace modules assign it on the export in-progress account)."
  value       = azurerm_role_definition.blob_tag_reader.role_definition_resource_id
}
output "web_origins" {
  description = "The web app's origin, for the workspaces' stage accounts' CORS rules (empty without web sign-in)."
  value       = local.web_origins
}
