# A deliberately wrong configuration: schema_check.py --self-test fails unless it reports
# every mistake listed in its EXPECTED table. Never deployed.

provider "azurerm" {
  features {
    storage {
      data_plane = false
    }
  }
}

resource "azurerm_storage_acount" "typo" {
  name = "x"
}

resource "azurerm_storage_account" "wrong" {
  name                      = "stwrong"
  resource_group_name       = "rg"
  location                  = "uksouth"
  account_tier              = "Standard"
  enable_https_traffic_only = true
  network_rules {
    default_actions = "Deny"
  }
  dynamic "blob_propertie" {
    for_each = [1]
    content {
      versioning_enabled = true
    }
  }
}

resource "azurerm_linux_function_app" "no_site_config" {
  name                = "func"
  resource_group_name = "rg"
  location            = "uksouth"
  service_plan_id     = "id"
}

module "stage" {
  source = "./stage"
  nmae   = "x"
}

output "nothing" {
  value = module.stage.missing
}
