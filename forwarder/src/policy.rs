//! Which incidents leave: minimum severity, segments, and manual or automatic approval.

use serde::Deserialize;
use soc_model::{Incident, Level};

/// Whether an analyst must approve an incident before it is sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Approval {
    /// Every incident that passes the policy is sent.
    #[default]
    Automatic,
    /// An incident waits for `soc forwarder approve <incident-id>`; once approved, its later
    /// versions are sent without asking again.
    Manual,
}

/// `[policy]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Incidents below this severity stay home.
    #[serde(default = "default_min")]
    pub min_severity: Level,
    /// Only incidents touching one of these segments leave (empty: any segment).
    #[serde(default)]
    pub segments: Vec<String>,
    #[serde(default)]
    pub approval: Approval,
}

fn default_min() -> Level {
    Level::Medium
}

impl Default for Policy {
    fn default() -> Self {
        Policy { min_severity: default_min(), segments: vec![], approval: Approval::Automatic }
    }
}

/// What to do with one incident version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Send,
    AwaitApproval,
    Skip(String),
}

impl Policy {
    /// `shared`: an earlier version of this incident already went out (its updates follow,
    /// whatever their severity, so the NCSC learns it was closed or a false positive).
    /// `approved`: an analyst approved this incident.
    pub fn decide(&self, i: &Incident, shared: bool, approved: bool) -> Decision {
        if !shared {
            if i.severity < self.min_severity {
                return Decision::Skip(format!(
                    "severity {} is below the policy's minimum {}",
                    i.severity.as_str(),
                    self.min_severity.as_str()
                ));
            }
            if !self.segments.is_empty() && !i.segments.iter().any(|s| self.segments.contains(s)) {
                return Decision::Skip(format!(
                    "segments [{}] are not among the policy's [{}]",
                    i.segments.join(", "),
                    self.segments.join(", ")
                ));
            }
        }
        if self.approval == Approval::Manual && !approved && !shared {
            return Decision::AwaitApproval;
        }
        Decision::Send
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(sev: Level, seg: &str) -> Incident {
        Incident { incident_id: "i".into(), severity: sev, segments: vec![seg.into()], ..Default::default() }
    }

    #[test]
    fn low_severity_and_other_segments_are_skipped_with_the_reason() {
        let p = Policy { min_severity: Level::High, segments: vec!["cpnet".into()], approval: Approval::Automatic };
        assert!(
            matches!(p.decide(&inc(Level::Medium, "cpnet"), false, false), Decision::Skip(r) if r.contains("severity"))
        );
        assert!(
            matches!(p.decide(&inc(Level::High, "ministry"), false, false), Decision::Skip(r) if r.contains("segments"))
        );
        assert_eq!(p.decide(&inc(Level::Critical, "cpnet"), false, false), Decision::Send);
    }

    #[test]
    fn manual_approval_waits_until_approved_and_updates_of_shared_incidents_follow() {
        let p = Policy { approval: Approval::Manual, ..Default::default() };
        assert_eq!(p.decide(&inc(Level::High, "x"), false, false), Decision::AwaitApproval);
        assert_eq!(p.decide(&inc(Level::High, "x"), false, true), Decision::Send);
        assert_eq!(p.decide(&inc(Level::Low, "x"), true, false), Decision::Send);
    }
}
