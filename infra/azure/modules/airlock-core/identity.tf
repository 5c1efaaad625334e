# Least privilege for the Function App's identity and for Event Grid's dead-lettering.

locals {
  function_principal = azurerm_linux_function_app.airlock.identity[0].principal_id
  # "/subscriptions/{id}": stage account resource ids start here.
  stage_account_id_prefix = data.azurerm_subscription.current.id
}

data "azurerm_subscription" "current" {}

# Start Defender for Storage's on-demand malware scan on the import in-progress account, so a
# verdict that never came is asked for again before its request fails. Security Admin holds
# Microsoft.Security/* (the on-demand scan is a Microsoft.Security operation on the
# account); scoped to this one account (docs/deploy.md, "The scan path").
resource "azurerm_role_assignment" "stage_rescan" {
  scope                = module.stage["stalimip"].id
  role_definition_name = "Security Admin"
  principal_id         = local.function_principal
}

# Read, write and delete blobs in each TRE stage account, and sign user-delegation SAS there
# (Storage Blob Data Contributor includes generateUserDelegationKey/action: no Storage Blob
# Delegator besides it; infra/rbac.json).
resource "azurerm_role_assignment" "stage_data" {
  for_each             = module.stage
  scope                = each.value.id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = local.function_principal
}

# Read blob index tags, and nothing else: Defender for Storage writes its verdict there and
# ScanCompleted and Reconcile read it (the check that an event agrees with Defender's record,
# and the fallback for a lost verdict). Storage Blob Data Contributor does not include tags/read
# ("Manage and find Azure Blob data with blob index tags": reading tags needs Storage Blob Data
# Owner or a custom role with this data action). Not Data Owner: that adds tags/write, and only
# Defender may write the verdict tag. Assigned on the in-progress accounts only (docs/deploy.md,
# "Roles of the Function App's identity").
resource "azurerm_role_definition" "blob_tag_reader" {
  name        = "Airlock blob index tag reader (${var.tre_id})"
  scope       = data.azurerm_subscription.current.id
  description = "Read blob index tags (Defender for Storage's malware verdict) and nothing else."
  permissions {
    actions      = []
    data_actions = ["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags/read"]
  }
  assignable_scopes = [data.azurerm_subscription.current.id]
}

resource "azurerm_role_assignment" "stage_tag_reader" {
  scope              = module.stage["stalimip"].id
  role_definition_id = azurerm_role_definition.blob_tag_reader.role_definition_resource_id
  principal_id       = local.function_principal
}

# Application Insights with local authentication off: the host's telemetry and the
# handler's custom metrics (Reconcile's gauges) are written with this identity's token.
resource "azurerm_role_assignment" "telemetry_publisher" {
  scope                = azurerm_application_insights.airlock.id
  role_definition_name = "Monitoring Metrics Publisher"
  principal_id         = local.function_principal
}

# The Functions host's own storage (identity-based AzureWebJobsStorage).
resource "azurerm_role_assignment" "host_storage" {
  for_each             = toset(["Storage Blob Data Owner", "Storage Queue Data Contributor", "Storage Table Data Contributor"])
  scope                = module.host_storage.id
  role_definition_name = each.key
  principal_id         = local.function_principal
}

# Publish status changes and notifications.
resource "azurerm_role_assignment" "topic_sender" {
  for_each             = toset(["status-changed", "notification"])
  scope                = azurerm_eventgrid_topic.airlock[each.key].id
  role_definition_name = "EventGrid Data Sender"
  principal_id         = local.function_principal
}

# Cosmos DB Built-in Data Contributor on the request and workspace containers only.
resource "azurerm_cosmosdb_sql_role_assignment" "function" {
  for_each = {
    requests   = azurerm_cosmosdb_sql_container.requests.name
    workspaces = azurerm_cosmosdb_sql_container.workspaces.name
  }
  resource_group_name = var.resource_group_name
  account_name        = azurerm_cosmosdb_account.airlock.name
  role_definition_id  = "${azurerm_cosmosdb_account.airlock.id}/sqlRoleDefinitions/00000000-0000-0000-0000-000000000002"
  principal_id        = local.function_principal
  scope               = "${azurerm_cosmosdb_account.airlock.id}/dbs/${azurerm_cosmosdb_sql_database.airlock.name}/colls/${each.value}"
}

# The audit trail and the release ledger are append-only, for the airlock too: create and
# read, never replace, upsert or delete. Data actions:
# https://learn.microsoft.com/azure/cosmos-db/reference-data-plane-security
locals {
  append_only_containers = {
    history  = azurerm_cosmosdb_sql_container.history.name
    releases = azurerm_cosmosdb_sql_container.releases.name
  }
}

resource "azurerm_cosmosdb_sql_role_definition" "history_appender" {
  name                = "Airlock history appender"
  resource_group_name = var.resource_group_name
  account_name        = azurerm_cosmosdb_account.airlock.name
  type                = "CustomRole"
  assignable_scopes   = [for c in local.append_only_containers : "${azurerm_cosmosdb_account.airlock.id}/dbs/${azurerm_cosmosdb_sql_database.airlock.name}/colls/${c}"]
  permissions {
    data_actions = [
      "Microsoft.DocumentDB/databaseAccounts/readMetadata",
      "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/create",
      "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/read",
      "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/executeQuery",
    ]
  }
}

resource "azurerm_cosmosdb_sql_role_assignment" "history" {
  for_each            = local.append_only_containers
  resource_group_name = var.resource_group_name
  account_name        = azurerm_cosmosdb_account.airlock.name
  role_definition_id  = azurerm_cosmosdb_sql_role_definition.history_appender.id
  principal_id        = local.function_principal
  scope               = "${azurerm_cosmosdb_account.airlock.id}/dbs/${azurerm_cosmosdb_sql_database.airlock.name}/colls/${each.value}"
}

# Event Grid writes dead letters with the custom topics' identities (the system topics'
# are in the stage-events module).
resource "azurerm_role_assignment" "dead_letter_topics" {
  for_each             = azurerm_eventgrid_topic.airlock
  scope                = module.host_storage.id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = each.value.identity[0].principal_id
}

# The history's assignment became one of two (history, releases): keep the existing one.
moved {
  from = azurerm_cosmosdb_sql_role_assignment.history
  to   = azurerm_cosmosdb_sql_role_assignment.history["history"]
}
