//! Which way a request crosses the boundary. A leaf of the domain: the stages, the events
//! and the request all name it, so it depends on none of them.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RequestType {
    Import,
    Export,
}

impl RequestType {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "import" => Some(RequestType::Import),
            "export" => Some(RequestType::Export),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RequestType::Import => "import",
            RequestType::Export => "export",
        }
    }
}
