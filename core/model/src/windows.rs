//! Windows event vocabulary shared by the collector's normalizer and the correlator's Sigma
//! fast path: XML-as-JSON unwrapping (`#text`, `#attributes`, names without spaces), System
//! field conversions, and the Sigma log source (service from the channel or provider, category
//! from the event id) of an event.

use crate::LogSource;
use serde_json::{Map, Value};

/// An integer from a number, a numeric string, or an XML element `{"#text": ..}`.
pub fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_u64().map(|u| u as i64)),
        Value::String(s) => {
            let s = s.trim();
            match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                Some(_) => None,
                None => s.parse().ok(),
            }
        }
        Value::Object(o) => o.get("#text").and_then(as_int),
        _ => None,
    }
}

/// Field name with the spaces removed (`Product Name` -> `ProductName`).
pub fn field_name(k: &str) -> String {
    if k.contains(' ') { k.chars().filter(|c| *c != ' ').collect() } else { k.to_string() }
}

/// XML-as-JSON unwrapped: `#text` taken, `#attributes` dropped (kept when they are all there
/// is), names without spaces.
pub fn unwrap_xml(v: &Value) -> Value {
    match v {
        Value::Object(o) => {
            if let Some(t) = o.get("#text") {
                return unwrap_xml(t);
            }
            let mut out = Map::new();
            for (k, v) in o {
                if k != "#attributes" {
                    out.insert(field_name(k), unwrap_xml(v));
                }
            }
            if out.is_empty()
                && let Some(Value::Object(attrs)) = o.get("#attributes")
            {
                for (k, v) in attrs {
                    if k != "xmlns" {
                        out.insert(field_name(k), unwrap_xml(v));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(unwrap_xml).collect()),
        other => other.clone(),
    }
}

/// [`unwrap_xml`] on an owned value (nothing cloned).
pub fn unwrap_xml_owned(v: Value) -> Value {
    match v {
        Value::Object(mut o) => {
            if let Some(t) = o.remove("#text") {
                return unwrap_xml_owned(t);
            }
            let attrs = o.remove("#attributes");
            let mut out = Map::new();
            for (k, v) in o {
                out.insert(field_name(&k), unwrap_xml_owned(v));
            }
            if out.is_empty()
                && let Some(Value::Object(attrs)) = attrs
            {
                for (k, v) in attrs {
                    if k != "xmlns" {
                        out.insert(field_name(&k), unwrap_xml_owned(v));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(unwrap_xml_owned).collect()),
        other => other,
    }
}

/// An integer when it is one (numbers and numeric strings), the unwrapped value otherwise.
pub fn int_or_value(v: Option<&Value>) -> Option<Value> {
    let v = v?;
    Some(match as_int(v) {
        Some(i) => Value::from(i),
        None => unwrap_xml(v),
    })
}

/// A string or number element as a string value.
pub fn text(v: Option<&Value>) -> Option<Value> {
    string_or_number(unwrap_xml(v?))
}

/// [`text`] of an owned element, its string moved rather than copied.
pub fn text_owned(v: Option<Value>) -> Option<Value> {
    string_or_number(unwrap_xml_owned(v?))
}

fn string_or_number(v: Value) -> Option<Value> {
    match v {
        Value::String(s) => Some(Value::String(s)),
        Value::Number(n) => Some(Value::String(n.to_string())),
        _ => None,
    }
}

/// An attribute of an XML-as-JSON element.
pub fn attr<'a>(v: Option<&'a Value>, name: &str) -> Option<&'a Value> {
    v?.get("#attributes")?.get(name)
}

/// Sigma service of a Windows event log channel (case-insensitive).
pub fn service_for_channel(channel: &str) -> Option<&'static str> {
    with_ascii_lower(channel, service_for_lower_channel)
}

/// `f` of `s` ASCII-lower-cased: on the stack for the usual short names, a copy beyond.
fn with_ascii_lower<R>(s: &str, f: impl FnOnce(&str) -> R) -> R {
    let mut buf = [0u8; 128];
    if let Some(b) = buf.get_mut(..s.len()) {
        b.copy_from_slice(s.as_bytes());
        b.make_ascii_lowercase();
        // ASCII lower-casing keeps the text valid UTF-8.
        if let Ok(l) = std::str::from_utf8(b) {
            return f(l);
        }
    }
    f(&s.to_ascii_lowercase())
}

fn service_for_lower_channel(c: &str) -> Option<&'static str> {
    let exact = match c {
        "security" => "security",
        "system" => "system",
        "application" => "application",
        "microsoft-windows-sysmon/operational" => "sysmon",
        "windows powershell" => "powershell-classic",
        "microsoft-windows-powershell/operational" | "powershellcore/operational" => "powershell",
        "microsoft-windows-taskscheduler/operational" => "taskscheduler",
        "microsoft-windows-wmi-activity/operational" => "wmi",
        "microsoft-windows-windows defender/operational" => "windefend",
        "microsoft-windows-dns-client/operational" | "microsoft-windows-dns client events/operational" => "dns-client",
        "dns server" => "dns-server",
        "microsoft-windows-dns-server/analytical" => "dns-server-analytic",
        "microsoft-windows-bits-client/operational" => "bits-client",
        "microsoft-windows-windows firewall with advanced security/firewall" => "firewall-as",
        "microsoft-windows-codeintegrity/operational" => "codeintegrity-operational",
        "microsoft-windows-ntlm/operational" => "ntlm",
        "microsoft-windows-driverframeworks-usermode/operational" => "driver-framework",
        "microsoft-windows-printservice/admin" => "printservice-admin",
        "microsoft-windows-printservice/operational" => "printservice-operational",
        "microsoft-windows-smbclient/security" => "smbclient-security",
        "microsoft-windows-smbclient/connectivity" => "smbclient-connectivity",
        "microsoft-windows-smbserver/connectivity" => "smbserver-connectivity",
        "microsoft-windows-terminalservices-localsessionmanager/operational" => "terminalservices-localsessionmanager",
        "microsoft-windows-ldap-client/debug" => "ldap",
        "microsoft-windows-diagnosis-scripted/operational" => "diagnosis-scripted",
        "microsoft-windows-shell-core/operational" => "shell-core",
        "openssh/operational" => "openssh",
        "microsoft-windows-bitlocker/bitlocker management" => "bitlocker",
        "microsoft-windows-appxdeploymentserver/operational" => "appxdeployment-server",
        "microsoft-windows-appxpackaging/operational" => "appxpackaging-om",
        "microsoft-windows-lsa/operational" => "lsa-server",
        "microsoft-windows-appmodel-runtime/admin" => "appmodel-runtime",
        "microsoft-windows-capi2/operational" => "capi2",
        "microsoft-windows-certificateservicesclient-lifecycle-system/operational" => {
            "certificateservicesclient-lifecycle-system"
        }
        "microsoft-windows-ntfs/operational" => "ntfs",
        "msexchange management" => "msexchange-management",
        "microsoft-servicebus-client" => "microsoft-servicebus-client",
        "microsoft-windows-dhcp-server/operational" => "dhcp",
        "microsoft-iis-configuration/operational" => "iis-configuration",
        _ => "",
    };
    if !exact.is_empty() {
        return Some(exact);
    }
    const PREFIXES: [(&str, &str); 6] = [
        ("microsoft-windows-applocker/", "applocker"),
        ("microsoft-windows-security-mitigations/", "security-mitigations"),
        ("microsoft-windows-kernel-shimengine/", "kernel-shimengine"),
        ("microsoft-windows-application-experience/", "application-experience"),
        ("microsoft-windows-vhdmp", "vhdmp"),
        ("microsoft-windows-hyper-v-worker", "hyper-v-worker"),
    ];
    PREFIXES.iter().find(|(p, _)| c.starts_with(p)).map(|(_, s)| *s)
}

/// Sigma service of an event provider, for events whose channel is missing or unknown.
pub fn service_for_provider(provider: &str) -> Option<&'static str> {
    with_ascii_lower(provider, service_for_lower_provider)
}

fn service_for_lower_provider(provider: &str) -> Option<&'static str> {
    Some(match provider {
        "microsoft-windows-security-auditing" | "microsoft-windows-eventlog" => return None,
        "microsoft-windows-sysmon" => "sysmon",
        "microsoft-windows-powershell" => "powershell",
        "powershell" => "powershell-classic",
        "microsoft-windows-windows defender" => "windefend",
        "microsoft-windows-taskscheduler" => "taskscheduler",
        "microsoft-windows-wmi-activity" => "wmi",
        "microsoft-windows-bits-client" => "bits-client",
        "microsoft-windows-codeintegrity" => "codeintegrity-operational",
        "microsoft-windows-dns-client" => "dns-client",
        "microsoft-windows-dns-server-service" => "dns-server",
        "microsoft-windows-ntlm" => "ntlm",
        "microsoft-windows-applocker" => "applocker",
        "microsoft-windows-capi2" => "capi2",
        "openssh" => "openssh",
        "lsasrv" => "lsa-server",
        _ => return None,
    })
}

/// Sigma category of an event, where Sigma defines one.
pub fn category(service: Option<&str>, event_id: Option<i64>, fields: &Map<String, Value>) -> Option<&'static str> {
    category_of(service, event_id, fields.get("EventType").and_then(Value::as_str))
}

/// Sigma category of an event from its service, event id and (Sysmon 12) `EventType`.
pub fn category_of(service: Option<&str>, event_id: Option<i64>, event_type: Option<&str>) -> Option<&'static str> {
    let id = event_id?;
    Some(match (service?, id) {
        ("sysmon", 1) => "process_creation",
        ("sysmon", 2) => "file_change",
        ("sysmon", 3) => "network_connection",
        ("sysmon", 4 | 16) => "sysmon_status",
        ("sysmon", 5) => "process_termination",
        ("sysmon", 6) => "driver_load",
        ("sysmon", 7) => "image_load",
        ("sysmon", 8) => "create_remote_thread",
        ("sysmon", 9) => "raw_access_thread",
        ("sysmon", 10) => "process_access",
        ("sysmon", 11) => "file_event",
        ("sysmon", 12) => match event_type {
            Some(t) if t.starts_with("Delete") => "registry_delete",
            _ => "registry_add",
        },
        ("sysmon", 13) => "registry_set",
        ("sysmon", 14) => "registry_rename",
        ("sysmon", 15) => "create_stream_hash",
        ("sysmon", 17 | 18) => "pipe_created",
        ("sysmon", 19..=21) => "wmi_event",
        ("sysmon", 22) => "dns_query",
        ("sysmon", 23) => "file_delete",
        ("sysmon", 24) => "clipboard_capture",
        ("sysmon", 25) => "process_tampering",
        ("sysmon", 26) => "file_delete_detected",
        ("sysmon", 27) => "file_block_executable",
        ("sysmon", 28) => "file_block_shredding",
        ("sysmon", 29) => "file_executable_detected",
        ("sysmon", 255) => "sysmon_error",
        ("security", 4688) => "process_creation",
        ("powershell", 4103) => "ps_module",
        ("powershell", 4104) => "ps_script",
        ("powershell-classic", 400) => "ps_classic_start",
        ("powershell-classic", 600) => "ps_classic_provider_start",
        ("powershell-classic", 800) => "ps_classic_script",
        _ => return None,
    })
}

/// The Sigma log source of a Windows event (product `windows`, service from the channel or
/// else the provider, category where Sigma defines one).
pub fn logsource(
    channel: Option<&str>,
    provider: Option<&str>,
    event_id: Option<i64>,
    event_type: Option<&str>,
) -> LogSource {
    let (category, service) = logsource_parts(channel, provider, event_id, event_type);
    LogSource {
        product: Some("windows".into()),
        category: category.map(str::to_string),
        service: service.map(str::to_string),
    }
}

/// The category and service of [`logsource`] (its product is `windows`), without allocating.
pub fn logsource_parts(
    channel: Option<&str>,
    provider: Option<&str>,
    event_id: Option<i64>,
    event_type: Option<&str>,
) -> (Option<&'static str>, Option<&'static str>) {
    let service = channel.and_then(service_for_channel).or_else(|| match (channel, provider) {
        (_, Some("Microsoft-Windows-Security-Auditing")) => Some("security"),
        (_, Some(p)) => service_for_provider(p),
        _ => None,
    });
    (category_of(service, event_id, event_type), service)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_and_providers_are_matched_without_regard_to_ascii_case_at_any_length() {
        assert_eq!(service_for_channel("SECURITY"), Some("security"));
        assert_eq!(service_for_provider("Microsoft-Windows-Sysmon"), Some("sysmon"));
        // Past the stack buffer, and non-ASCII names, take the copying path.
        let long = format!("Microsoft-Windows-AppLocker/{}", "X".repeat(200));
        assert_eq!(service_for_channel(&long), Some("applocker"));
        assert_eq!(service_for_channel("Sécurité"), None);
        assert_eq!(service_for_channel(""), None);
        let ls = logsource(Some("Microsoft-Windows-Sysmon/Operational"), None, Some(12), Some("DeleteKey"));
        assert_eq!(
            logsource_parts(Some("microsoft-windows-sysmon/operational"), None, Some(12), Some("DeleteKey")),
            (Some("registry_delete"), Some("sysmon"))
        );
        assert_eq!(
            (ls.product.as_deref(), ls.category.as_deref(), ls.service.as_deref()),
            (Some("windows"), Some("registry_delete"), Some("sysmon"))
        );
    }
}
