//! DCERPC keywords that test a transaction's state rather than a buffer: `dcerpc.iface`
//! (`dce_iface`) and `dcerpc.opnum` (`dce_opnum`). They match DCERPC requests and responses
//! over TCP and over SMB named pipes ([`DceTx`], filled by the sensor's parsers).

use super::compile::IntCond;

/// `dcerpc.iface:<uuid>[,<op><version>][,any_frag]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfaceCond {
    /// The interface UUID in its textual byte order.
    pub uuid: [u8; 16],
    /// Condition on the interface's major version (`=1`, `<2`, `>1`, `!=1`).
    pub version: Option<IntCond>,
    /// Also match fragments of a request after its first one.
    pub any_frag: bool,
}

/// The DCERPC conditions of a rule ([`super::CompiledRule::dce`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DceCond {
    pub iface: Option<IfaceCond>,
    /// `dcerpc.opnum` ranges (inclusive).
    pub opnums: Option<Vec<(u16, u16)>>,
}

impl DceCond {
    /// Both conditions hold for the transaction.
    pub fn matches(&self, tx: Option<&DceTx>) -> bool {
        let Some(tx) = tx else { return false };
        self.iface.as_ref().is_none_or(|c| c.matches(tx)) && self.opnums.as_ref().is_none_or(|r| opnum_matches(r, tx))
    }
}

/// An interface the server accepted in a bind (result 0), with the context id it is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoundIface {
    pub uuid: [u8; 16],
    pub version: u16,
    pub ctx_id: u16,
}

/// The DCERPC state an inspected transaction carries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DceTx {
    /// The request's operation number (`None` for a bind, or a response whose request is unknown).
    pub opnum: Option<u16>,
    /// The request's presentation context id.
    pub ctx_id: u16,
    /// The request is a first fragment (or not fragmented).
    pub first_frag: bool,
    /// The interfaces the server accepted so far on this connection or pipe.
    pub ifaces: Vec<BoundIface>,
    /// The PDU's data representation is little endian (`byte_test`/`byte_jump` `dce`).
    pub little_endian: bool,
}

/// Parses a UUID `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` into its 16 bytes in textual order.
pub fn parse_uuid(s: &str) -> Result<[u8; 16], String> {
    let parts: Vec<&str> = s.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    if parts.len() != 5 || parts.iter().zip(lens).any(|(p, l)| p.len() != l) {
        return Err(format!("invalid uuid '{s}'"));
    }
    let hex: String = parts.concat();
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(i * 2..i * 2 + 2).unwrap_or(""), 16)
            .map_err(|_| format!("invalid uuid '{s}'"))?;
    }
    Ok(out)
}

/// Parses the value of `dcerpc.iface`.
pub fn parse_iface(v: &str) -> Result<IfaceCond, String> {
    let mut parts = v.split(',').map(str::trim);
    let uuid = parse_uuid(parts.next().unwrap_or(""))?;
    let mut cond = IfaceCond { uuid, version: None, any_frag: false };
    for p in parts {
        if p == "any_frag" {
            if cond.any_frag {
                return Err("any_frag given twice".into());
            }
            cond.any_frag = true;
            continue;
        }
        if cond.version.is_some() {
            return Err(format!("unexpected '{p}' (a version condition was already given)"));
        }
        let c = if let Some(n) = p.strip_prefix("!=") {
            IntCond::Ne(parse_version(n)?)
        } else if let Some(n) = p.strip_prefix('=') {
            IntCond::Eq(parse_version(n)?)
        } else if p.starts_with('<') || p.starts_with('>') {
            IntCond::parse(p, u16::MAX as u64)?
        } else {
            return Err(format!("invalid version condition '{p}' (=, !=, <, > and a number)"));
        };
        cond.version = Some(c);
    }
    Ok(cond)
}

fn parse_version(s: &str) -> Result<u64, String> {
    s.trim().parse::<u16>().map(u64::from).map_err(|_| format!("invalid version '{s}'"))
}

/// Parses the value of `dcerpc.opnum`: numbers and ranges `a-b`, comma-separated.
pub fn parse_opnums(v: &str) -> Result<Vec<(u16, u16)>, String> {
    let mut out = Vec::new();
    for p in v.split(',').map(str::trim) {
        let num = |s: &str| s.trim().parse::<u16>().map_err(|_| format!("invalid opnum '{s}'"));
        let range = match p.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(p)?, num(p)?),
        };
        if range.0 > range.1 {
            return Err(format!("invalid opnum range '{p}'"));
        }
        out.push(range);
    }
    Ok(out)
}

impl IfaceCond {
    /// The request's context is bound to this interface (the version condition holding), and
    /// without `any_frag` the request is a first fragment.
    pub fn matches(&self, tx: &DceTx) -> bool {
        if !self.any_frag && !tx.first_frag {
            return false;
        }
        tx.ifaces.iter().any(|i| {
            i.ctx_id == tx.ctx_id && i.uuid == self.uuid && self.version.is_none_or(|c| c.matches(u64::from(i.version)))
        })
    }
}

/// Whether the transaction's opnum is in one of `ranges`.
pub fn opnum_matches(ranges: &[(u16, u16)], tx: &DceTx) -> bool {
    tx.opnum.is_some_and(|o| ranges.iter().any(|&(a, b)| a <= o && o <= b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: &str = "367abb81-9844-35f1-ad32-98f038001003";

    fn tx(version: u16, first: bool) -> DceTx {
        DceTx {
            opnum: Some(15),
            ctx_id: 1,
            first_frag: first,
            ifaces: vec![BoundIface { uuid: parse_uuid(U).unwrap_or_default(), version, ctx_id: 1 }],
            little_endian: true,
        }
    }

    #[test]
    fn iface_values_parse_with_versions_and_any_frag() {
        let c = parse_iface(&format!("{U},>1,any_frag")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.uuid[0], 0x36);
        assert_eq!(c.version, Some(IntCond::Gt(1)));
        assert!(c.any_frag);
        assert!(parse_iface("not-a-uuid").is_err());
        assert!(parse_iface(&format!("{U},~1")).is_err());
        assert!(parse_iface(&format!("{U},=70000")).is_err());
    }

    #[test]
    fn iface_matches_the_bound_context_version_and_first_fragment() {
        let c = parse_iface(&format!("{U},=2")).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.matches(&tx(2, true)));
        assert!(!c.matches(&tx(1, true)));
        assert!(!c.matches(&tx(2, false)));
        let any = parse_iface(&format!("{U},any_frag")).unwrap_or_else(|e| panic!("{e}"));
        assert!(any.matches(&tx(1, false)));
        let mut other_ctx = tx(1, true);
        other_ctx.ctx_id = 2;
        assert!(!any.matches(&other_ctx));
    }

    fn sids(rules: &str, app: &str, tx: &DceTx, stub: &[u8]) -> Vec<u32> {
        use crate::detect::{AppProto, Buffer, Detector, Direction, Inspection, Transport, Vars};
        use std::net::{IpAddr, Ipv4Addr};
        let (d, errors) = Detector::from_rules(rules, "test.rules", &Vars::default());
        assert!(errors.is_empty(), "{errors:?}");
        let other = [(Buffer::DcerpcStubData, stub)];
        let (c, s) = (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
        let insp = Inspection {
            app_proto: AppProto::from_name(app),
            established: true,
            transaction: true,
            dce: Some(tx),
            other: &other,
            ..Inspection::new(Transport::Tcp, c, 40000, s, 445, Direction::ToServer, &[])
        };
        let mut v: Vec<u32> = d.inspect(&insp).iter().map(|h| h.sid).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn rules_match_dce_transactions_over_tcp_and_smb() {
        let rules = format!(
            "alert tcp any any -> any any (dcerpc.iface:{U}; dcerpc.opnum:15; sid:1;)\n\
             alert dcerpc any any -> any any (dcerpc.iface:{U},>1; sid:2;)\n\
             alert smb any any -> any any (dcerpc.opnum:1-14,16; sid:3;)\n\
             alert tcp any any -> any any (dce_stub_data; content:\"|01|\"; byte_test:2,=,258,0,relative,dce; sid:4;)\n\
             alert tcp any any -> any any (dce_stub_data; content:\"|01|\"; byte_test:2,=,513,0,relative,dce; sid:5;)\n"
        );
        let le = tx(1, true);
        assert_eq!(sids(&rules, "dcerpc", &le, b"\x01\x02\x01"), vec![1, 4]);
        // dcerpc rules match DCERPC over SMB pipes too
        assert_eq!(sids(&rules, "smb", &tx(2, true), b""), vec![1, 2]);
        let be = DceTx { little_endian: false, ..tx(1, true) };
        assert_eq!(sids(&rules, "dcerpc", &be, b"\x01\x02\x01"), vec![1, 5]);
        // dce cannot be combined with an explicit byte order or string
        let (_, errors) = crate::detect::Detector::from_rules(
            "alert tcp any any -> any any (content:\"a\"; byte_test:2,=,1,0,big,dce; sid:9;)",
            "t.rules",
            &crate::detect::Vars::default(),
        );
        assert_eq!(errors.len(), 1);
    }

    #[test]
    fn opnum_lists_and_ranges() {
        let r = parse_opnums("1, 5-7,15").unwrap_or_default();
        assert_eq!(r, vec![(1, 1), (5, 7), (15, 15)]);
        assert!(opnum_matches(&r, &tx(1, true)));
        assert!(!opnum_matches(&[(16, 20)], &tx(1, true)));
        assert!(parse_opnums("7-5").is_err());
        assert!(parse_opnums("x").is_err());
    }
}
