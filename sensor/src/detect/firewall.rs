//! Firewall mode (Suricata 8): a separate rule set evaluated before the threat-detection
//! (TD) rules, default-drop, in file order.
//!
//! Firewall rules have an action with an explicit scope and a protocol with a hook:
//!
//! ```text
//! accept:hook tcp:all $HOME_NET any <> $EXTERNAL_NET 443 (flow:established; alert; sid:1;)
//! drop:packet ip:all any any -> any any (sid:999;)
//! ```
//!
//! - Actions: `accept:packet` (this packet), `accept:flow` (the rest of the flow: no firewall
//!   rule is evaluated for it any more), `accept:hook` (this table: go on with the next one),
//!   `drop:packet`, `drop:flow` (this packet and the rest of the flow). Secondary actions after
//!   a comma: `alert` (the rule alerts when it matches, like the `alert` keyword); `pass` is
//!   rejected (it would act on the TD rules).
//! - Packet hooks, one table each, evaluated in this order on every packet: `pre_flow` and
//!   `pre_stream` (default `accept:hook`), then the packet filter, `all` and `flow_start` (the
//!   first packet of each direction of a flow) rules (default `drop:packet`). In each table the
//!   first matching rule decides; a packet that reaches the end of the filter table without an
//!   accept is dropped.
//! - App-layer hooks of HTTP/1 (`http1:request_started`, `request_line`, `request_headers`,
//!   `request_body`, `request_trailer`, `request_complete` and the `response_*` ones) and DNS
//!   (`dns:request_started`, `request_complete`, `response_started`, `response_complete`): when
//!   a side of a transaction is inspected, its hooks are evaluated in order, each a table whose
//!   first matching rule decides and whose default is `drop:flow`; `accept:hook` goes on with
//!   the next hook, `accept:tx` accepts the rest of the transaction (both sides),
//!   `accept:flow` the rest of the flow. A protocol without any app-layer firewall rule is not
//!   filtered. The TD rules see a transaction side only when the firewall accepted it.
//! - A packet the firewall accepts goes on to the TD rules; a dropped one does not, and neither
//!   do the app-layer transactions of a dropped flow.
//!
//! Not supported yet (such rules are rejected with the reason): the hooks of the other
//! app-layer protocols (`tls:client_hello_done`, `ssh:request_started`, ...), which Suricata
//! evaluates on every packet while a transaction is in the state, `firewall.policies`
//! configuration, and state keywords (`flowbits`, `flowint`, host `xbits`, `threshold`) in
//! firewall rules. `xbits` with `track tx` are kept per transaction of the flow.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::RuleError;
use super::compile::{AppProto, Classifications, CompiledRule, Direction, compile_rule};
use super::keywords::{XbitCmd, XbitTrack};
use super::matcher::{Hit, Inspection, rule_matches};
use super::parse::{Vars, parse_rule, split_rules};

/// The primary action of a firewall rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FwAction {
    AcceptPacket,
    AcceptFlow,
    AcceptHook,
    AcceptTx,
    DropPacket,
    DropFlow,
}

impl FwAction {
    fn parse(s: &str) -> Option<FwAction> {
        Some(match s {
            "accept:packet" => FwAction::AcceptPacket,
            "accept:flow" => FwAction::AcceptFlow,
            "accept:hook" => FwAction::AcceptHook,
            "accept:tx" => FwAction::AcceptTx,
            "drop:packet" => FwAction::DropPacket,
            "drop:flow" => FwAction::DropFlow,
            _ => return None,
        })
    }

    fn is_drop(self) -> bool {
        matches!(self, FwAction::DropPacket | FwAction::DropFlow)
    }
}

/// The packet-layer tables, in evaluation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    PreFlow,
    PreStream,
    /// `all` and `flow_start` rules.
    Filter,
    /// An app-layer hook: the protocol and the hook's index in [`app_hooks`].
    App(AppProto, usize),
}

const HTTP1_HOOKS: &[&str] = &[
    "request_started",
    "request_line",
    "request_headers",
    "request_body",
    "request_trailer",
    "request_complete",
    "response_started",
    "response_line",
    "response_headers",
    "response_body",
    "response_trailer",
    "response_complete",
];
const GENERIC_HOOKS: &[&str] = &["request_started", "request_complete", "response_started", "response_complete"];

/// The hooks of an app-layer protocol, request side first (`None`: not supported).
pub fn app_hooks(p: AppProto) -> Option<&'static [&'static str]> {
    match p {
        AppProto::Http => Some(HTTP1_HOOKS),
        AppProto::Dns => Some(GENERIC_HOOKS),
        _ => None,
    }
}

const TABLES: [Table; 3] = [Table::PreFlow, Table::PreStream, Table::Filter];

/// One loaded firewall rule.
#[derive(Clone, Debug)]
pub struct FwRule {
    pub rule: CompiledRule,
    pub action: FwAction,
    pub table: Table,
    /// `flow_start`: only the first packet of each direction.
    pub flow_start: bool,
    /// The rule alerts when it matches (`alert` secondary action or keyword).
    pub alert: bool,
}

/// What the firewall decided for a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Go on with the TD rules.
    Accept,
    /// The packet is dropped: the TD rules do not see it.
    Drop,
}

#[derive(Default)]
struct FlowFw {
    accepted: bool,
    dropped: bool,
    /// Packets seen per direction (to server, to client).
    seen: [bool; 2],
    /// Transactions accepted by `accept:tx`.
    accepted_txs: std::collections::HashSet<u64>,
    /// `xbits` with `track tx`: the bits set per transaction.
    tx_bits: HashMap<u64, std::collections::HashSet<Arc<str>>>,
    /// An app-layer hook dropped the flow on the packet being processed: its packet tables
    /// and packet TD rules still run (they come first in Suricata's pipeline), then the flow
    /// is dropped.
    drop_pending: bool,
}

impl FlowFw {
    /// Drops the flow from an app-layer hook (see [`FlowFw::drop_pending`]).
    fn app_drop(&mut self, flow_id: u64) {
        self.drop_pending = flow_id != 0;
    }
}

/// The firewall rule set and its per-flow state.
#[derive(Default)]
pub struct Firewall {
    rules: Vec<FwRule>,
    flows: Mutex<HashMap<u64, FlowFw>>,
}

impl std::fmt::Debug for Firewall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Firewall").field("rules", &self.rules.len()).finish()
    }
}

/// Whether a rule's `xbits` (`track tx`) conditions hold for the transaction's `bits`.
fn xbits_hold(r: &CompiledRule, bits: Option<&std::collections::HashSet<Arc<str>>>) -> bool {
    r.xbits.iter().all(|x| {
        let set = bits.is_some_and(|b| b.contains(&x.name));
        match x.cmd {
            XbitCmd::IsSet => set,
            XbitCmd::IsNotSet => !set,
            XbitCmd::Set | XbitCmd::Unset | XbitCmd::Toggle => true,
        }
    })
}

/// Applies a matching rule's `xbits` (`track tx`) modifiers to the transaction's bits.
fn apply_xbits(r: &CompiledRule, bits: &mut std::collections::HashSet<Arc<str>>) {
    for x in &r.xbits {
        match x.cmd {
            XbitCmd::Set => {
                bits.insert(x.name.clone());
            }
            XbitCmd::Unset => {
                bits.remove(&x.name);
            }
            XbitCmd::Toggle => {
                if !bits.remove(&x.name) {
                    bits.insert(x.name.clone());
                }
            }
            XbitCmd::IsSet | XbitCmd::IsNotSet => {}
        }
    }
}

/// Flows with firewall state kept before the table is cleared.
const MAX_FLOWS: usize = 262_144;

impl Firewall {
    /// Parses firewall rules; the rules that cannot be loaded are errors (file, line, reason).
    pub fn parse(text: &str, file: &str, vars: &Vars, classes: &Classifications) -> (Vec<FwRule>, Vec<RuleError>) {
        let file: Arc<str> = Arc::from(file);
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        for mut raw in split_rules(text) {
            let error = |reason: String| RuleError {
                file: file.to_string(),
                line: raw.line,
                column: 1,
                keyword: None,
                reason,
                rule_line: raw.line,
            };
            // the action and the protocol with its hook: the first two header fields
            let mut fields = raw.text.split_ascii_whitespace();
            let (Some(action), Some(proto)) = (fields.next(), fields.next()) else {
                errors.push(error("rule header must start with 'action proto:hook'".to_string()));
                continue;
            };
            let (action, proto_raw, proto) = (action.to_string(), proto.to_string(), proto.to_ascii_lowercase());
            let mut parts = action.split(',');
            let primary = parts.next().unwrap_or_default();
            let Some(fw_action) = FwAction::parse(primary) else {
                errors.push(error(format!(
                    "unknown firewall action '{primary}' (accept:packet|flow|hook|tx, drop:packet|flow)"
                )));
                continue;
            };
            let mut alert = false;
            let mut bad = None;
            for s in parts {
                match s {
                    "alert" => alert = true,
                    other => bad = Some(other.to_string()),
                }
            }
            if let Some(s) = bad {
                errors.push(error(format!("secondary action '{s}' not supported yet (only alert)")));
                continue;
            }
            let Some((base, hook)) = proto.split_once(':') else {
                errors.push(error(format!("firewall rule protocol '{proto}' needs a hook (e.g. '{proto}:all')")));
                continue;
            };
            let app = match base {
                "http1" => Some(AppProto::Http),
                other => AppProto::from_name(other),
            };
            let (table, flow_start) = match (hook, app) {
                ("all", None) => (Table::Filter, false),
                ("flow_start", None) => (Table::Filter, true),
                ("pre_flow", None) => (Table::PreFlow, false),
                ("pre_stream", None) => (Table::PreStream, false),
                (_, Some(a)) => match app_hooks(a).and_then(|hs| hs.iter().position(|h| *h == hook)) {
                    Some(i) => (Table::App(a, i), false),
                    None => {
                        errors.push(error(format!("app-layer firewall hook '{proto}' not supported yet")));
                        continue;
                    }
                },
                _ => {
                    errors.push(error(format!("unknown firewall hook '{proto}'")));
                    continue;
                }
            };
            if fw_action == FwAction::AcceptTx && app.is_none() {
                errors.push(error(format!("accept:tx needs an app-layer hook, not '{proto}'")));
                continue;
            }
            // rewrite the header to a TD rule of the base protocol, keeping every offset (and
            // so every error position) in place
            let Some(a_at) = raw.text.find(action.as_str()) else { continue };
            let after = a_at + action.len();
            let Some(p_start) = raw.text[after..].find(proto_raw.as_str()).map(|p| p + after) else { continue };
            let mut text = raw.text.clone();
            text.replace_range(a_at..a_at + action.len(), &format!("{:<1$}", "alert", action.len()));
            text.replace_range(p_start..p_start + proto.len(), &format!("{:<1$}", base, proto.len()));
            raw.text = text;
            let parsed = match parse_rule(raw, file.clone(), vars) {
                Ok(p) => p,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            match compile_rule(&parsed, classes) {
                Ok(r) => {
                    if !r.flowbits.is_empty()
                        || !r.flowints.is_empty()
                        || r.xbits.iter().any(|x| x.track != XbitTrack::Tx)
                        || r.threshold.is_some()
                        || r.detection_filter.is_some()
                    {
                        errors.push(parsed.error(
                            parsed.line(),
                            1,
                            None,
                            "state keywords (flowbits, flowint, host xbits, threshold) in firewall rules not supported yet"
                                .to_string(),
                        ));
                        continue;
                    }
                    let alert = alert || r.meta.alert;
                    rules.push(FwRule { rule: r, action: fw_action, table, flow_start, alert });
                }
                Err(es) => errors.extend(es),
            }
        }
        (rules, errors)
    }

    pub fn new(rules: Vec<FwRule>) -> Firewall {
        Firewall { rules, flows: Mutex::new(HashMap::new()) }
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether the flow was dropped by a firewall rule.
    pub fn flow_dropped(&self, flow_id: u64) -> bool {
        flow_id != 0
            && self
                .flows
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&flow_id)
                .is_some_and(|f| f.dropped || f.drop_pending)
    }

    /// Runs the packet tables on a packet: the verdict, and the hits of the rules that alert.
    pub fn inspect_packet(&self, insp: &Inspection<'_>) -> (Verdict, Vec<Hit>) {
        let mut hits = Vec::new();
        let mut flows = self.flows.lock().unwrap_or_else(|p| p.into_inner());
        if flows.len() >= MAX_FLOWS && !flows.contains_key(&insp.flow_id) {
            tracing::warn!(flows = flows.len(), "firewall flow table full: per-flow verdicts dropped");
            metrics::counter!("sensor_firewall_flows_dropped_total").increment(flows.len() as u64);
            flows.clear();
        }
        let st = flows.entry(insp.flow_id).or_default();
        let d = usize::from(insp.direction == Direction::ToClient);
        let first_in_dir = !st.seen[d];
        st.seen[d] = true;
        if st.dropped {
            return (Verdict::Drop, hits);
        }
        if st.drop_pending {
            st.drop_pending = false;
            st.dropped = true;
            if st.accepted {
                return (Verdict::Accept, hits);
            }
        } else if st.accepted {
            return (Verdict::Accept, hits);
        }
        for table in TABLES {
            let decided = self.rules.iter().find(|r| {
                // a packet has no transaction: no transaction bit is set for it
                r.table == table
                    && (!r.flow_start || first_in_dir)
                    && xbits_hold(&r.rule, None)
                    && rule_matches(&r.rule, insp)
            });
            let Some(r) = decided else {
                if table == Table::Filter {
                    return (Verdict::Drop, hits); // default drop:packet
                }
                continue; // default accept:hook
            };
            if r.alert {
                let mut h = Hit::of(&r.rule, insp.direction);
                h.blocked = r.action.is_drop();
                h.action = if r.action.is_drop() { super::Action::Drop } else { super::Action::Alert };
                hits.push(h);
            }
            match r.action {
                FwAction::AcceptHook => continue,
                FwAction::AcceptPacket | FwAction::AcceptTx => return (Verdict::Accept, hits),
                FwAction::AcceptFlow => {
                    st.accepted = insp.flow_id != 0;
                    return (Verdict::Accept, hits);
                }
                FwAction::DropPacket => return (Verdict::Drop, hits),
                FwAction::DropFlow => {
                    st.dropped = insp.flow_id != 0;
                    return (Verdict::Drop, hits);
                }
            }
        }
        (Verdict::Accept, hits)
    }

    /// Runs the firewall, then `td` (the threat-detection rules) on what it accepts. A
    /// transaction is inspected by `td` unless its flow was dropped.
    pub fn inspect(&self, insp: &Inspection<'_>, td: impl FnOnce(&Inspection<'_>) -> Vec<Hit>) -> Vec<Hit> {
        if insp.transaction {
            let (verdict, mut hits) = self.inspect_transaction(insp);
            if verdict == Verdict::Accept {
                hits.extend(td(insp));
            }
            return hits;
        }
        let (verdict, mut hits) = self.inspect_packet(insp);
        if verdict == Verdict::Accept {
            hits.extend(td(insp));
        }
        hits
    }

    /// Runs the app-layer hooks of the inspected side of a transaction.
    pub fn inspect_transaction(&self, insp: &Inspection<'_>) -> (Verdict, Vec<Hit>) {
        let mut hits = Vec::new();
        let mut flows = self.flows.lock().unwrap_or_else(|p| p.into_inner());
        let st = flows.entry(insp.flow_id).or_default();
        if st.dropped || st.drop_pending {
            return (Verdict::Drop, hits);
        }
        let Some(app) = insp.app_proto else { return (Verdict::Accept, hits) };
        let Some(hooks) = app_hooks(app) else { return (Verdict::Accept, hits) };
        let filtered = self.rules.iter().any(|r| matches!(r.table, Table::App(a, _) if a == app));
        if st.accepted || !filtered || insp.tx_id.is_some_and(|t| st.accepted_txs.contains(&t)) {
            return (Verdict::Accept, hits);
        }
        // the rules are matched like packet rules: rules without a buffer match the hook too
        let side = Inspection { transaction: false, ..*insp };
        let requests = hooks.iter().take_while(|h| h.starts_with("request")).count();
        let range = if insp.direction == Direction::ToServer { 0..requests } else { requests..hooks.len() };
        for hook in range {
            let bits = insp.tx_id.and_then(|t| st.tx_bits.get(&t));
            let decided = self.rules.iter().find(|r| {
                r.table == Table::App(app, hook) && xbits_hold(&r.rule, bits) && rule_matches(&r.rule, &side)
            });
            let Some(r) = decided else {
                st.app_drop(insp.flow_id); // default drop:flow
                return (Verdict::Drop, hits);
            };
            if let Some(t) = insp.tx_id {
                apply_xbits(&r.rule, st.tx_bits.entry(t).or_default());
            }
            if r.alert {
                let mut h = Hit::of(&r.rule, insp.direction);
                h.blocked = r.action.is_drop();
                h.action = if r.action.is_drop() { super::Action::Drop } else { super::Action::Alert };
                hits.push(h);
            }
            match r.action {
                FwAction::AcceptHook | FwAction::AcceptPacket => {}
                FwAction::AcceptTx => {
                    if let Some(t) = insp.tx_id {
                        st.accepted_txs.insert(t);
                    }
                    return (Verdict::Accept, hits);
                }
                FwAction::AcceptFlow => {
                    st.accepted = insp.flow_id != 0;
                    return (Verdict::Accept, hits);
                }
                FwAction::DropPacket => return (Verdict::Drop, hits),
                FwAction::DropFlow => {
                    st.app_drop(insp.flow_id);
                    return (Verdict::Drop, hits);
                }
            }
        }
        (Verdict::Accept, hits)
    }

    /// Forgets a flow that ended.
    pub fn end_flow(&self, flow_id: u64) {
        self.flows.lock().unwrap_or_else(|p| p.into_inner()).remove(&flow_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{DetectorBuilder, Transport};

    fn packet(flow_id: u64, to_server: bool, established: bool, payload: &[u8]) -> Inspection<'_> {
        let (c, s) = ("10.0.0.1".parse().unwrap(), "192.0.2.9".parse().unwrap());
        let mut i = if to_server {
            Inspection::new(Transport::Tcp, c, 40000, s, 443, Direction::ToServer, payload)
        } else {
            Inspection::new(Transport::Tcp, s, 443, c, 40000, Direction::ToClient, payload)
        };
        i.flow_id = flow_id;
        i.established = established;
        i
    }

    fn detector(fw: &str, td: &str) -> crate::detect::Detector {
        let mut b = DetectorBuilder::new();
        b.add_firewall_rules(fw, "firewall.rules");
        b.add_rules(td, "td.rules");
        let (d, errors) = b.build();
        assert!(errors.is_empty(), "{errors:?}");
        d
    }

    fn sids(hits: &[Hit]) -> Vec<(u32, bool)> {
        hits.iter().map(|h| (h.sid, h.blocked)).collect()
    }

    #[test]
    fn packet_filter_rules_run_in_file_order_and_unmatched_packets_are_dropped() {
        let fw = "accept:hook tcp:all any any <> any 443 (flow:not_established; alert; sid:1;)\n\
                  accept:hook tcp:all any any <> any 443 (flow:established; alert; sid:2;)\n\
                  drop:packet tcp:all any any -> any any (content:\"evil\"; alert; sid:3;)\n";
        let d = detector(fw, "alert tcp any any -> any any (content:\"x\"; sid:10;)\n");
        assert_eq!(sids(&d.inspect(&packet(1, true, false, b""))), [(1, false)]);
        assert_eq!(sids(&d.inspect(&packet(1, true, true, b"x"))), [(2, false), (10, false)], "accepted: TD runs");
        // port 80: no accept; the drop rule alerts and the TD rules never see the packet
        let mut p = packet(2, true, true, b"evil x");
        p.dst_port = 80;
        assert_eq!(sids(&d.inspect(&p)), [(3, true)]);
        let mut p = packet(2, true, true, b"x");
        p.dst_port = 80;
        assert!(d.inspect(&p).is_empty(), "default drop:packet, silently");
    }

    #[test]
    fn accept_flow_skips_the_firewall_and_drop_flow_drops_everything_after() {
        let fw = "accept:flow tcp:flow_start any any -> any 443 (alert; sid:1;)\n\
                  drop:flow,alert tcp:all any any -> any any (sid:2;)\n";
        let d = detector(fw, "alert tcp any any -> any any (content:\"x\"; sid:10;)\n");
        assert_eq!(sids(&d.inspect(&packet(1, true, false, b"x"))), [(1, false), (10, false)]);
        assert_eq!(sids(&d.inspect(&packet(1, false, false, b"x"))), [(10, false)], "flow accepted");
        // a flow to another port: its first packet is dropped with the flow
        let mut p = packet(2, true, false, b"x");
        p.dst_port = 22;
        assert_eq!(sids(&d.inspect(&p)), [(2, true)]);
        assert!(d.inspect(&packet(2, false, true, b"x")).is_empty());
        let mut tx = packet(2, true, true, b"");
        tx.transaction = true;
        assert!(d.inspect(&tx).is_empty(), "transactions of a dropped flow are not inspected");
        d.end_flow(2);
        assert_eq!(sids(&d.inspect(&packet(2, true, false, b"x"))), [(1, false), (10, false)]);
    }

    #[test]
    fn unsupported_firewall_rules_are_rejected_with_the_reason() {
        let fw = "accept:hook tls:client_hello_done any any -> any any (sid:1;)\n\
                  accept:tx tcp:all any any -> any any (sid:2;)\n\
                  accept tcp any any -> any any (sid:3;)\n\
                  accept:hook tcp any any -> any any (sid:4;)\n\
                  accept:hook tcp:all any any -> any any (flowbits:set,x; sid:5;)\n\
                  accept:hook tcp:all any any -> any any (bogus_kw; sid:6;)\n";
        let (rules, errors) = Firewall::parse(fw, "firewall.rules", &Vars::default(), &Classifications::new());
        assert!(rules.is_empty());
        assert_eq!(errors.iter().map(|e| e.rule_line).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
        assert!(errors[0].reason.contains("app-layer firewall hook"), "{}", errors[0]);
        assert!(errors[5].to_string().starts_with("firewall.rules:6:"), "{}", errors[5]);
    }

    #[test]
    fn app_layer_hooks_run_in_order_per_transaction_side_with_default_drop_flow() {
        use crate::detect::AppProto;
        let fw = "accept:hook tcp:all any any -> any any (sid:1;)\n\
                  accept:hook http1:request_started any any -> any any (alert; sid:100;)\n\
                  accept:tx http1:request_line any any -> any any (http.method; content:\"GET\"; alert; sid:101;)\n";
        let td = "alert http any any -> any any (http.uri; content:\"/a\"; sid:10;)\n\
                  alert tcp any any -> any any (content:\"x\"; sid:11;)\n";
        let d = detector(fw, td);
        let request = |flow_id: u64, tx_id: u64, method: &'static [u8]| {
            let mut i = packet(flow_id, true, true, b"");
            i.transaction = true;
            i.app_proto = Some(AppProto::Http);
            i.http_method = Some(method);
            i.http_uri = Some(b"/a");
            i.tx_id = Some(tx_id);
            i
        };
        let response = |flow_id: u64, tx_id: u64| {
            let mut i = packet(flow_id, false, true, b"");
            i.transaction = true;
            i.app_proto = Some(AppProto::Http);
            i.tx_id = Some(tx_id);
            i
        };
        // GET: request_started, then accept:tx at request_line; TD sees the request
        assert_eq!(sids(&d.inspect(&request(1, 0, b"GET"))), [(100, false), (101, false), (10, false)]);
        // the response of an accepted transaction is accepted
        assert!(d.inspect(&response(1, 0)).is_empty());
        // the next transaction has no accept:tx yet: no response hook accepts it: drop:flow
        assert!(d.inspect(&response(1, 1)).is_empty());
        // the packet carrying it is still filtered and seen by the TD rules, later ones not
        assert_eq!(sids(&d.inspect(&packet(1, true, true, b"x"))), [(11, false)]);
        assert!(d.inspect(&packet(1, true, true, b"x")).is_empty());
        assert!(d.inspect(&request(1, 2, b"GET")).is_empty(), "the flow is dropped");

        // POST: request_line has no matching rule: default drop:flow after request_started
        assert_eq!(sids(&d.inspect(&request(2, 0, b"POST"))), [(100, false)]);
        assert!(d.inspect(&request(2, 1, b"GET")).is_empty());

        // a protocol without app-layer firewall rules is not filtered
        let mut dns = request(3, 0, b"GET");
        dns.app_proto = Some(AppProto::Dns);
        assert!(d.inspect(&dns).is_empty());
        assert_eq!(sids(&d.inspect(&packet(3, true, true, b"x"))), [(11, false)]);
        assert_eq!(sids(&d.inspect(&packet(3, true, true, b"x"))), [(11, false)], "not dropped");
    }
}
