//! The Functions host's invocation envelopes for a custom handler, built as the host builds
//! them, so that nothing here is kinder than Azure.
//!
//! Source: Azure/azure-functions-host, `ScriptInvocationContextExtensions.cs`
//! (`ToHttpScriptInvocationContext`, `GetHttpScriptInvocationContextValue`): every binding
//! value that `JObject.FromObject` accepts (an object) is sent as that object; anything else
//! (a .NET string, a number) becomes `JsonConvert.SerializeObject(value)`, a JSON *string*;
//! the host test `GetHttpScriptInvocationContextValueTest_String` expects `"stringTest"` to
//! become `"\"stringTest\""`. Binding data whose name ends in `trigger` (`QueueTrigger`) is
//! left out of `Metadata`, because `Data` already holds it; `DateTimeOffset`s stay dates.
//! The fixtures in `crates/airlock/tests/fixtures/envelope-*.json` are these shapes.

use serde_json::{Value, json};

/// What `GetHttpScriptInvocationContextValue` makes of a .NET string: `SerializeObject`.
pub fn host_string(text: &str) -> Value {
    Value::String(Value::String(text.to_string()).to_string())
}

/// What it makes of a .NET number (`long`, `int`): `SerializeObject` again, so a string.
pub fn host_number(n: u64) -> Value {
    Value::String(n.to_string())
}

/// The queue trigger's envelope for one message (`Data.item`: the message text, a .NET
/// string after base64 decoding) with the Storage Queues extension's binding data.
pub fn queue_message(text: &str, id: &str, dequeue_count: u32, function: &str) -> Value {
    let now = chrono::Utc::now();
    json!({
        "Data": {"item": host_string(text)},
        "Metadata": {
            "DequeueCount": host_number(dequeue_count.into()),
            "ExpirationTime": now + chrono::Duration::days(7),
            "Id": host_string(id),
            "InsertionTime": now,
            "NextVisibleTime": now + chrono::Duration::seconds(30),
            "PopReceipt": host_string("AgAAAAMAAAAAAAAA"),
            "sys": sys(function),
        }
    })
}

/// The Event Grid trigger's envelope for one event, as an object (`JObject.FromObject`
/// keeps it) or, when the extension hands the host a string, as the host encodes a string.
pub fn event_grid(event: &Value, as_string: bool, function: &str) -> Value {
    let data = if as_string {
        host_string(&event.to_string())
    } else {
        event.clone()
    };
    json!({"Data": {"event": data}, "Metadata": {"sys": sys(function)}})
}

/// The timer trigger's envelope: `TimerInfo` is an object.
pub fn timer(function: &str) -> Value {
    let now = chrono::Utc::now();
    json!({
        "Data": {"timer": {
            "Schedule": {"AdjustForDST": true},
            "ScheduleStatus": {"Last": now, "Next": now + chrono::Duration::minutes(5), "LastUpdated": now},
            "IsPastDue": false
        }},
        "Metadata": {"sys": sys(function)}
    })
}

/// `SystemBindingData`: an object, kept as is.
fn sys(function: &str) -> Value {
    json!({"MethodName": function, "UtcNow": chrono::Utc::now(), "RandGuid": uuid::Uuid::new_v4()})
}
