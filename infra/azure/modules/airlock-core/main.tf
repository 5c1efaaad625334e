# The TRE-level airlock: the TRE's stage accounts, Cosmos DB, the Event Grid topics, the
# Function App running the `handler` custom handler, and its least-privilege identity.

terraform {
  required_providers {
    azurerm = { source = "hashicorp/azurerm", version = "~> 4.55" }
  }
}

locals {
  # The one list of which events reach which function (shared with the local router).
  subscriptions = jsondecode(file("${path.module}/../../../subscriptions.json")).subscriptions
  blob_stages   = one([for s in local.subscriptions : s.source.storageStages if s.name == "blob-created"])
  blob_events   = one([for s in local.subscriptions : s.eventTypes if s.name == "blob-created"])

  # TRE-level stages; `external` ones take uploads/downloads from outside the TRE network.
  stages = {
    stalimex      = { external = true, retention = 0 }
    stalimip      = { external = false, retention = 0 }
    stalimrej     = { external = false, retention = var.retention_days }
    stalimblocked = { external = false, retention = var.retention_days }
    stalexapp     = { external = true, retention = 0 }
  }
  topics = toset(jsondecode(file("${path.module}/../../../subscriptions.json")).topics)
}

module "stage" {
  source                     = "../stage-account"
  for_each                   = local.stages
  name                       = "${each.key}${var.tre_id}"
  resource_group_name        = var.resource_group_name
  location                   = var.location
  external                   = each.value.external
  retention_days             = each.value.retention
  private_endpoint_subnet_id = var.core_private_endpoint_subnet_id
  blob_private_dns_zone_id   = var.private_dns_zone_ids.blob
  log_analytics_workspace_id = azurerm_log_analytics_workspace.airlock.id
  cors_allowed_origins       = local.web_origins
  tags                       = var.tags
}

# ---- Cosmos DB: records, Entra ID only ----

resource "azurerm_cosmosdb_account" "airlock" {
  name                               = "cosmos-airlock-${var.tre_id}"
  resource_group_name                = var.resource_group_name
  location                           = var.location
  offer_type                         = "Standard"
  kind                               = "GlobalDocumentDB"
  local_authentication_disabled      = true
  public_network_access_enabled      = false
  is_virtual_network_filter_enabled  = true
  access_key_metadata_writes_enabled = false
  minimal_tls_version                = "Tls12"
  tags                               = var.tags

  consistency_policy {
    consistency_level = "Session"
  }
  geo_location {
    location          = var.location
    failover_priority = 0
    zone_redundant    = true
  }
  backup {
    type = "Continuous"
    tier = "Continuous7Days"
  }
}

resource "azurerm_cosmosdb_sql_database" "airlock" {
  name                = "airlock"
  resource_group_name = var.resource_group_name
  account_name        = azurerm_cosmosdb_account.airlock.name
}

resource "azurerm_cosmosdb_sql_container" "requests" {
  name                  = "requests"
  resource_group_name   = var.resource_group_name
  account_name          = azurerm_cosmosdb_account.airlock.name
  database_name         = azurerm_cosmosdb_sql_database.airlock.name
  partition_key_paths   = ["/workspaceId"]
  partition_key_version = 2

  # The lists filter on the workspace (and the creator or the type) and order by a time: a
  # filter with an ORDER BY on another property is served by a composite index of the filter
  # properties then the order property; one index serves both directions (docs/deploy.md,
  # "Cosmos DB indexes"). The bookkeeping arrays are never queried: not indexed.
  indexing_policy {
    indexing_mode = "consistent"
    included_path {
      path = "/*"
    }
    excluded_path {
      path = "/historyTail/*"
    }
    excluded_path {
      path = "/comments/*"
    }
    excluded_path {
      path = "/linksIssued/*"
    }
    dynamic "composite_index" {
      for_each = [
        ["/workspaceId", "/createdWhen"],
        ["/workspaceId", "/updatedWhen"],
        ["/workspaceId", "/createdBy/id", "/createdWhen"],
        ["/workspaceId", "/createdBy/id", "/updatedWhen"],
        ["/workspaceId", "/type", "/createdWhen"],
      ]
      content {
        dynamic "index" {
          for_each = composite_index.value
          content {
            path  = index.value
            order = "Ascending"
          }
        }
      }
    }
  }
}

resource "azurerm_cosmosdb_sql_container" "workspaces" {
  name                  = "workspaces"
  resource_group_name   = var.resource_group_name
  account_name          = azurerm_cosmosdb_account.airlock.name
  database_name         = azurerm_cosmosdb_sql_database.airlock.name
  partition_key_paths   = ["/scope"]
  partition_key_version = 2
}

# The audit trail: one item per entry, never replaced (the function app may only create and
# read here, see identity.tf).
resource "azurerm_cosmosdb_sql_container" "history" {
  name                  = "history"
  resource_group_name   = var.resource_group_name
  account_name          = azurerm_cosmosdb_account.airlock.name
  database_name         = azurerm_cosmosdb_sql_database.airlock.name
  partition_key_paths   = ["/requestId"]
  partition_key_version = 2
}

# The release ledger: what each workspace released (approved exports), by sha256, for the
# release-ledger gate; append-only like the history (identity.tf).
resource "azurerm_cosmosdb_sql_container" "releases" {
  name                  = "releases"
  resource_group_name   = var.resource_group_name
  account_name          = azurerm_cosmosdb_account.airlock.name
  database_name         = azurerm_cosmosdb_sql_database.airlock.name
  partition_key_paths   = ["/workspaceId"]
  partition_key_version = 2
}

resource "azurerm_private_endpoint" "cosmos" {
  name                = "pe-cosmos-airlock-${var.tre_id}"
  resource_group_name = var.resource_group_name
  location            = var.location
  subnet_id           = var.core_private_endpoint_subnet_id
  tags                = var.tags
  private_service_connection {
    name                           = "psc-cosmos-airlock"
    private_connection_resource_id = azurerm_cosmosdb_account.airlock.id
    subresource_names              = ["Sql"]
    is_manual_connection           = false
  }
  private_dns_zone_group {
    name                 = "cosmos"
    private_dns_zone_ids = [var.private_dns_zone_ids.cosmos]
  }
}

# ---- Event Grid custom topics: status changes, scan results, notifications ----

resource "azurerm_eventgrid_topic" "airlock" {
  #checkov:skip=CKV_AZURE_193:Only the scan-result topic is public (Defender for Storage cannot publish to a network-restricted topic); local auth is off, so publishing needs an Entra token with send rights.
  for_each            = local.topics
  name                = "evgt-airlock-${each.key}-${var.tre_id}"
  resource_group_name = var.resource_group_name
  location            = var.location
  input_schema        = "EventGridSchema"
  local_auth_enabled  = false
  # Defender for Storage cannot publish to a network-restricted topic, so the scan-result
  # topic alone is public; publishing still needs an Entra token with send rights (local
  # auth is off), and ScanCompleted checks every verdict against the sealed blob's eTag and
  # Defender's index tag (docs/deploy.md, "The scan path").
  public_network_access_enabled = each.key == "scan-result"
  tags                          = var.tags
  identity {
    type = "SystemAssigned"
  }
}

resource "azurerm_private_endpoint" "topic" {
  for_each            = local.topics
  name                = "pe-evgt-airlock-${each.key}"
  resource_group_name = var.resource_group_name
  location            = var.location
  subnet_id           = var.core_private_endpoint_subnet_id
  tags                = var.tags
  private_service_connection {
    name                           = "psc-evgt-${each.key}"
    private_connection_resource_id = azurerm_eventgrid_topic.airlock[each.key].id
    subresource_names              = ["topic"]
    is_manual_connection           = false
  }
  private_dns_zone_group {
    name                 = "eventgrid"
    private_dns_zone_ids = [var.private_dns_zone_ids.eventgrid]
  }
}
