# The operator's workspace policy defaults, typed, and the JSON the handler reads from
# AIRLOCK_POLICY_DEFAULTS. Typed so numbers stay numbers and booleans stay booleans (a
# `map(any)` turns mixed values into strings, which the handler refuses at start-up); fields
# left out are left out of the JSON, so the handler's own defaults apply. A test runs this
# module with Terraform and feeds its output to the handler's parser
# (crates/airlock/tests/fast/docs.rs).

terraform {
  required_version = ">= 1.6"
}

variable "policy_defaults" {
  description = "Workspace policy defaults; every field optional (DESIGN.md, workspace policy)."
  type = object({
    approvalsRequired       = optional(number)
    maxFiles                = optional(number)
    maxFileBytes            = optional(number)
    maxTotalBytes           = optional(number)
    linkExpiryMinutes       = optional(number)
    uploadLinkExpiryMinutes = optional(number)
    allowedIpRanges         = optional(list(string))
    scanRequired            = optional(bool)
    scanTimeoutMinutes      = optional(number)
    unscannedFiles          = optional(string)
    # What submit needs the researcher to say (docs/lifecycle.md, context at submit).
    requirePurpose            = optional(bool)
    requireFileDescriptions   = optional(bool)
    requireDisclosureControls = optional(bool)
    # Release the approved files of a request whose other files were rejected.
    partialRelease = optional(bool)
    # Carry a reviewer's vote on an unchanged file over to a resubmission (default true).
    carryOverVotes = optional(bool)
    # Reviewers who must each override a disclosure warning before the file is released.
    disclosureOverrideReviewers = optional(number)
    # Hours in review before Reconcile reminds the airlock managers (twice: the owners too); 0 off.
    reviewDeadlineHours = optional(number)
    # Security gates beyond malware (docs/gates.md): each with a kind and a mode, and the
    # parameters of its kind.
    gates = optional(list(object({
      name = string
      kind = string
      mode = optional(string)
      # In warn mode: the researcher justifies each warned file before approval.
      requireJustification = optional(bool)
      allowedExtensions    = optional(list(string))
      maxCsvRows           = optional(number)
      archives             = optional(string)
      threshold            = optional(number)
      roundingBase         = optional(number)
      zerosDisclose        = optional(bool)
      countColumns         = optional(list(string))
      dominanceN           = optional(number)
      dominanceKPercent    = optional(number)
      pPercent             = optional(number)
      dofThreshold         = optional(number)
      # disclosure: suppressed cells a total gives back, small groups of records on their
      # quasi-identifiers (k; 0 is off), and tables of one request that can be joined.
      checkTotals      = optional(bool)
      kAnonymity       = optional(number)
      quasiIdentifiers = optional(list(string))
      linkedTables     = optional(bool)
      # What a finding that a rule could not run does: "block" or "warn" (the gate's mode
      # when not set; never off).
      uncertain = optional(string)
      # external: minutes to answer, and the service identities (object ids) that may.
      deadlineMinutes = optional(number)
      answeredBy      = optional(list(string))
      # identifiers, secrets: rules of the gate not to run.
      ignore = optional(list(string))
    })))
  })
  default = {}
  validation {
    condition     = try(var.policy_defaults.approvalsRequired, null) == null || try(var.policy_defaults.approvalsRequired >= 1, false)
    error_message = "approvalsRequired must be at least 1."
  }
  validation {
    condition     = try(var.policy_defaults.uploadLinkExpiryMinutes, null) == null || try(var.policy_defaults.uploadLinkExpiryMinutes <= 1440, false)
    error_message = "uploadLinkExpiryMinutes is at most 1440 (a day: the stage accounts' SAS expiration policy)."
  }
  validation {
    condition     = contains(["block", "review", "fail"], coalesce(try(var.policy_defaults.unscannedFiles, null), "block"))
    error_message = "unscannedFiles is \"block\" (the default), \"review\" or \"fail\"."
  }
  validation {
    condition = alltrue([for g in coalesce(try(var.policy_defaults.gates, null), []) :
      contains(["filePolicy", "disclosure", "releaseLedger", "external", "acro", "identifiers", "secrets"], g.kind) && contains(["block", "warn", "off"], coalesce(g.mode, "block")) && contains(["block", "warn"], coalesce(g.uncertain, "block"))
    ])
    error_message = "Each gate's kind is \"filePolicy\", \"disclosure\", \"releaseLedger\", \"external\", \"acro\", \"identifiers\" or \"secrets\", its mode \"block\" (the default), \"warn\" or \"off\", and its uncertain (when set) \"block\" or \"warn\"."
  }
}

output "json" {
  description = "AIRLOCK_POLICY_DEFAULTS."
  # Nulls are left out at every level (a gate's unset parameters too), so the handler's
  # defaults apply to them.
  value = jsonencode(merge(
    { for k, v in var.policy_defaults : k => v if v != null && k != "gates" },
    { for k, v in { gates = var.policy_defaults.gates } : k => [
      for g in v : { for gk, gv in g : gk => gv if gv != null }
    ] if v != null },
  ))
}
