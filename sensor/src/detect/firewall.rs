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
//!   filtered. The hooks before the side's first hook with rules are not filtered; `<hook`
//!   puts a rule at the hook before `hook`. The packet carrying a transaction goes through the
//!   packet tables first: a packet they drop does not reach the hooks. The TD rules see a
//!   transaction side only when the firewall accepted it.
//! - App-layer hooks of SSH (`ssh:request_started`, `request_banner_wait_eol`,
//!   `request_banner_done`, `request_finished` and the `response_*` ones) and TLS
//!   (`tls:client_in_progress`, `client_hello_done`, `client_cert_done`,
//!   `client_handshake_done`, `client_finished`, `server_in_progress`, `server_hello`,
//!   `server_cert_done`, `server_hello_done`, `server_handshake_done`, `server_finished`) are
//!   evaluated per packet as the handshake progresses ([`super::hook_progress`]), after the
//!   packet tables (when every table passed the packet on with `accept:hook`) and after the TD
//!   packet rules (a packet they drop does not reach them): on each packet that updates its
//!   side, the hooks from the first one not done up to the side's progress are evaluated in
//!   order. A hook below the progress is then done; the hook of the current progress is
//!   evaluated again on the next update, and its rules without buffer matches alert again (a
//!   rule with buffer matches alerts once). A side that reached its last state is not
//!   inspected any more. A TLS side is updated by a packet completing a record, by any record
//!   but an unencrypted handshake one, and by the first data of the flow; the client's end of
//!   stream finishes its side.
//! - A packet the firewall accepts goes on to the TD rules; a dropped one does not, and neither
//!   do the app-layer transactions of a dropped flow.
//! - `flowbits` in firewall rules are the firewall's own, per flow (the TD rules keep theirs).
//!
//! Not supported yet (such rules are rejected with the reason): the hooks of the other
//! app-layer protocols (`ftp:request_started`, `snmp:...`, ...), `firewall.policies`
//! configuration, and state keywords (`flowint`, host `xbits`, `threshold`) in firewall rules.
//! `xbits` with `track tx` are kept per transaction of the flow.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::RuleError;
use super::compile::{AppProto, Classifications, CompiledRule, Direction, compile_rule};
use super::hook_progress::{SSH_FINISHED, SshProgress, TLS_CLIENT_FINISHED, TLS_SERVER_FINISHED, TlsProgress};
use super::keywords::{FlowbitOp, XbitCmd, XbitTrack};
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
/// SSH: Suricata's `SshConnectionState` per direction ([`SshProgress`]).
const SSH_HOOKS: &[&str] = &[
    "request_started",
    "request_banner_wait_eol",
    "request_banner_done",
    "request_finished",
    "response_started",
    "response_banner_wait_eol",
    "response_banner_done",
    "response_finished",
];

/// TLS: Suricata's TLS states per direction ([`TlsProgress`]).
const TLS_HOOKS: &[&str] = &[
    "client_in_progress",
    "client_hello_done",
    "client_cert_done",
    "client_handshake_done",
    "client_finished",
    "server_in_progress",
    "server_hello",
    "server_cert_done",
    "server_hello_done",
    "server_handshake_done",
    "server_finished",
];

/// The hooks of an app-layer protocol, request side first (`None`: not supported).
pub fn app_hooks(p: AppProto) -> Option<&'static [&'static str]> {
    match p {
        AppProto::Http => Some(HTTP1_HOOKS),
        AppProto::Dns => Some(GENERIC_HOOKS),
        AppProto::Snmp => Some(GENERIC_HOOKS),
        AppProto::Ssh => Some(SSH_HOOKS),
        AppProto::Tls => Some(TLS_HOOKS),
        _ => None,
    }
}

/// Whether the hooks of `p` are evaluated per packet as the protocol's progress advances
/// ([`Firewall::inspect_packet`]) rather than per transaction side.
fn packet_hooks(p: AppProto) -> bool {
    matches!(p, AppProto::Ssh | AppProto::Tls)
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
    /// Per-packet app-layer hooks ([`packet_hooks`]): their progress, for flows of such a
    /// protocol only.
    hooks: Option<Box<HookState>>,
    /// The packet being processed went through every packet table (`accept:hook`).
    through: bool,
    /// The `flowbits` the firewall rules set on the flow (their own: the TD rules keep theirs).
    bits: std::collections::HashSet<Arc<str>>,
}

/// The state of the per-packet app-layer hooks of one flow (its single transaction).
#[derive(Default)]
struct HookState {
    ssh: [SshProgress; 2],
    tls: [TlsProgress; 2],
    /// Packets with payload seen (the first one creates the transaction: it is inspected).
    seen_payload: bool,
    /// Per direction: the hooks below this one are done (Suricata's detect progress).
    done: [u8; 2],
    /// Per direction: the side reached its last state and was inspected.
    inspected: [bool; 2],
    /// `accept:tx`: the transaction is accepted (both sides).
    accepted: bool,
    /// Rules (indices) with buffer matches that matched: they do not alert again; at their
    /// hook their action applies again.
    stored: std::collections::HashSet<usize>,
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
    /// The protocols with per-packet hooks ([`packet_hooks`]) that have rules.
    hooked: Vec<AppProto>,
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

/// Whether a firewall rule's `flowbits` conditions hold for the flow's `bits`.
fn flowbits_hold(r: &CompiledRule, bits: &std::collections::HashSet<Arc<str>>) -> bool {
    r.flowbits.iter().all(|op| match op {
        FlowbitOp::IsSet(names, true) => names.iter().all(|n| bits.contains(n)),
        FlowbitOp::IsSet(names, false) => names.iter().any(|n| bits.contains(n)),
        FlowbitOp::IsNotSet(names, true) => names.iter().all(|n| !bits.contains(n)),
        FlowbitOp::IsNotSet(names, false) => names.iter().any(|n| !bits.contains(n)),
        FlowbitOp::Set(_) | FlowbitOp::Unset(_) | FlowbitOp::Toggle(_) => true,
    })
}

/// Applies a matching firewall rule's `flowbits` modifiers to the flow's `bits`.
fn apply_flowbits(r: &CompiledRule, bits: &mut std::collections::HashSet<Arc<str>>) {
    for op in &r.flowbits {
        match op {
            FlowbitOp::Set(n) => {
                bits.insert(n.clone());
            }
            FlowbitOp::Unset(n) => {
                bits.remove(n);
            }
            FlowbitOp::Toggle(n) => {
                if !bits.remove(n) {
                    bits.insert(n.clone());
                }
            }
            FlowbitOp::IsSet(..) | FlowbitOp::IsNotSet(..) => {}
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
                // `<hook`: the states before the hook (the rule sits at the one before it)
                (_, Some(a)) => match app_hooks(a).and_then(|hs| match hook.strip_prefix('<') {
                    Some(h) => hs
                        .iter()
                        .position(|x| *x == h)
                        .filter(|&i| i > 0 && hs[i - 1].split('_').next() == h.split('_').next())
                        .map(|i| i - 1),
                    None => hs.iter().position(|h| *h == hook),
                }) {
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
                    if !r.flowints.is_empty()
                        || r.xbits.iter().any(|x| x.track != XbitTrack::Tx)
                        || r.threshold.is_some()
                        || r.detection_filter.is_some()
                    {
                        errors.push(
                            parsed.error(
                                parsed.line(),
                                1,
                                None,
                                "state keywords (flowint, host xbits, threshold) in firewall rules not supported yet"
                                    .to_string(),
                            ),
                        );
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
        let mut hooked: Vec<AppProto> = Vec::new();
        for r in &rules {
            if let Table::App(a, _) = r.table
                && packet_hooks(a)
                && !hooked.contains(&a)
            {
                hooked.push(a);
            }
        }
        Firewall { rules, flows: Mutex::new(HashMap::new()), hooked }
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
        let (verdict, hits, _) = self.inspect_packet_tables(insp);
        (verdict, hits)
    }

    /// [`Firewall::inspect_packet`], and whether every table passed the packet on
    /// (`accept:hook`): only then do the app-layer hooks see it.
    fn inspect_packet_tables(&self, insp: &Inspection<'_>) -> (Verdict, Vec<Hit>, bool) {
        let (verdict, hits) = self.packet_tables(insp);
        let through = verdict == Verdict::Accept && {
            let flows = self.flows.lock().unwrap_or_else(|p| p.into_inner());
            flows.get(&insp.flow_id).is_some_and(|f| f.through)
        };
        (verdict, hits, through)
    }

    fn packet_tables(&self, insp: &Inspection<'_>) -> (Verdict, Vec<Hit>) {
        let mut hits = Vec::new();
        let mut flows = self.flows.lock().unwrap_or_else(|p| p.into_inner());
        if flows.len() >= MAX_FLOWS && !flows.contains_key(&insp.flow_id) {
            tracing::warn!(flows = flows.len(), "firewall flow table full: per-flow verdicts dropped");
            metrics::counter!("sensor_firewall_flows_dropped_total").increment(flows.len() as u64);
            flows.clear();
        }
        let st = flows.entry(insp.flow_id).or_default();
        st.through = false;
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
            let decided = self.packet_rule(table, st, first_in_dir, insp);
            if let Some(r) = decided {
                apply_flowbits(&r.rule, &mut st.bits);
            }
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
        // the per-packet app-layer hooks run after the TD packet rules (see Firewall::inspect)
        st.through = true;
        (Verdict::Accept, hits)
    }

    /// The protocol of a packet whose per-packet app-layer hooks are to run
    /// ([`packet_hooks`]), when the firewall has rules for them.
    fn hooked_app(&self, insp: &Inspection<'_>) -> Option<AppProto> {
        if insp.transaction {
            return None;
        }
        let fin = insp.tcp_flags.is_some_and(|f| f & 0x01 != 0);
        insp.app_proto.filter(|a| self.hooked.contains(a) && (!insp.payload.is_empty() || fin) && insp.flow_id != 0)
    }

    /// Advances the app-layer progress of a packet's direction with its payload (the parser
    /// sees every packet, even one the rules drop). Returns the progress, the direction's last
    /// state and first hook index, when the packet updated the transaction.
    fn advance(&self, app: AppProto, insp: &Inspection<'_>) -> Option<(u8, u8, usize)> {
        let mut flows = self.flows.lock().unwrap_or_else(|p| p.into_inner());
        let st = flows.entry(insp.flow_id).or_default();
        if st.accepted || st.dropped {
            return None;
        }
        let hs = st.hooks.get_or_insert_with(Default::default);
        let d = usize::from(insp.direction == Direction::ToClient);
        let first = !hs.seen_payload && !insp.payload.is_empty();
        hs.seen_payload |= first;
        let fin = insp.tcp_flags.is_some_and(|f| f & 0x01 != 0);
        let (progress, last, base, updated) = match app {
            AppProto::Ssh => {
                let p = hs.ssh[d].update(insp.payload);
                (p, SSH_FINISHED, if d == 0 { 0 } else { usize::from(SSH_FINISHED) + 1 }, !insp.payload.is_empty())
            }
            AppProto::Tls => {
                let (mut p, updated) = hs.tls[d].update(insp.payload, d == 0);
                // the client's end of stream finishes its side
                if fin && d == 0 {
                    p = hs.tls[d].eof(true);
                }
                let last = if d == 0 { TLS_CLIENT_FINISHED } else { TLS_SERVER_FINISHED };
                let base = if d == 0 { 0 } else { usize::from(TLS_CLIENT_FINISHED) + 1 };
                (p, last, base, updated || first || (fin && d == 0))
            }
            _ => return None,
        };
        (updated && !hs.accepted && !hs.inspected[d]).then_some((progress, last, base))
    }

    /// Runs the per-packet app-layer hooks of an accepted packet ([`Firewall::run_packet_hooks`]).
    fn inspect_packet_hooks(
        &self,
        app: AppProto,
        at: (u8, u8, usize),
        insp: &Inspection<'_>,
        hits: &mut Vec<Hit>,
    ) -> Verdict {
        let mut flows = self.flows.lock().unwrap_or_else(|p| p.into_inner());
        let st = flows.entry(insp.flow_id).or_default();
        if st.accepted || st.dropped {
            return if st.dropped { Verdict::Drop } else { Verdict::Accept };
        }
        self.run_packet_hooks(app, at, st, insp, hits)
    }

    /// The per-packet app-layer hooks of a packet with payload ([`packet_hooks`]): the hooks
    /// from the first one not done up to the direction's progress after the packet are
    /// evaluated in order (each a table whose first matching rule decides, default
    /// `drop:flow`). A hook below the progress is done once evaluated; the hook of the
    /// current progress is evaluated again on the next packet that updates the side, and its
    /// rules without buffer matches alert again. Once the side reached its last state it is
    /// not inspected again.
    fn run_packet_hooks(
        &self,
        app: AppProto,
        (progress, last, base): (u8, u8, usize),
        st: &mut FlowFw,
        insp: &Inspection<'_>,
        hits: &mut Vec<Hit>,
    ) -> Verdict {
        let hs = st.hooks.get_or_insert_with(Default::default);
        let d = usize::from(insp.direction == Direction::ToClient);
        // the TLS buffers of the client's hello, for the hook rules
        let hello = hs.tls[0].client_hello.as_ref().filter(|_| app == AppProto::Tls);
        let sni = hello.and_then(|h| h.sni.clone());
        let ja3 = hello.map(crate::app::tls::ja3);
        let mut other: Vec<(super::Buffer, &[u8])> = insp.other.to_vec();
        if let Some(j) = &ja3 {
            if let Some(x) = &j.hash {
                other.push((super::Buffer::Ja3Hash, x.as_bytes()));
            }
            if let Some(x) = &j.string {
                other.push((super::Buffer::Ja3String, x.as_bytes()));
            }
        }
        // the server side: the certificate chain's length, once seen
        let chain = hs.tls[1].cert_chain_len.filter(|_| app == AppProto::Tls && d == 1);
        let chain_int = chain.map(|n| [(super::AppInt::TlsCertChainLen, n)]);
        let side = Inspection {
            transaction: false,
            tls_sni: sni.as_deref().map(str::as_bytes).or(insp.tls_sni),
            other: &other,
            app_ints: chain_int.as_ref().map_or(insp.app_ints, |c| c.as_slice()),
            ..*insp
        };
        let mut verdict = Verdict::Accept;
        'hooks: for h in hs.done[d]..=progress {
            let table = Table::App(app, base + usize::from(h));
            let mut decided = None;
            for (i, r) in self.rules.iter().enumerate().filter(|(_, r)| r.table == table) {
                if hs.stored.contains(&i) {
                    decided = Some((r, false));
                    break;
                }
                if flowbits_hold(&r.rule, &st.bits) && rule_matches(&r.rule, &side) {
                    apply_flowbits(&r.rule, &mut st.bits);
                    if !r.rule.lists.is_empty() {
                        hs.stored.insert(i);
                    }
                    decided = Some((r, true));
                    break;
                }
            }
            let Some((r, fresh)) = decided else {
                st.dropped = true; // default drop:flow
                return Verdict::Drop;
            };
            if fresh && r.alert {
                let mut hit = Hit::of(&r.rule, insp.direction);
                hit.blocked = r.action.is_drop();
                hit.action = if r.action.is_drop() { super::Action::Drop } else { super::Action::Alert };
                hits.push(hit);
            }
            if h < progress {
                hs.done[d] = h + 1;
            }
            match r.action {
                FwAction::AcceptHook => {}
                FwAction::AcceptPacket => break 'hooks,
                FwAction::AcceptTx => {
                    hs.accepted = true;
                    break 'hooks;
                }
                FwAction::AcceptFlow => {
                    st.accepted = true;
                    break 'hooks;
                }
                FwAction::DropPacket => {
                    verdict = Verdict::Drop;
                    break 'hooks;
                }
                FwAction::DropFlow => {
                    st.dropped = true;
                    return Verdict::Drop;
                }
            }
        }
        if progress >= last {
            hs.inspected[d] = true;
        }
        verdict
    }

    /// Runs the firewall, then `td` (the threat-detection rules) on what it accepts. A
    /// transaction is inspected by `td` unless its flow was dropped.
    /// `td_dropped_flow` tells whether a TD rule dropped a flow (IPS mode).
    pub fn inspect(
        &self,
        insp: &Inspection<'_>,
        td: impl FnOnce(&Inspection<'_>) -> Vec<Hit>,
        td_dropped_flow: impl Fn(u64) -> bool,
    ) -> Vec<Hit> {
        if insp.transaction {
            let (verdict, mut hits) = self.inspect_transaction(insp);
            if verdict == Verdict::Accept {
                hits.extend(td(insp));
            }
            return hits;
        }
        let (verdict, mut hits, through) = self.inspect_packet_tables(insp);
        if verdict == Verdict::Accept {
            // the per-packet app-layer hooks come after the packet rules (TD ones included):
            // a packet a TD rule dropped does not reach them
            let progress =
                self.hooked_app(insp).and_then(|app| Some((app, self.advance(app, insp)?))).filter(|_| through);
            let td_hits = td(insp);
            if let Some((app, at)) = progress
                && !td_hits.iter().any(|h| h.blocked)
                && !td_dropped_flow(insp.flow_id)
            {
                // (a drop by the hooks comes after the TD packet rules saw the packet)
                let _ = self.inspect_packet_hooks(app, at, insp, &mut hits);
            }
            hits.extend(td_hits);
        }
        hits
    }

    /// The first rule of packet table `table` that decides for `insp` (a packet: it has no
    /// transaction, so no transaction bit is set for it).
    fn packet_rule(&self, table: Table, st: &FlowFw, first_in_dir: bool, insp: &Inspection<'_>) -> Option<&FwRule> {
        self.rules.iter().find(|r| {
            r.table == table
                && (!r.flow_start || first_in_dir)
                && xbits_hold(&r.rule, None)
                && flowbits_hold(&r.rule, &st.bits)
                && rule_matches(&r.rule, insp)
        })
    }

    /// Whether the packet tables drop the packet carrying a transaction (`insp`, without its
    /// payload), without changing the flow's state.
    fn packet_tables_drop(&self, st: &FlowFw, insp: &Inspection<'_>) -> bool {
        let d = usize::from(insp.direction == Direction::ToClient);
        let first_in_dir = !st.seen[d];
        let pkt = Inspection { transaction: false, ..*insp };
        for table in TABLES {
            let decided = self.packet_rule(table, st, first_in_dir, &pkt);
            match decided.map(|r| r.action) {
                None if table == Table::Filter => return true,
                None | Some(FwAction::AcceptHook) => continue,
                Some(a) => return a.is_drop(),
            }
        }
        false
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
        if packet_hooks(app) {
            return (Verdict::Accept, hits); // its hooks ran on the packets
        }
        let Some(hooks) = app_hooks(app) else { return (Verdict::Accept, hits) };
        let filtered = self.rules.iter().any(|r| matches!(r.table, Table::App(a, _) if a == app));
        // the packet carrying the transaction goes through the packet tables first: a packet
        // they drop does not reach the app-layer hooks (its tables run for real afterwards)
        if filtered && !st.accepted && self.packet_tables_drop(st, insp) {
            return (Verdict::Drop, hits);
        }
        if st.accepted || !filtered || insp.tx_id.is_some_and(|t| st.accepted_txs.contains(&t)) {
            return (Verdict::Accept, hits);
        }
        // the rules are matched like packet rules: rules without a buffer match the hook too
        let side = Inspection { transaction: false, ..*insp };
        let requests = hooks.iter().take_while(|h| h.starts_with("request")).count();
        let range = if insp.direction == Direction::ToServer { 0..requests } else { requests..hooks.len() };
        // the hooks before the side's first hook with rules are not filtered (Suricata applies
        // the default policy from the first rule of the side on)
        let first = range.clone().find(|&h| self.rules.iter().any(|r| r.table == Table::App(app, h)));
        let range = first.unwrap_or(range.start)..range.end;
        for hook in range {
            let bits = insp.tx_id.and_then(|t| st.tx_bits.get(&t));
            let decided = self.rules.iter().find(|r| {
                r.table == Table::App(app, hook)
                    && xbits_hold(&r.rule, bits)
                    && flowbits_hold(&r.rule, &st.bits)
                    && rule_matches(&r.rule, &side)
            });
            if let Some(r) = decided {
                apply_flowbits(&r.rule, &mut st.bits);
            }
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
        let fw = "accept:hook ftp:request_started any any -> any any (sid:1;)\n\
                  accept:tx tcp:all any any -> any any (sid:2;)\n\
                  accept tcp any any -> any any (sid:3;)\n\
                  accept:hook tcp any any -> any any (sid:4;)\n\
                  accept:hook tcp:all any any -> any any (flowint:x,+,1; sid:5;)\n\
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

    #[test]
    fn ssh_hooks_run_per_packet_as_the_handshake_progresses() {
        use crate::detect::AppProto;
        let fw = "accept:hook tcp:all any any <> any 443 (sid:1;)\n\
                  accept:hook ssh:request_started any any -> any any (alert; sid:10;)\n\
                  accept:hook ssh:request_banner_wait_eol any any -> any any (alert; sid:11;)\n\
                  accept:hook ssh:request_banner_done any any -> any any (ssh.software; content:\"OpenSSH\"; alert; sid:12;)\n\
                  accept:hook ssh:request_finished any any -> any any (alert; sid:13;)\n\
                  accept:tx ssh:response_started any any -> any any (alert; sid:20;)\n";
        let d = detector(fw, "alert tcp any any -> any any (content:\"x\"; sid:99;)\n");
        let ssh =
            |to_server: bool, payload: &'static [u8], software: &'static [(crate::detect::Buffer, &'static [u8])]| {
                let mut i = packet(1, to_server, true, payload);
                i.app_proto = Some(AppProto::Ssh);
                i.other = software;
                i
            };
        let sw: &[(crate::detect::Buffer, &[u8])] = &[(crate::detect::Buffer::SshSoftware, b"OpenSSH_8.2p1")];
        // the identification line: the hooks up to banner_done, each alerting once
        assert_eq!(
            sids(&d.inspect(&ssh(true, b"SSH-2.0-OpenSSH_8.2p1\r\n", sw))),
            [(10, false), (11, false), (12, false)]
        );
        // still at banner_done: the stored match accepts again without alerting
        assert_eq!(sids(&d.inspect(&ssh(true, &[0, 0, 0, 12, 4, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[]))), []);
        // NEWKEYS: request_finished, then the side is done
        assert_eq!(sids(&d.inspect(&ssh(true, &[0, 0, 0, 12, 10, 21], &[]))), [(13, false)]);
        assert_eq!(sids(&d.inspect(&ssh(true, b"x", &[]))), [(99, false)], "accepted, TD sees it");
        // the response side: accept:tx at its first hook accepts the rest of the transaction
        assert_eq!(sids(&d.inspect(&ssh(false, b"SSH-2.0-x\r\n", &[]))), [(20, false), (99, false)]);
        assert_eq!(sids(&d.inspect(&ssh(false, b"x", &[]))), [(99, false)]);

        // without a rule for banner_done the flow is dropped by default (drop:flow)
        let fw = "accept:hook tcp:all any any <> any 443 (sid:1;)\n\
                  accept:hook ssh:request_started any any -> any any (alert; sid:10;)\n";
        let d = detector(fw, "alert tcp any any -> any any (content:\"x\"; sid:99;)\n");
        assert_eq!(
            sids(&d.inspect(&ssh(true, b"SSH-2.0-x\r\n", &[]))),
            [(10, false), (99, false)],
            "the TD packet rules come first"
        );
        assert!(d.inspect(&ssh(true, b"x", &[])).is_empty(), "the flow is dropped");
    }

    #[test]
    fn tls_hooks_skip_packets_that_only_extend_an_incomplete_handshake_record() {
        use crate::detect::AppProto;
        let fw = "accept:hook tcp:all any any <> any 443 (sid:1;)\n\
                  accept:hook tls:client_in_progress any any -> any any (alert; sid:10;)\n\
                  accept:flow tls:client_hello_done any any -> any any (alert; sid:11;)\n";
        let d = detector(fw, "alert tcp any any -> any any (content:\"x\"; sid:99;)\n");
        let tls = |payload: &'static [u8]| {
            let mut i = packet(1, true, true, payload);
            i.app_proto = Some(AppProto::Tls);
            i
        };
        // a ClientHello record of 6 bytes split over three packets
        const HELLO: &[u8] = &[22, 3, 1, 0, 6, 1, 0, 0, 2, 3, 3];
        assert_eq!(sids(&d.inspect(&tls(&HELLO[..6]))), [(10, false)], "the first data creates the transaction");
        assert_eq!(sids(&d.inspect(&tls(&HELLO[6..8]))), [], "not an update: accepted, not inspected");
        assert_eq!(sids(&d.inspect(&tls(&HELLO[8..]))), [(10, false), (11, false)]);
        assert_eq!(sids(&d.inspect(&tls(b"x"))), [(99, false)], "accept:flow");
    }

    #[test]
    fn firewall_flowbits_are_kept_per_flow_for_the_firewall_rules() {
        let fw = "accept:packet tcp:all any any -> any any (flowbits:isset,ok; alert; sid:1;)\n\
                  accept:packet tcp:all any any -> any any (content:\"hello\"; flowbits:set,ok; sid:2;)\n";
        let d = detector(fw, "alert tcp any any -> any any (content:\"x\"; sid:99;)\n");
        assert!(d.inspect(&packet(1, true, true, b"x")).is_empty(), "dropped: no bit yet");
        assert_eq!(sids(&d.inspect(&packet(1, true, true, b"hello"))), []);
        assert_eq!(sids(&d.inspect(&packet(1, true, true, b"x"))), [(1, false), (99, false)]);
        assert!(d.inspect(&packet(2, true, true, b"x")).is_empty(), "another flow has no bit");
    }

    #[test]
    fn a_transaction_of_a_packet_the_packet_filter_drops_is_not_inspected() {
        use crate::detect::AppProto;
        let fw = "accept:hook tcp:all any any -> any any (sid:1;)\n\
                  accept:hook dns:request_started any any -> any any (alert; sid:10;)\n\
                  accept:hook dns:request_complete any any -> any any (alert; sid:11;)\n";
        let d = detector(fw, "");
        let mut tx = packet(1, true, true, b"");
        tx.transaction = true;
        tx.app_proto = Some(AppProto::Dns);
        tx.tx_id = Some(0);
        assert_eq!(sids(&d.inspect(&tx)), [(10, false), (11, false)], "TCP: the packet filter accepts");
        let (c, s) = ("10.0.0.1".parse().unwrap(), "192.0.2.9".parse().unwrap());
        let mut udp = Inspection::new(Transport::Udp, c, 5353, s, 53, Direction::ToServer, b"");
        udp.flow_id = 2;
        udp.transaction = true;
        udp.app_proto = Some(AppProto::Dns);
        udp.tx_id = Some(0);
        assert!(d.inspect(&udp).is_empty(), "UDP: no packet filter rule accepts it");
    }
}
