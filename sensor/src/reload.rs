//! Rule reload while sensors run.
//!
//! A [`RuleSlot`] holds the current rule set ([`Detector`]) of a sensor process and a
//! generation number. Sensors built with [`crate::Sensor::with_rule_slot`] compare the
//! generation before every packet and tick (one atomic load) and, when a new set was
//! [published](RuleSlot::publish), switch to it between two packets: the flow table, TCP
//! reassembly and app-layer parsers are the sensor's and stay as they are; the detection state
//! (flowbits, flowints, xbits, thresholds, passed flows) is moved into the new set with
//! [`Detector::take_state_from`], keeping what the new rules still name. Worker threads each
//! switch at their next packet or tick; the reader never waits for them.

use crate::detect::Detector;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The current rule set of a sensor process and its generation (0 for the first one).
#[derive(Debug, Default)]
pub struct RuleSlot {
    generation: AtomicU64,
    current: Mutex<Option<Arc<Detector>>>,
}

impl RuleSlot {
    /// A slot holding `initial` (`None`: no signatures inspected until a set is published).
    pub fn new(initial: Option<Arc<Detector>>) -> Arc<RuleSlot> {
        Arc::new(RuleSlot { generation: AtomicU64::new(0), current: Mutex::new(initial) })
    }

    /// Replaces the rule set; sensors take it up at their next packet. Returns the new
    /// generation.
    pub fn publish(&self, detector: Arc<Detector>) -> u64 {
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        *cur = Some(detector);
        self.generation.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// The generation of the current set (how many sets were published).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The current set and its generation.
    pub fn current(&self) -> (u64, Option<Arc<Detector>>) {
        let cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        (self.generation.load(Ordering::Acquire), cur.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::LinkType;
    use crate::detect::Vars;
    use crate::synth::{Host, TcpSession};
    use crate::{Sensor, SensorOptions};
    use soc_model::{Event, EventType, Timestamp};

    fn rules(text: &str) -> Arc<Detector> {
        let (d, errors) = Detector::from_rules(text, "test.rules", &Vars::default());
        assert!(errors.is_empty(), "{errors:?}");
        Arc::new(d)
    }

    fn alert_sids(out: &[Event]) -> Vec<u32> {
        let mut v: Vec<u32> = out
            .iter()
            .filter(|e| e.event_type == EventType::Alert)
            .filter_map(|e| e.alert.as_ref().and_then(|a| a.signature_id).map(|s| s as u32))
            .collect();
        v.sort_unstable();
        v
    }

    // `tcp-pkt` rules inspect each segment as it comes; a `tcp` payload rule inspects the
    // reassembled stream, in chunks (see crate::app::raw)
    const SID1: &str =
        "alert tcp-pkt any any -> any any (msg:\"login\"; content:\"LOGIN\"; flowbits:set,logged_in; sid:1;)\n";
    const OLD: &str = "alert tcp-pkt any any -> any any (msg:\"login\"; content:\"LOGIN\"; flowbits:set,logged_in; sid:1;)\n\
                       alert tcp-pkt any any -> any any (msg:\"old only\"; content:\"PING\"; sid:10;)\n";
    /// sid 1 is gone; sid 2 reads the flowbit it set before the reload.
    const NEW: &str = "alert tcp-pkt any any -> any any (msg:\"secret after login\"; content:\"SECRET\"; flowbits:isset,logged_in; sid:2;)\n\
                       alert tcp-pkt any any -> any any (msg:\"new ping\"; content:\"PING\"; sid:20;)\n";

    /// One TCP session, its packets split in two halves around a reload.
    fn session() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let mut s = TcpSession::new(Host::v4([10, 0, 0, 1]), 40000, Host::v4([10, 0, 0, 2]), 7000);
        let mut first = s.handshake();
        first.push(s.client_send(b"LOGIN bob\r\n"));
        first.push(s.client_send(b"PING\r\n"));
        let mut second = vec![s.client_send(b"SECRET 1234\r\n"), s.client_send(b"PING\r\n")];
        second.extend(s.close());
        (first, second)
    }

    fn feed(sensor: &mut Sensor, frames: &[Vec<u8>], t0: i64, out: &mut Vec<Event>) {
        for (i, f) in frames.iter().enumerate() {
            sensor.process(Timestamp::from_unix_micros(t0 + i as i64 * 1000), LinkType::Ethernet, f, out);
        }
    }

    #[test]
    fn a_published_rule_set_is_used_from_the_next_packet_and_keeps_flowbits_and_flows() {
        let slot = RuleSlot::new(Some(rules(OLD)));
        let mut sensor = Sensor::new(SensorOptions::default()).with_rule_slot(slot.clone());
        let (first, second) = session();
        let t0 = 1_700_000_000_000_000;
        let mut before = Vec::new();
        feed(&mut sensor, &first, t0, &mut before);
        assert_eq!(alert_sids(&before), [1, 10]);
        assert_eq!(slot.publish(rules(NEW)), 1);
        let mut after = Vec::new();
        feed(&mut sensor, &second, t0 + 1_000_000, &mut after);
        sensor.flush_all(&mut after);
        // the flowbit set under the old rules is seen by the new sid 2; sid 10 is gone
        assert_eq!(alert_sids(&after), [2, 20]);
        // one flow across the reload, with every packet
        let flows: Vec<&Event> = after.iter().filter(|e| e.event_type == EventType::Flow).collect();
        assert_eq!(flows.len(), 1);
        let f = flows[0].flow.as_ref().unwrap();
        assert_eq!(f.pkts_toserver.unwrap_or(0) + f.pkts_toclient.unwrap_or(0), (first.len() + second.len()) as u64);
        assert_eq!(sensor.stats().packets, (first.len() + second.len()) as u64);
    }

    #[test]
    fn flowbits_the_new_rules_do_not_name_are_dropped() {
        let old = rules(OLD);
        let new = rules(
            "alert tcp-pkt any any -> any any (msg:\"other bit\"; content:\"SECRET\"; flowbits:isnotset,logged_in_v2; flowbits:set,x; sid:3;)\n\
             alert tcp-pkt any any -> any any (msg:\"secret\"; content:\"SECRET\"; flowbits:isset,logged_in; sid:2;)\n",
        );
        let slot = RuleSlot::new(Some(old.clone()));
        let mut sensor = Sensor::new(SensorOptions::default()).with_rule_slot(slot.clone());
        let (first, second) = session();
        let mut out = Vec::new();
        feed(&mut sensor, &first, 1_700_000_000_000_000, &mut out);
        slot.publish(new.clone());
        out.clear();
        feed(&mut sensor, &second, 1_700_000_001_000_000, &mut out);
        assert_eq!(alert_sids(&out), [2, 3]);

        // a set that no longer names `logged_in`: the bit is not carried over
        let slot = RuleSlot::new(Some(rules(OLD)));
        let mut sensor = Sensor::new(SensorOptions::default()).with_rule_slot(slot.clone());
        feed(&mut sensor, &first, 1_700_000_000_000_000, &mut out);
        slot.publish(rules(
            "alert tcp-pkt any any -> any any (msg:\"x\"; content:\"SECRET\"; flowbits:isnotset,x; sid:4;)\n\
             alert tcp-pkt any any -> any any (msg:\"y\"; content:\"zzz\"; flowbits:set,x; sid:5;)\n",
        ));
        out.clear();
        feed(&mut sensor, &second, 1_700_000_001_000_000, &mut out);
        assert_eq!(alert_sids(&out), [4]);
    }

    #[test]
    fn threshold_counters_follow_their_sid_when_the_threshold_is_unchanged() {
        let limit = "alert tcp-pkt any any -> any any (msg:\"ping\"; content:\"PING\"; threshold:type limit, track by_rule, count 1, seconds 3600; sid:7;)\n";
        let (first, second) = session();
        let t0 = 1_700_000_000_000_000;
        let run = |new: &str| {
            let slot = RuleSlot::new(Some(rules(limit)));
            let mut sensor = Sensor::new(SensorOptions::default()).with_rule_slot(slot.clone());
            let mut out = Vec::new();
            feed(&mut sensor, &first, t0, &mut out);
            assert_eq!(alert_sids(&out), [7]);
            slot.publish(rules(new));
            out.clear();
            feed(&mut sensor, &second, t0 + 1_000_000, &mut out);
            alert_sids(&out)
        };
        // same rule (another rule added before it): the limit was reached, no second alert
        let same = format!("alert tcp-pkt any any -> any any (msg:\"a\"; content:\"nothing\"; sid:99;)\n{limit}");
        assert_eq!(run(&same), Vec::<u32>::new());
        // the threshold changed: counting starts again
        assert_eq!(run(&limit.replace("count 1", "count 2")), [7]);
    }

    #[test]
    fn workers_switch_to_a_published_set() {
        use crate::workers::Workers;
        let slot = RuleSlot::new(Some(rules(OLD)));
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        let s = slot.clone();
        let mut w = Workers::new(
            2,
            move |_| Sensor::new(SensorOptions::default()).with_rule_slot(s.clone()),
            move |b: Vec<Event>| sink.lock().unwrap().extend(b),
        );
        let t0 = 1_700_000_000_000_000;
        let mut n = 0;
        // sessions between several host pairs, so that both workers get some
        for host in 1..=8u8 {
            let mut s = TcpSession::new(Host::v4([10, 0, 1, host]), 40000, Host::v4([10, 0, 0, 2]), 7000);
            for f in s.handshake().into_iter().chain([s.client_send(b"LOGIN x\r\n")]) {
                w.process(Timestamp::from_unix_micros(t0 + n * 1000), LinkType::Ethernet, &f);
                n += 1;
            }
        }
        // frames still queued for a worker thread are inspected with the new set: it sets the
        // flowbit too
        slot.publish(rules(&format!("{SID1}{NEW}")));
        for host in 1..=8u8 {
            let mut s = TcpSession::new(Host::v4([10, 0, 1, host]), 40000, Host::v4([10, 0, 0, 2]), 7000);
            s.handshake();
            s.client_send(b"LOGIN x\r\n");
            let f = s.client_send(b"SECRET\r\n");
            w.process(Timestamp::from_unix_micros(t0 + n * 1000), LinkType::Ethernet, &f);
            n += 1;
        }
        let stats = w.finish().unwrap();
        assert_eq!(stats.iter().map(|s| s.packets).sum::<u64>(), n as u64);
        let got = alert_sids(&out.lock().unwrap());
        assert_eq!(got.iter().filter(|&&s| s == 2).count(), 8, "{got:?}");
    }
}
