# The Function App that runs `handler` (a custom handler) with a system-assigned identity:
# the API through its private endpoint, Event Grid's deliveries through its public endpoint
# (service tag AzureEventGrid only), its outbound traffic routed through the TRE network.
# Its host storage and the dead-letter container are identity-only.

# The Functions host keeps its state in blobs, queues and tables (identity-based
# AzureWebJobsStorage): the same hardened account as every stage, with queue and table
# private endpoints too.
module "host_storage" {
  source              = "../stage-account"
  name                = "stalfunc${var.tre_id}"
  resource_group_name = var.resource_group_name
  location            = var.location
  external            = false
  # Event Grid writes dead letters here through the public endpoint with the topics'
  # identities: "Enabled from selected networks" with none selected, trusted services
  # allowed ("Grant access to trusted Azure services", Azure Storage network security).
  trusted_azure_services     = true
  private_endpoint_subnet_id = var.core_private_endpoint_subnet_id
  blob_private_dns_zone_id   = var.private_dns_zone_ids.blob
  extra_private_endpoints = {
    queue = var.private_dns_zone_ids.queue
    table = var.private_dns_zone_ids.table
  }
  log_analytics_workspace_id = azurerm_log_analytics_workspace.airlock.id
  tags                       = var.tags
}

# Work proportional to data size (hashing a sealed or approved copy), queued by the event
# functions and done by the `Work` queue trigger (function-manifests/Work, host.json
# `extensions.queues`): an Event Grid delivery is answered at once whatever the file size.
# Created through Resource Manager (storage_account_id), as the data plane is private.
resource "azurerm_storage_queue" "work" {
  name               = "airlock-work"
  storage_account_id = module.host_storage.id
}

resource "azurerm_storage_queue" "work_poison" {
  name               = "airlock-work-poison"
  storage_account_id = module.host_storage.id
}

# Events that could not be delivered after every retry land here, one blob per event.
resource "azurerm_storage_container" "dead_letters" {
  name                  = "deadletters"
  storage_account_id    = module.host_storage.id
  container_access_type = "private"
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
  # Microsoft Entra ID only: the instrumentation key in the connection string identifies the
  # resource but cannot write to it. The host authenticates with the app's identity
  # (APPLICATIONINSIGHTS_AUTHENTICATION_STRING below) and so does the handler for its custom
  # metrics; both need Monitoring Metrics Publisher here (identity.tf). See
  # learn.microsoft.com/azure/azure-monitor/app/azure-ad-authentication.
  local_authentication_disabled = true
  tags                          = var.tags
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
  #checkov:skip=CKV_AZURE_221:Event Grid cannot deliver to private endpoints; the public endpoint admits only the AzureEventGrid service tag (ip_restriction_default_action = Deny), and each webhook needs the host's system key.
  name                          = "func-airlock-${var.tre_id}"
  resource_group_name           = var.resource_group_name
  location                      = var.location
  service_plan_id               = azurerm_service_plan.airlock.id
  storage_account_name          = module.host_storage.name
  storage_uses_managed_identity = true
  https_only                    = true
  # Public, but closed to all but Event Grid: Event Grid cannot deliver to a private
  # endpoint, so its webhooks (which also need the host's system key) come in over the
  # public endpoint from the AzureEventGrid service tag only. The API is reached through the
  # private endpoint below (access restrictions do not apply there), or from the ranges in
  # api_allowed_cidrs. See docs/deploy.md, "How events reach the functions".
  public_network_access_enabled = true
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
    ip_restriction_default_action          = "Deny"
    scm_ip_restriction_default_action      = "Deny"

    ip_restriction {
      name        = "event-grid"
      description = "Event Grid webhook deliveries (the functions' eventGridTrigger endpoints)."
      service_tag = "AzureEventGrid"
      priority    = 100
      action      = "Allow"
    }

    dynamic "ip_restriction" {
      for_each = var.api_allowed_cidrs
      content {
        name       = "api-${ip_restriction.key}"
        ip_address = ip_restriction.value
        priority   = 200 + ip_restriction.key
        action     = "Allow"
      }
    }

    # Zip deployment (Kudu, the SCM site) from the listed addresses; everything else is
    # refused. Traffic through the private endpoint is not subject to these rules, so a
    # machine inside the TRE network deploys with the list empty (docs/deploy.md step 5).
    dynamic "scm_ip_restriction" {
      for_each = var.deploy_allowed_cidrs
      content {
        name       = "deploy-${scm_ip_restriction.key}"
        ip_address = scm_ip_restriction.value
        priority   = 300 + scm_ip_restriction.key
        action     = "Allow"
      }
    }

    # The handler is a custom handler (sets FUNCTIONS_WORKER_RUNTIME=custom).
    application_stack {
      use_custom_runtime = true
    }
  }

  app_settings = merge({
    AIRLOCK_BACKEND                       = "azure"
    AIRLOCK_TRE_ID                        = var.tre_id
    AIRLOCK_CREDENTIAL                    = "managed-identity"
    AIRLOCK_BLOB_ENDPOINT                 = "https://{account}.blob.core.windows.net"
    AIRLOCK_COSMOS_ENDPOINT               = azurerm_cosmosdb_account.airlock.endpoint
    AIRLOCK_COSMOS_DATABASE               = azurerm_cosmosdb_sql_database.airlock.name
    AIRLOCK_STATUS_CHANGED_TOPIC_ENDPOINT = azurerm_eventgrid_topic.airlock["status-changed"].endpoint
    AIRLOCK_NOTIFICATION_TOPIC_ENDPOINT   = azurerm_eventgrid_topic.airlock["notification"].endpoint
    AIRLOCK_WORK_QUEUE_URL                = "https://${module.host_storage.name}.queue.core.windows.net/${azurerm_storage_queue.work.name}"
    AIRLOCK_AUTH_ISSUER                   = var.auth_issuer
    AIRLOCK_AUTH_JWKS_URL                 = var.auth_jwks_url
    AIRLOCK_API_AUDIENCE                  = var.api_audience
    AIRLOCK_POLICY_DEFAULTS               = module.policy_defaults.json
    AIRLOCK_LOG_FORMAT                    = "json"
    # The host's telemetry with the system-assigned identity (local authentication is off on
    # the resource): learn.microsoft.com/azure/azure-functions/functions-app-settings
    # (APPLICATIONINSIGHTS_AUTHENTICATION_STRING). The handler reads the connection string
    # the host is given and sends its custom metrics with the same identity.
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING = "Authorization=AAD"
    # glibc's allocator, bounded (docs/operating.md, "The handler's process"): a 2 MiB read
    # buffer always comes from mmap and is given back when freed, and two arenas serve every
    # thread. The handler inherits the host's environment; the local stack sets the same.
    MALLOC_MMAP_THRESHOLD_ = "1048576"
    MALLOC_ARENA_MAX       = "2"
    # Defender's on-demand scan of an in-progress account, asked for before a missing
    # verdict fails a request (docs/deploy.md, "The scan path").
    AIRLOCK_RESCAN_TRE_ACCOUNT_ID       = "${local.stage_account_id_prefix}/resourceGroups/${var.resource_group_name}/providers/Microsoft.Storage/storageAccounts/{account}"
    AIRLOCK_RESCAN_WORKSPACE_ACCOUNT_ID = "${local.stage_account_id_prefix}/resourceGroups/${var.workspace_resource_group_pattern}/providers/Microsoft.Storage/storageAccounts/{account}"
    }, var.web_client_id == "" ? {} : {
    # The web app (served by this Function App under /api/app) signs in with Entra ID.
    AIRLOCK_WEB_AUTHORITY = var.web_authority
    AIRLOCK_WEB_CLIENT_ID = var.web_client_id
  })
}

locals {
  # Where the web app runs: this Function App's own origin (its pages and the API share it).
  web_origins = var.web_client_id == "" ? [] : ["https://func-airlock-${var.tre_id}.azurewebsites.net"]
}

module "policy_defaults" {
  source          = "../policy-defaults"
  policy_defaults = var.policy_defaults
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
