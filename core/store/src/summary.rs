//! Statistics for the overview screen in a handful of `GROUP BY` queries (no per-chart scans
//! of the JSON for counts): events per type × segment × time bucket in one query (totals,
//! per type, per segment and alerts over time all come from it), top rules from the `alerts`
//! table, top talkers from the `src_ip` column, countries and ASNs from the GeoIP enrichment.
//!
//! On ClickHouse whole hours come from hourly tables filled at insert by materialized views,
//! and the partial hours at the edges from the raw rows, read without `FINAL`. Alerts and
//! detections count once per id (the first version of their `alerts` row), even when dedup
//! re-emits them or a batch is delivered again. Other records of a batch delivered twice count
//! twice: in the hourly tables for good, in the raw rows until the background merge collapses
//! them. Exact counts stay with [`crate::Store::count_events`]. The data scope (`segments`)
//! applies to every chart.

use crate::EventQuery;

/// What [`crate::Store::summary`] computes over: `base` gives the time range and scope
/// (its other filters and limit are ignored); alert counts per `bucket_micros`; `top`
/// entries per list.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SummaryQuery {
    pub base: EventQuery,
    pub bucket_micros: i64,
    pub top: usize,
}

/// The overview's numbers. Lists of `(key, count)` are largest first, ties by key.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// `(event_type, segment ("" when none), count)`.
    pub by_type_segment: Vec<(String, String, u64)>,
    /// `(bucket start in microseconds, alert and detection records)`, ascending.
    pub alerts_over_time: Vec<(i64, u64)>,
    /// Rule titles (Suricata signatures and detection rules) by alerts.
    pub top_rules: Vec<(String, u64)>,
    /// Source addresses by records.
    pub top_talkers: Vec<(String, u64)>,
    /// Country ISO codes of enriched source and destination addresses.
    pub countries: Vec<(String, u64)>,
    /// Autonomous system numbers of enriched source and destination addresses.
    pub asns: Vec<(String, u64)>,
}

impl Summary {
    pub fn total(&self) -> u64 {
        self.by_type_segment.iter().map(|(_, _, n)| n).sum()
    }

    /// Counts per event type, largest first (ties by key).
    pub fn by_type(&self) -> Vec<(String, u64)> {
        ranked(self.by_type_segment.iter().map(|(t, _, n)| (t.clone(), *n)), usize::MAX)
    }

    /// Counts per segment (`""` for none), largest first (ties by key).
    pub fn by_segment(&self) -> Vec<(String, u64)> {
        ranked(self.by_type_segment.iter().map(|(_, s, n)| (s.clone(), *n)), usize::MAX)
    }
}

/// Sums counts per key and keeps the largest `top` (ties by key); empty keys are dropped
/// only by callers that want it.
pub(crate) fn ranked(it: impl Iterator<Item = (String, u64)>, top: usize) -> Vec<(String, u64)> {
    let mut m: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    for (k, n) in it {
        *m.entry(k).or_default() += n;
    }
    let mut v: Vec<(String, u64)> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(top);
    v
}

/// Checks the parameters that end up in the SQL text.
pub(crate) fn check(q: &SummaryQuery) -> Result<(), crate::StoreError> {
    if q.bucket_micros <= 0 {
        return Err(crate::StoreError::Invalid("time bucket must be positive".into()));
    }
    Ok(())
}

/// GeoIP fields counted, per list: (country, asn) × (source, destination).
pub(crate) const GEO_FIELDS: [[&str; 2]; 2] =
    [["geoip.src_ip.country_iso", "geoip.dest_ip.country_iso"], ["geoip.src_ip.asn", "geoip.dest_ip.asn"]];

/// Country and ASN of the source and destination addresses from a record's GeoIP
/// enrichment (`geoip.src_ip.country_iso`, ...; numbers as written), or `None` when it has
/// none of them. Order: source country, destination country, source ASN, destination ASN.
pub(crate) fn geo_of(e: &soc_model::Event) -> Option<[String; 4]> {
    let geo = e.extra.get("geoip")?;
    let get = |dir: &str, key: &str| match geo.get(dir).and_then(|d| d.get(key)) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v @ serde_json::Value::Number(_)) => v.to_string(),
        _ => String::new(),
    };
    let out =
        [get("src_ip", "country_iso"), get("dest_ip", "country_iso"), get("src_ip", "asn"), get("dest_ip", "asn")];
    if out.iter().all(String::is_empty) { None } else { Some(out) }
}

/// ClickHouse tables derived from the events, partitioned by day like them (retention drops
/// the same days).
pub(crate) const DERIVED_TABLES: [&str; 8] = [
    "alerts",
    "alert_state",
    "event_geo",
    "stats_events_hourly",
    "stats_rules_hourly",
    "stats_talkers_hourly",
    "stats_talkers_daily",
    "stats_geo_hourly",
];

const HOUR_US: i64 = 3_600_000_000;

/// How a time range splits between the hourly pre-aggregated tables (whole hours) and the
/// raw rows (the partial hours at its edges).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HourSplit {
    /// Read the hourly tables for `[hours_from, hours_until)` (microseconds; `None`: open).
    pub use_hours: bool,
    pub hours_from: Option<i64>,
    pub hours_until: Option<i64>,
    /// Ranges `[since, until)` read from the raw rows.
    pub raw: Vec<(Option<soc_model::Timestamp>, Option<soc_model::Timestamp>)>,
}

/// Splits `[since, until)`: whole UTC hours from the hourly tables when the buckets are whole
/// hours and the range holds at least one whole hour; the rest from the raw rows.
pub(crate) fn split_hours(
    since: Option<soc_model::Timestamp>,
    until: Option<soc_model::Timestamp>,
    bucket_micros: i64,
) -> HourSplit {
    use soc_model::Timestamp;
    let all_raw = HourSplit { use_hours: false, hours_from: None, hours_until: None, raw: vec![(since, until)] };
    if bucket_micros % HOUR_US != 0 {
        return all_raw;
    }
    let from = since.map(|s| {
        s.unix_micros().div_euclid(HOUR_US) * HOUR_US + if s.unix_micros() % HOUR_US == 0 { 0 } else { HOUR_US }
    });
    let to = until.map(|u| u.unix_micros().div_euclid(HOUR_US) * HOUR_US);
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        return all_raw;
    }
    let mut raw = Vec::new();
    if let (Some(s), Some(f)) = (since, from)
        && s.unix_micros() < f
    {
        raw.push((Some(s), Some(Timestamp::from_unix_micros(f))));
    }
    if let (Some(u), Some(t)) = (until, to)
        && t < u.unix_micros()
    {
        raw.push((Some(Timestamp::from_unix_micros(t)), Some(u)));
    }
    HourSplit { use_hours: true, hours_from: from, hours_until: to, raw }
}

#[cfg(test)]
mod tests {
    use super::*;
    use soc_model::Timestamp;

    #[test]
    fn ranges_split_into_whole_hours_and_raw_edges() {
        let t = |us: i64| Timestamp::from_unix_micros(us);
        let h = HOUR_US;
        let s = split_hours(Some(t(10 * h + 5)), Some(t(20 * h + 7)), h);
        assert!(s.use_hours);
        assert_eq!((s.hours_from, s.hours_until), (Some(11 * h), Some(20 * h)));
        assert_eq!(s.raw, vec![(Some(t(10 * h + 5)), Some(t(11 * h))), (Some(t(20 * h)), Some(t(20 * h + 7)))]);
        let s = split_hours(Some(t(10 * h)), None, 24 * h);
        assert_eq!((s.use_hours, s.hours_from, s.hours_until, s.raw.len()), (true, Some(10 * h), None, 0));
        // Minute buckets, or no whole hour inside: everything raw.
        assert!(!split_hours(Some(t(10 * h)), Some(t(12 * h)), 60_000_000).use_hours);
        let s = split_hours(Some(t(10 * h + 1)), Some(t(11 * h - 1)), h);
        assert_eq!((s.use_hours, s.raw.len()), (false, 1));
    }
}
