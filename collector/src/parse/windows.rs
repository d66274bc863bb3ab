//! Windows events as JSON, flattened so Sigma's Windows field names resolve.
//!
//! Three shapes are read:
//! * **evtx** — what the `evtx` crate (`evtx_dump -o jsonl`) and Chainsaw/Hayabusa write:
//!   `{"Event":{"System":{...},"EventData":{...}}}` (or `UserData` / another section);
//! * **Winlogbeat** — `{"@timestamp":..,"winlog":{"event_id":..,"channel":..,"event_data":{..}}}`;
//! * **flat** — NXLog `to_json()` and the OTRF/Mordor datasets: `EventID`, `Channel`,
//!   `SourceName`, `Hostname` and the event data side by side at the top level.
//!
//! Flattening (all shapes): the event data keys go to the top level of `fields` with spaces
//! removed from their names (`Product Name` -> `ProductName`); XML wrappers are unwrapped
//! (`{"#text": x}` -> `x`, `#attributes` dropped, an element with only attributes keeps them);
//! then the System fields are added where the event data has no field of that name: `EventID`
//! (an integer), `Provider_Name`, `Channel`, `Computer`, `Level`, `Task`, `Opcode`, `Keywords`,
//! `EventRecordID`, `Version`, `Security_UserID`, `TimeCreated` (the `SystemTime` text).
//!
//! The log source is `product: windows`, the service from the channel (Sigma's names:
//! `Security` -> `security`, `Windows PowerShell` -> `powershell-classic`, ...; the provider when
//! the channel is unknown), the category from the event id where Sigma defines one (Sysmon
//! events, Security 4688, PowerShell script and module logging).

use super::{ParseContext, ParseError, log_event, timefmt};
use serde_json::{Map, Value};
use soc_model::windows::field_name;
pub use soc_model::windows::{
    as_int, attr, category, category_of, int_or_value, logsource, service_for_channel, service_for_provider, text,
    unwrap_xml, unwrap_xml_owned,
};
use soc_model::{Event, Log, Timestamp};

/// Which JSON shape a Windows event came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Evtx,
    Winlogbeat,
    Flat,
}

/// Recognizes a Windows event; `None` for any other JSON value.
pub fn detect(v: &Value) -> Option<Shape> {
    let o = v.as_object()?;
    if o.get("Event").and_then(|e| e.get("System")).is_some_and(Value::is_object) {
        return Some(Shape::Evtx);
    }
    if let Some(w) = o.get("winlog").and_then(Value::as_object)
        && (w.contains_key("event_id") || w.contains_key("channel") || w.contains_key("provider_name"))
    {
        return Some(Shape::Winlogbeat);
    }
    let has_id = o.get("EventID").is_some_and(|v| as_int(v).is_some());
    let has_source = ["Channel", "SourceName", "ProviderName", "Provider_Name"]
        .iter()
        .any(|k| o.get(*k).is_some_and(Value::is_string));
    if has_id && has_source {
        return Some(Shape::Flat);
    }
    None
}

/// Parses and normalizes a Windows event in any of the supported shapes.
pub fn parse(v: Value, ctx: &ParseContext<'_>) -> Result<Event, ParseError> {
    match detect(&v) {
        Some(Shape::Evtx) => Ok(from_parts(evtx_fields(&v)?, v, ctx)),
        Some(Shape::Winlogbeat) => Ok(from_parts(winlogbeat_fields(&v, ctx), v, ctx)),
        Some(Shape::Flat) => Ok(from_parts(flat_fields(&v, ctx), v, ctx)),
        None => Err(ParseError::Windows("not a Windows event (no Event.System, winlog or EventID/Channel)".into())),
    }
}

/// What a shape yields before normalization.
struct Parts {
    fields: Map<String, Value>,
    timestamp: Option<Timestamp>,
    message: Option<String>,
    pid: Option<u32>,
    /// The header's values (System in evtx), which the event data cannot override.
    header: Header,
}

#[derive(Default)]
struct Header {
    channel: Option<String>,
    provider: Option<String>,
    event_id: Option<i64>,
    computer: Option<String>,
    level: Option<i64>,
}

impl Header {
    /// Read back from the flattened fields (after the header values were added).
    fn from_fields(f: &Map<String, Value>) -> Self {
        Header {
            channel: f.get("Channel").and_then(Value::as_str).map(str::to_string),
            provider: f.get("Provider_Name").and_then(Value::as_str).map(str::to_string),
            event_id: f.get("EventID").and_then(as_int),
            computer: f.get("Computer").and_then(Value::as_str).map(str::to_string),
            level: f.get("Level").and_then(as_int),
        }
    }
}

fn from_parts(p: Parts, original: Value, ctx: &ParseContext<'_>) -> Event {
    let h = p.header;
    let event_type = p.fields.get("EventType").and_then(Value::as_str);
    let logsource = logsource(h.channel.as_deref(), h.provider.as_deref(), h.event_id, event_type);
    let severity = match h.level {
        Some(1) => Some("crit"),
        Some(2) => Some("err"),
        Some(3) => Some("warning"),
        Some(0) | Some(4) => Some("info"),
        Some(5) => Some("debug"),
        _ => None,
    };
    let log = Log {
        format: Some("windows".into()),
        logsource,
        severity: severity.map(str::to_string),
        program: h.provider,
        pid: p.pid,
        message: p.message,
        original: Some(original),
        fields: p.fields,
        ..Log::default()
    };
    log_event(ctx, p.timestamp, h.computer, log)
}

/// Moves an element's children to the top level of `fields` (first writer wins).
fn flatten_into(fields: &mut Map<String, Value>, m: &Map<String, Value>) {
    for (k, v) in m {
        if k == "#attributes" {
            continue;
        }
        fields.entry(field_name(k)).or_insert_with(|| unwrap_xml(v));
    }
}

fn insert_absent(fields: &mut Map<String, Value>, k: &str, v: Option<Value>) {
    if let Some(v) = v.filter(|v| !v.is_null())
        && !fields.contains_key(k)
    {
        fields.insert(k.to_string(), v);
    }
}

fn as_str(v: Option<&Value>) -> Option<String> {
    text(v).and_then(|v| v.as_str().map(str::to_string))
}

fn evtx_fields(v: &Value) -> Result<Parts, ParseError> {
    let ev = v
        .get("Event")
        .and_then(Value::as_object)
        .ok_or_else(|| ParseError::Windows("Event is not an object".into()))?;
    let sys = ev
        .get("System")
        .and_then(Value::as_object)
        .ok_or_else(|| ParseError::Windows("Event.System is not an object".into()))?;
    let mut f = Map::new();
    match ev.get("EventData") {
        Some(Value::Object(ed)) => flatten_into(&mut f, ed),
        Some(Value::Null) | None => {}
        Some(other) => {
            f.insert("EventData".into(), unwrap_xml(other));
        }
    }
    // UserData (one child element whose children are the data), and the rarer sections
    // (ProcessingErrorData, SubscriptionBookmarkEvent, DebugData, ...).
    for (section, body) in ev {
        if matches!(section.as_str(), "System" | "EventData" | "#attributes" | "RenderingInfo") {
            continue;
        }
        match body {
            Value::Object(children) => {
                for (name, child) in children {
                    match child {
                        _ if name == "#attributes" => {}
                        Value::Object(c) if !c.contains_key("#text") => flatten_into(&mut f, c),
                        other => {
                            f.entry(field_name(name)).or_insert_with(|| unwrap_xml(other));
                        }
                    }
                }
            }
            Value::Null => {}
            other => {
                f.entry(field_name(section)).or_insert_with(|| unwrap_xml(other));
            }
        }
    }
    let provider = sys.get("Provider");
    let as_string = |v: Option<Value>| v.and_then(|v| v.as_str().map(str::to_string));
    let header = Header {
        event_id: sys.get("EventID").and_then(as_int),
        provider: as_string(text(attr(provider, "Name")).or_else(|| text(provider.and_then(|p| p.get("Name"))))),
        channel: as_string(text(sys.get("Channel"))),
        computer: as_string(text(sys.get("Computer"))),
        level: sys.get("Level").and_then(as_int),
    };
    insert_absent(&mut f, "EventID", header.event_id.map(Value::from));
    insert_absent(&mut f, "Provider_Name", header.provider.clone().map(Value::String));
    insert_absent(&mut f, "Channel", header.channel.clone().map(Value::String));
    insert_absent(&mut f, "Computer", header.computer.clone().map(Value::String));
    for k in ["Level", "Task", "Opcode", "EventRecordID", "Version"] {
        insert_absent(&mut f, k, int_or_value(sys.get(k)));
    }
    insert_absent(&mut f, "Keywords", text(sys.get("Keywords")));
    insert_absent(&mut f, "Security_UserID", text(attr(sys.get("Security"), "UserID")));
    let system_time = text(attr(sys.get("TimeCreated"), "SystemTime"));
    let timestamp = system_time.as_ref().and_then(Value::as_str).and_then(|s| timefmt::parse_iso(s, 0));
    insert_absent(&mut f, "TimeCreated", system_time);
    let pid = attr(sys.get("Execution"), "ProcessID").and_then(as_int).and_then(|p| u32::try_from(p).ok());
    // Forwarded events carry the rendered message.
    let message = ev
        .get("RenderingInfo")
        .and_then(|r| r.get("Message"))
        .map(unwrap_xml)
        .and_then(|m| m.as_str().map(str::to_string));
    Ok(Parts { fields: f, timestamp, message, pid, header })
}

fn winlogbeat_fields(v: &Value, ctx: &ParseContext<'_>) -> Parts {
    let w = v.get("winlog");
    let get = |k: &str| w.and_then(|w| w.get(k));
    let mut f = Map::new();
    if let Some(Value::Object(ed)) = get("event_data") {
        flatten_into(&mut f, ed);
    }
    if let Some(Value::Object(ud)) = get("user_data") {
        for (k, v) in ud {
            if k != "xml_name" {
                f.entry(field_name(k)).or_insert_with(|| unwrap_xml(v));
            }
        }
    }
    let event = v.get("event");
    let event_id = get("event_id").and_then(as_int).or_else(|| event.and_then(|e| e.get("code")).and_then(as_int));
    insert_absent(&mut f, "EventID", event_id.map(Value::from));
    insert_absent(
        &mut f,
        "Provider_Name",
        text(get("provider_name")).or_else(|| text(event.and_then(|e| e.get("provider")))),
    );
    insert_absent(&mut f, "Channel", text(get("channel")));
    let host = v.get("host");
    insert_absent(
        &mut f,
        "Computer",
        text(get("computer_name"))
            .or_else(|| text(host.and_then(|h| h.get("hostname"))))
            .or_else(|| text(host.and_then(|h| h.get("name")))),
    );
    insert_absent(&mut f, "EventRecordID", int_or_value(get("record_id")));
    insert_absent(&mut f, "Task", get("task").cloned());
    insert_absent(&mut f, "Opcode", get("opcode").cloned());
    insert_absent(&mut f, "Keywords", get("keywords").cloned());
    insert_absent(&mut f, "Version", int_or_value(get("version")));
    insert_absent(&mut f, "Level", v.get("log").and_then(|l| l.get("level")).cloned());
    insert_absent(&mut f, "Security_UserID", text(get("user").and_then(|u| u.get("identifier"))));
    let ts_text = text(v.get("@timestamp")).or_else(|| text(get("time_created")));
    let timestamp = ts_text.as_ref().and_then(Value::as_str).and_then(|s| timefmt::parse_iso(s, ctx.local_offset_secs));
    insert_absent(&mut f, "TimeCreated", ts_text);
    let pid = get("process").and_then(|p| p.get("pid")).and_then(as_int).and_then(|p| u32::try_from(p).ok());
    let message = v.get("message").and_then(Value::as_str).map(str::to_string);
    let header = Header {
        event_id,
        provider: as_str(get("provider_name")).or_else(|| as_str(event.and_then(|e| e.get("provider")))),
        channel: as_str(get("channel")),
        computer: as_str(get("computer_name"))
            .or_else(|| as_str(host.and_then(|h| h.get("hostname"))))
            .or_else(|| as_str(host.and_then(|h| h.get("name")))),
        level: None,
    };
    Parts { fields: f, timestamp, message, pid, header }
}

fn flat_fields(v: &Value, ctx: &ParseContext<'_>) -> Parts {
    let mut f = Map::new();
    if let Some(o) = v.as_object() {
        flatten_into(&mut f, o);
    }
    if let Some(id) = v.get("EventID").and_then(as_int) {
        f.insert("EventID".into(), Value::from(id));
    }
    let pick = |keys: &[&str]| keys.iter().find_map(|k| text(v.get(*k)));
    insert_absent(&mut f, "Provider_Name", pick(&["SourceName", "ProviderName", "Provider"]));
    insert_absent(&mut f, "Computer", pick(&["Hostname", "ComputerName", "computer_name"]));
    insert_absent(&mut f, "EventRecordID", int_or_value(v.get("RecordNumber")));
    insert_absent(&mut f, "Level", v.get("LevelValue").cloned());
    // TimeCreated is UTC by definition; NXLog's EventTime is the collector host's local time.
    let timestamp = [("@timestamp", 0), ("TimeCreated", 0), ("EventTime", ctx.local_offset_secs), ("timestamp", 0)]
        .iter()
        .filter_map(|(k, off)| v.get(*k).and_then(Value::as_str).map(|s| (s, *off)))
        .find_map(|(s, off)| timefmt::parse_iso(s, off));
    if let Some(t) = timestamp {
        insert_absent(&mut f, "TimeCreated", Some(Value::String(t.to_rfc3339())));
    }
    let pid = v.get("ExecutionProcessID").and_then(as_int).and_then(|p| u32::try_from(p).ok());
    let message = v.get("Message").and_then(Value::as_str).map(str::to_string);
    let header = Header::from_fields(&f);
    Parts { fields: f, timestamp, message, pid, header }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> ParseContext<'static> {
        ParseContext {
            input: "http",
            peer: Some("10.1.1.1"),
            received: Timestamp::from_unix_micros(0),
            local_offset_secs: 0,
        }
    }

    fn fields(ev: &Event) -> &Map<String, Value> {
        &ev.log.as_ref().unwrap().fields
    }

    const SYSMON_1: &str = r##"{"Event":{"#attributes":{"xmlns":"http://schemas.microsoft.com/win/2004/08/events/event"},"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon","Guid":"{5770385f-c22a-43e0-bf4c-06f5698ffbd9}"}},"EventID":1,"Version":5,"Level":4,"Task":1,"Opcode":0,"Keywords":"0x8000000000000000","TimeCreated":{"#attributes":{"SystemTime":"2020-10-05T20:43:58.3517448Z"}},"EventRecordID":1234,"Correlation":null,"Execution":{"#attributes":{"ProcessID":3032,"ThreadID":3812}},"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"MSEDGEWIN10","Security":{"#attributes":{"UserID":"S-1-5-18"}}},"EventData":{"RuleName":"-","UtcTime":"2020-10-05 20:43:58.349","ProcessGuid":"{747f3d96-858e-5f7b-0000-0010f1e51800}","ProcessId":6148,"Image":"C:\\Windows\\System32\\cmd.exe","CommandLine":"cmd.exe /c whoami","User":"MSEDGEWIN10\\IEUser","ParentImage":"C:\\Windows\\explorer.exe"}}}"##;

    #[test]
    fn evtx_sysmon_process_creation() {
        let v: Value = serde_json::from_str(SYSMON_1).unwrap();
        assert_eq!(detect(&v), Some(Shape::Evtx));
        let ev = parse(v.clone(), &ctx()).unwrap();
        let f = fields(&ev);
        assert_eq!(f["EventID"], 1);
        assert_eq!(f["Image"], "C:\\Windows\\System32\\cmd.exe");
        assert_eq!(f["CommandLine"], "cmd.exe /c whoami");
        assert_eq!(f["ProcessId"], 6148);
        assert_eq!(f["Provider_Name"], "Microsoft-Windows-Sysmon");
        assert_eq!(f["Channel"], "Microsoft-Windows-Sysmon/Operational");
        assert_eq!(f["Computer"], "MSEDGEWIN10");
        assert_eq!(f["Level"], 4);
        assert_eq!(f["EventRecordID"], 1234);
        assert_eq!(f["Keywords"], "0x8000000000000000");
        assert_eq!(f["Security_UserID"], "S-1-5-18");
        assert_eq!(f["TimeCreated"], "2020-10-05T20:43:58.3517448Z");
        assert_eq!(ev.host.as_deref(), Some("MSEDGEWIN10"));
        assert_eq!(ev.timestamp, "2020-10-05T20:43:58.351744Z".parse().unwrap());
        let log = ev.log.as_ref().unwrap();
        assert_eq!(log.format.as_deref(), Some("windows"));
        assert_eq!(log.logsource.product.as_deref(), Some("windows"));
        assert_eq!(log.logsource.service.as_deref(), Some("sysmon"));
        assert_eq!(log.logsource.category.as_deref(), Some("process_creation"));
        assert_eq!(log.program.as_deref(), Some("Microsoft-Windows-Sysmon"));
        assert_eq!(log.pid, Some(3032));
        assert_eq!(log.original.as_ref(), Some(&v));
        // Windows events carry their own identity: no receive-time discriminator.
        assert!(!log.extra.contains_key("received"));
    }

    #[test]
    fn evtx_wrappers_user_data_and_string_system_values() {
        let v = json!({"Event":{"System":{
            "Provider":{"#attributes":{"Name":"MSSQL$RADAR"}},
            "EventID":{"#attributes":{"Qualifiers":16384},"#text":33205},
            "Level":"0","Task":"4","EventRecordID":"58975","Channel":"Application","Computer":"mssql01"},
            "EventData":{"Data":{"#text":["a","b"]},"Binary":null,"Product Name":"Defender","#attributes":{"Name":"X"}}}});
        let ev = parse(v, &ctx()).unwrap();
        let f = fields(&ev);
        assert_eq!(f["EventID"], 33205);
        assert_eq!(f["Level"], 0);
        assert_eq!(f["EventRecordID"], 58975);
        assert_eq!(f["Data"], json!(["a", "b"]));
        assert_eq!(f["ProductName"], "Defender");
        assert!(!f.contains_key("#attributes"));
        assert_eq!(f["Provider_Name"], "MSSQL$RADAR");
        assert_eq!(ev.log.as_ref().unwrap().logsource.service.as_deref(), Some("application"));
        // No TimeCreated: the receive time.
        assert_eq!(ev.timestamp, Timestamp::from_unix_micros(0));

        let v = json!({"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Eventlog"}},"EventID":1102,
            "Channel":"Security","Computer":"FS03"},
            "UserData":{"LogFileCleared":{"#attributes":{"xmlns":"x"},"SubjectUserName":"admmig","Nested":{"#attributes":{"A":"1"}}}}}});
        let ev = parse(v, &ctx()).unwrap();
        let f = fields(&ev);
        assert_eq!(f["SubjectUserName"], "admmig");
        assert_eq!(f["Nested"], json!({"A": "1"}));
        assert_eq!(f["EventID"], 1102);
        assert_eq!(ev.log.as_ref().unwrap().logsource.service.as_deref(), Some("security"));
    }

    #[test]
    fn event_data_wins_over_system_fields() {
        // Sysmon 16 has an EventData "Configuration"; some events carry their own "Channel".
        let v = json!({"Event":{"System":{"EventID":4,"Channel":"System","Computer":"A"},
            "EventData":{"Channel":"custom","Computer":"B"}}});
        let ev = parse(v, &ctx()).unwrap();
        assert_eq!(fields(&ev)["Channel"], "custom");
        assert_eq!(fields(&ev)["Computer"], "B");
        // ... but the envelope and the log source follow the System header.
        assert_eq!(ev.host.as_deref(), Some("A"));
        assert_eq!(ev.log.as_ref().unwrap().logsource.service.as_deref(), Some("system"));
    }

    #[test]
    fn winlogbeat_shape() {
        let v = json!({
            "@timestamp": "2024-06-15T03:04:05.678Z",
            "message": "An account failed to log on.",
            "host": {"name": "dc01.corp.local"},
            "event": {"code": "4625", "provider": "Microsoft-Windows-Security-Auditing", "outcome": "failure"},
            "winlog": {
                "event_id": "4625", "channel": "Security", "provider_name": "Microsoft-Windows-Security-Auditing",
                "computer_name": "DC01.corp.local", "record_id": 987654, "task": "Logon", "opcode": "Info",
                "keywords": ["Audit Failure"], "process": {"pid": 640, "thread": {"id": 1200}},
                "event_data": {"TargetUserName": "administrator", "LogonType": "3", "IpAddress": "203.0.113.9", "Status": "0xc000006d"}
            }
        });
        assert_eq!(detect(&v), Some(Shape::Winlogbeat));
        let ev = parse(v, &ctx()).unwrap();
        let f = fields(&ev);
        assert_eq!(f["EventID"], 4625);
        assert_eq!(f["TargetUserName"], "administrator");
        assert_eq!(f["Channel"], "Security");
        assert_eq!(f["Provider_Name"], "Microsoft-Windows-Security-Auditing");
        assert_eq!(f["Computer"], "DC01.corp.local");
        assert_eq!(f["EventRecordID"], 987654);
        assert_eq!(f["Keywords"], json!(["Audit Failure"]));
        assert_eq!(ev.host.as_deref(), Some("DC01.corp.local"));
        assert_eq!(ev.timestamp, "2024-06-15T03:04:05.678Z".parse().unwrap());
        let log = ev.log.as_ref().unwrap();
        assert_eq!(log.message.as_deref(), Some("An account failed to log on."));
        assert_eq!(log.pid, Some(640));
        assert_eq!(log.logsource.service.as_deref(), Some("security"));
        assert_eq!(log.logsource.category, None);
    }

    #[test]
    fn flat_nxlog_shape() {
        let v = json!({"EventID":4688,"Channel":"Security","SourceName":"Microsoft-Windows-Security-Auditing",
            "Hostname":"WORKSTATION5.mordor.local","@timestamp":"2020-07-22T03:27:42.455Z","host":"wec.internal",
            "NewProcessName":"C:\\Windows\\System32\\whoami.exe","CommandLine":"whoami /all","RecordNumber":253295,
            "Message":"A new process has been created."});
        assert_eq!(detect(&v), Some(Shape::Flat));
        let ev = parse(v, &ctx()).unwrap();
        let f = fields(&ev);
        assert_eq!(f["EventID"], 4688);
        assert_eq!(f["Provider_Name"], "Microsoft-Windows-Security-Auditing");
        assert_eq!(f["Computer"], "WORKSTATION5.mordor.local");
        assert_eq!(f["EventRecordID"], 253295);
        assert_eq!(ev.host.as_deref(), Some("WORKSTATION5.mordor.local"));
        let log = ev.log.as_ref().unwrap();
        assert_eq!(log.logsource.category.as_deref(), Some("process_creation"));
        assert_eq!(log.message.as_deref(), Some("A new process has been created."));
    }

    #[test]
    fn channels_and_categories() {
        assert_eq!(service_for_channel("Windows PowerShell"), Some("powershell-classic"));
        assert_eq!(service_for_channel("Microsoft-Windows-PowerShell/Operational"), Some("powershell"));
        assert_eq!(service_for_channel("microsoft-windows-sysmon/operational"), Some("sysmon"));
        assert_eq!(service_for_channel("Microsoft-Windows-AppLocker/EXE and DLL"), Some("applocker"));
        assert_eq!(service_for_channel("Something/Else"), None);
        let none = Map::new();
        assert_eq!(category(Some("sysmon"), Some(3), &none), Some("network_connection"));
        assert_eq!(category(Some("sysmon"), Some(22), &none), Some("dns_query"));
        assert_eq!(category(Some("powershell"), Some(4104), &none), Some("ps_script"));
        assert_eq!(category(Some("security"), Some(4625), &none), None);
        let del: Map<String, Value> = serde_json::from_value(json!({"EventType":"DeleteKey"})).unwrap();
        assert_eq!(category(Some("sysmon"), Some(12), &del), Some("registry_delete"));
    }

    #[test]
    fn non_windows_values_are_rejected() {
        for v in [
            json!({"message":"x"}),
            json!([1]),
            json!("s"),
            json!({"Event":{"System":1}}),
            json!({"EventID":"x","Channel":"Security"}),
        ] {
            assert!(detect(&v).is_none(), "{v}");
            assert!(parse(v, &ctx()).is_err());
        }
    }
}
