//! Analyst search over the events table: a filter expression (fields of the envelope or of
//! the JSON payloads, compared with `=`, `!=`, `<`, `<=`, `>`, `>=` or a `*` wildcard,
//! combined with AND/OR/NOT) on top of an [`EventQuery`] (time range, data scope, limit),
//! returning records or counts grouped by a field.
//!
//! The query language itself (text -> [`Expr`]) lives with the dashboard; this module turns
//! the expression into SQL for both backends. Values and JSON paths are always bound
//! parameters; only column names from a fixed list and operators are written into the SQL.

use crate::filter::{self, Dialect, Param, Where};
use crate::{EventQuery, Store, StoreError};
use soc_model::{Event, EventType, Timestamp};

/// Envelope columns of the events table that a search can name directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    Id,
    EventType,
    Sensor,
    Segment,
    Host,
    SrcIp,
    SrcPort,
    DestIp,
    DestPort,
    Proto,
    FlowId,
    CommunityId,
}

impl Column {
    const ALL: [(&'static str, Column); 12] = [
        ("id", Column::Id),
        ("event_type", Column::EventType),
        ("sensor", Column::Sensor),
        ("segment", Column::Segment),
        ("host", Column::Host),
        ("src_ip", Column::SrcIp),
        ("src_port", Column::SrcPort),
        ("dest_ip", Column::DestIp),
        ("dest_port", Column::DestPort),
        ("proto", Column::Proto),
        ("flow_id", Column::FlowId),
        ("community_id", Column::CommunityId),
    ];

    pub fn name(self) -> &'static str {
        Column::ALL.iter().find(|(_, c)| *c == self).map(|(n, _)| *n).unwrap_or("id")
    }

    fn is_integer(self) -> bool {
        matches!(self, Column::SrcPort | Column::DestPort | Column::FlowId)
    }
}

/// One step of a path into the record's JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathStep {
    Key(String),
    /// Array index, 0-based.
    Index(u32),
}

/// Something a search compares: a column, `ip` (source or destination), or a JSON path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Field {
    Column(Column),
    /// `src_ip` or `dest_ip`.
    AnyIp,
    Json(Vec<PathStep>),
}

/// Aliases for fields that sit inside arrays in EVE (DNS version 3 keeps names in `queries`).
const ALIASES: &[(&str, &str)] = &[
    ("dns.rrname", "dns.queries.0.rrname"),
    ("dns.rrtype", "dns.queries.0.rrtype"),
    ("signature", "alert.signature"),
    ("signature_id", "alert.signature_id"),
    ("rule_id", "detection.rule_id"),
    ("rule_title", "detection.rule_title"),
];

/// Longest field name accepted.
const MAX_FIELD_LEN: usize = 128;

impl Field {
    /// Parses a field name: an envelope column (`src_ip`, `event_type`, ...), `ip`, or a
    /// dotted path into the JSON (`dns.rrname`, `http.hostname`, `log.fields.EventID`,
    /// `dns.queries.0.rrname`). Names are ASCII letters, digits, `_`, `-` and dots.
    pub fn parse(name: &str) -> Result<Field, String> {
        if name.is_empty() || name.len() > MAX_FIELD_LEN {
            return Err(format!("field name must be 1..={MAX_FIELD_LEN} characters"));
        }
        if name == "ip" {
            return Ok(Field::AnyIp);
        }
        if let Some((_, c)) = Column::ALL.iter().find(|(n, _)| *n == name) {
            return Ok(Field::Column(*c));
        }
        let path = ALIASES.iter().find(|(a, _)| *a == name).map(|(_, p)| *p).unwrap_or(name);
        let mut steps = Vec::new();
        for part in path.split('.') {
            if part.is_empty() || !part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                return Err(format!("field {name:?}: expected letters, digits, '_' or '-' between dots"));
            }
            match part.parse::<u32>() {
                Ok(i) if !steps.is_empty() => steps.push(PathStep::Index(i)),
                _ => steps.push(PathStep::Key(part.to_string())),
            }
        }
        Ok(Field::Json(steps))
    }
}

/// Comparison operators. `Eq` with a value containing `*` is a wildcard match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A filter expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Cmp { field: Field, op: Op, value: String },
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
}

/// What a counting search groups by.
#[derive(Clone, Debug, PartialEq)]
pub enum GroupBy {
    Field(Field),
    /// Start of fixed time buckets of this many microseconds (as decimal microseconds).
    TimeBucket {
        micros: i64,
    },
}

/// A search: `base` gives the time range, data scope (`segments`), other envelope filters,
/// limit and order; `filter` narrows further; with `count_by` the result is counts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchQuery {
    pub base: EventQuery,
    pub filter: Option<Expr>,
    pub count_by: Option<GroupBy>,
}

/// Records (newest first unless the base asks otherwise) or counts (largest first, at most
/// `limit` groups).
#[derive(Clone, Debug, PartialEq)]
pub enum SearchResult {
    Events(Vec<Event>),
    Counts(Vec<(String, u64)>),
}

/// Deepest nesting of an expression accepted (a guard against hostile input).
pub const MAX_DEPTH: usize = 32;
/// Most comparisons in one expression.
pub const MAX_TERMS: usize = 64;

/// A compiled statement.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub sql: String,
    pub params: Vec<Param>,
    pub counts: bool,
}

/// Compiles `q` into one `SELECT` for `dialect`: `SELECT json ...` or
/// `SELECT k, c ...` (string key, count).
pub(crate) fn compile(q: &SearchQuery, dialect: Dialect) -> Result<Compiled, StoreError> {
    let mut params = Vec::new();
    let table = match dialect {
        Dialect::Sqlite => "events",
        Dialect::ClickHouse => "events FINAL",
    };
    let select = match &q.count_by {
        None => "json".to_string(),
        Some(g) => format!("{} AS k, count(*) AS c", group_expr(g, dialect, &mut params)?),
    };
    let (where_sql, wp) = compile_where(q, dialect)?;
    params.extend(wp);
    let limit = q.base.effective_limit();
    let sql = match &q.count_by {
        None => format!(
            "SELECT {select} FROM {table} WHERE {where_sql} ORDER BY {} LIMIT {limit}",
            filter::order_by(&q.base)
        ),
        Some(_) => {
            format!("SELECT {select} FROM {table} WHERE {where_sql} GROUP BY k ORDER BY c DESC, k ASC LIMIT {limit}")
        }
    };
    Ok(Compiled { sql, params, counts: q.count_by.is_some() })
}

/// The `WHERE` clause of a search (base filters and the expression) and its parameters.
pub(crate) fn compile_where(q: &SearchQuery, dialect: Dialect) -> Result<(String, Vec<Param>), StoreError> {
    let base = filter::build(&q.base, dialect);
    let mut params = base.params;
    let mut where_sql = base.sql;
    if let Some(e) = &q.filter {
        let mut terms = 0;
        let s = expr_sql(e, dialect, &mut params, 0, &mut terms)?;
        where_sql = format!("{where_sql} AND ({s})");
    }
    Ok((where_sql, params))
}

/// The clause of a search in two parts (see [`filter::build_split`]): the coarse base
/// conditions, and the per-row ones with the expression (empty `sql` when nothing).
pub(crate) fn compile_where_split(q: &SearchQuery, dialect: Dialect) -> Result<(Where, Where), StoreError> {
    let (coarse, mut fine) = filter::build_split(&q.base, dialect);
    if let Some(e) = &q.filter {
        let mut terms = 0;
        let s = expr_sql(e, dialect, &mut fine.params, 0, &mut terms)?;
        fine.sql = if fine.sql.is_empty() { format!("({s})") } else { format!("{} AND ({s})", fine.sql) };
    }
    Ok((coarse, fine))
}

fn group_expr(g: &GroupBy, dialect: Dialect, params: &mut Vec<Param>) -> Result<String, StoreError> {
    match g {
        GroupBy::TimeBucket { micros } => {
            if *micros <= 0 {
                return Err(StoreError::Invalid("time bucket must be positive".into()));
            }
            Ok(match dialect {
                Dialect::Sqlite => format!("CAST((ts_us / {micros}) * {micros} AS TEXT)"),
                Dialect::ClickHouse => format!("toString(intDiv(ts_us, {micros}) * {micros})"),
            })
        }
        GroupBy::Field(Field::AnyIp) => Err(StoreError::Invalid("cannot count by ip (use src_ip or dest_ip)".into())),
        GroupBy::Field(f) => {
            let v = value_expr(f, dialect, params)?;
            Ok(match dialect {
                Dialect::Sqlite => format!("COALESCE(CAST({v} AS TEXT), '')"),
                Dialect::ClickHouse => format!("ifNull(toString({v}), '')"),
            })
        }
    }
}

/// The SQL expression of a field's value (text for JSON paths; the column otherwise).
///
/// ClickHouse: only the `visitParam*` functions are used (every server version has them):
/// the path is walked key by key on the raw JSON text, each key found at its first
/// occurrence inside the value of the previous one; array index 0 is the first occurrence
/// (other indices are refused).
pub(crate) fn value_expr(f: &Field, dialect: Dialect, params: &mut Vec<Param>) -> Result<String, StoreError> {
    Ok(match f {
        Field::Column(c) => c.name().to_string(),
        Field::AnyIp => "src_ip".into(),
        Field::Json(steps) => match dialect {
            Dialect::Sqlite => {
                let mut path = String::from("$");
                for s in steps {
                    match s {
                        PathStep::Key(k) => {
                            path.push_str(".\"");
                            path.push_str(k);
                            path.push('"');
                        }
                        PathStep::Index(i) => path.push_str(&format!("[{i}]")),
                    }
                }
                params.push(Param::Str(path));
                "json_extract(json, ?)".into()
            }
            Dialect::ClickHouse => {
                let mut keys = Vec::new();
                for s in steps {
                    match s {
                        PathStep::Key(k) => keys.push(k.clone()),
                        PathStep::Index(0) => {}
                        PathStep::Index(i) => {
                            return Err(StoreError::Invalid(format!(
                                "array index {i}: only the first element (0) can be searched on ClickHouse"
                            )));
                        }
                    }
                }
                let Some((leaf, parents)) = keys.split_last() else {
                    return Err(StoreError::Invalid("empty field path".into()));
                };
                let mut parent = "json".to_string();
                let mut parent_params = Vec::new();
                for k in parents {
                    parent = format!("visitParamExtractRaw({parent}, ?)");
                    parent_params.push(Param::Str(k.clone()));
                }
                // Strings unquoted and unescaped, numbers and booleans as written, NULL if absent.
                for _ in 0..4 {
                    params.extend(parent_params.iter().cloned());
                    params.push(Param::Str(leaf.clone()));
                }
                format!(
                    "if(visitParamHas({parent}, ?), if(substring(visitParamExtractRaw({parent}, ?), 1, 1) = '\"', \
                     visitParamExtractString({parent}, ?), visitParamExtractRaw({parent}, ?)), NULL)"
                )
            }
        },
    })
}

/// Escapes `%`, `_` and `\` and turns `*` into `%`.
fn like_pattern(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' => out.push('%'),
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

fn expr_sql(
    e: &Expr,
    dialect: Dialect,
    params: &mut Vec<Param>,
    depth: usize,
    terms: &mut usize,
) -> Result<String, StoreError> {
    if depth > MAX_DEPTH {
        return Err(StoreError::Invalid(format!("search expression nested deeper than {MAX_DEPTH}")));
    }
    match e {
        Expr::And(v) | Expr::Or(v) => {
            if v.is_empty() {
                return Ok(if matches!(e, Expr::And(_)) { "1 = 1".into() } else { "1 = 0".into() });
            }
            let joiner = if matches!(e, Expr::And(_)) { " AND " } else { " OR " };
            let mut parts = Vec::with_capacity(v.len());
            for x in v {
                parts.push(format!("({})", expr_sql(x, dialect, params, depth + 1, terms)?));
            }
            Ok(parts.join(joiner))
        }
        Expr::Not(x) => {
            // A missing field compares as NULL; NOT of it must still be true.
            let inner = expr_sql(x, dialect, params, depth + 1, terms)?;
            Ok(match dialect {
                Dialect::Sqlite => format!("NOT IFNULL(({inner}), 0)"),
                Dialect::ClickHouse => format!("NOT ifNull(({inner}), 0)"),
            })
        }
        Expr::Cmp { field, op, value } => {
            *terms += 1;
            if *terms > MAX_TERMS {
                return Err(StoreError::Invalid(format!("search has more than {MAX_TERMS} comparisons")));
            }
            if let Field::AnyIp = field {
                let a = cmp_sql(&Field::Column(Column::SrcIp), *op, value, dialect, params)?;
                let b = cmp_sql(&Field::Column(Column::DestIp), *op, value, dialect, params)?;
                return Ok(match op {
                    Op::Ne => format!("({a}) AND ({b})"),
                    _ => format!("({a}) OR ({b})"),
                });
            }
            cmp_sql(field, *op, value, dialect, params)
        }
    }
}

fn cmp_sql(
    field: &Field,
    op: Op,
    value: &str,
    dialect: Dialect,
    params: &mut Vec<Param>,
) -> Result<String, StoreError> {
    let wildcard = value.contains('*');
    let integer_col = matches!(field, Field::Column(c) if c.is_integer());
    let v = value_expr(field, dialect, params)?;
    let sym = match op {
        Op::Eq => "=",
        Op::Ne => "!=",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Gt => ">",
        Op::Ge => ">=",
    };
    if wildcard && matches!(op, Op::Eq | Op::Ne) {
        let not = if op == Op::Ne { "NOT " } else { "" };
        params.push(Param::Str(like_pattern(value)));
        return Ok(match dialect {
            Dialect::Sqlite => format!("CAST({v} AS TEXT) {not}LIKE ? ESCAPE '\\'"),
            // Case-insensitive like SQLite's LIKE for ASCII.
            Dialect::ClickHouse => format!("lower(toString({v})) {not}LIKE lower(?)"),
        });
    }
    if wildcard {
        return Err(StoreError::Invalid("wildcards only work with ':' or '!='".into()));
    }
    let ordering = !matches!(op, Op::Eq | Op::Ne);
    if integer_col || ordering {
        let is_flow = matches!(field, Field::Column(Column::FlowId));
        // Flow ids are u64; SQLite stores them bit-cast to i64.
        let n: i64 = match value.parse::<i64>() {
            Ok(n) => n,
            Err(_) => match value.parse::<u64>() {
                Ok(u) if is_flow => u as i64,
                _ => return Err(StoreError::Invalid(format!("{value:?} is not an integer"))),
            },
        };
        match (field, dialect) {
            (Field::Column(Column::FlowId), Dialect::ClickHouse) => {
                params.push(Param::U64(n as u64));
                Ok(format!("{v} {sym} ?"))
            }
            (Field::Column(_), _) => {
                params.push(Param::I64(n));
                Ok(format!("{v} {sym} ?"))
            }
            (_, Dialect::Sqlite) => {
                params.push(Param::I64(n));
                Ok(format!("CAST({v} AS INTEGER) {sym} ?"))
            }
            (_, Dialect::ClickHouse) => {
                params.push(Param::I64(n));
                Ok(format!("toInt64OrNull(toString({v})) {sym} ?"))
            }
        }
    } else {
        params.push(Param::Str(value.to_string()));
        Ok(match (field, dialect) {
            (Field::Column(_), _) => format!("{v} {sym} ?"),
            (_, Dialect::Sqlite) => format!("CAST({v} AS TEXT) {sym} ?"),
            (_, Dialect::ClickHouse) => format!("{v} {sym} ?"),
        })
    }
}

/// Search cases both backends must pass (called from [`crate::conformance::run_all`]).
pub async fn conformance(store: &dyn Store) {
    let t0 = 1_800_000_000_000_000i64;
    let mut evs = Vec::new();
    let mk = |i: i64, ty: EventType, seg: &str, src: &str, port: u16| {
        let mut e = Event::new(ty, Timestamp::from_unix_micros(t0 + i * 1_000_000));
        e.segment = Some(seg.into());
        e.sensor = Some("search-sensor".into());
        e.src_ip = Some(src.into());
        e.dest_ip = Some("10.9.9.9".into());
        e.dest_port = Some(port);
        e.flow_id = Some(9_000 + i as u64);
        e
    };
    for (i, name) in ["a.example.org", "b.example.org", "example.org", "evil.test"].iter().enumerate() {
        let mut e = mk(i as i64, EventType::Dns, if i % 2 == 0 { "cpnet" } else { "ministry" }, "10.1.2.3", 53);
        e.dns = Some(soc_model::Dns {
            queries: vec![soc_model::DnsQuery { rrname: Some((*name).into()), ..Default::default() }],
            ..Default::default()
        });
        e.ensure_id();
        evs.push(e);
    }
    let mut h = mk(10, EventType::Http, "cpnet", "10.1.2.4", 80);
    h.http =
        Some(soc_model::Http { hostname: Some("www.example.org".into()), status: Some(404), ..Default::default() });
    h.ensure_id();
    evs.push(h.clone());
    store.insert_events(&evs).await.expect("insert search events");
    // Other conformance cases may share the time range: stay on this sensor.
    let range = |q: EventQuery| EventQuery {
        sensor: Some("search-sensor".into()),
        newest_first: true,
        since: Some(Timestamp::from_unix_micros(t0)),
        until: Some(Timestamp::from_unix_micros(t0 + 3_600_000_000)),
        ..q
    };
    let cmp = |f: &str, op: Op, v: &str| Expr::Cmp { field: Field::parse(f).expect("field"), op, value: v.into() };
    let run = |filter: Expr, base: EventQuery| {
        let q = SearchQuery { base: range(base), filter: Some(filter), count_by: None };
        async move {
            match store.search(&q).await.expect("search") {
                SearchResult::Events(v) => v,
                other => panic!("want events, got {other:?}"),
            }
        }
    };
    // Wildcard into the DNS payload, AND with envelope fields.
    let v = run(
        Expr::And(vec![
            cmp("src_ip", Op::Eq, "10.1.2.3"),
            cmp("event_type", Op::Eq, "dns"),
            cmp("dns.rrname", Op::Eq, "*.example.org"),
        ]),
        EventQuery::default(),
    )
    .await;
    let names: Vec<_> = v.iter().filter_map(|e| e.dns.as_ref()?.queries.first()?.rrname.clone()).collect::<Vec<_>>();
    assert_eq!(names, vec!["b.example.org".to_string(), "a.example.org".to_string()], "newest first");
    // The data scope applies.
    let v = run(
        cmp("dns.rrname", Op::Eq, "*example.org"),
        EventQuery { segments: Some(vec!["cpnet".into()]), ..Default::default() },
    )
    .await;
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(v.iter().all(|e| e.segment.as_deref() == Some("cpnet")));
    // NOT over a missing field is true; numbers in payloads compare as numbers.
    let v = run(Expr::Not(Box::new(cmp("dns.rrname", Op::Eq, "*example*"))), EventQuery::default()).await;
    let ids: Vec<_> = v.iter().map(|e| e.event_type.as_str().to_string()).collect();
    assert_eq!(ids, vec!["http".to_string(), "dns".to_string()], "{v:?}");
    let v = run(cmp("http.status", Op::Ge, "400"), EventQuery::default()).await;
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].id, h.id);
    let v =
        run(Expr::Or(vec![cmp("ip", Op::Eq, "10.1.2.4"), cmp("dest_port", Op::Eq, "80")]), EventQuery::default()).await;
    assert_eq!(v.len(), 1);
    // Hostile values stay values.
    let v = run(cmp("host", Op::Eq, "x' OR '1'='1"), EventQuery::default()).await;
    assert!(v.is_empty());
    let v = run(cmp("dns.rrname", Op::Eq, "%"), EventQuery::default()).await;
    assert!(v.is_empty(), "% is literal, not a wildcard");
    // Counting.
    let q = SearchQuery {
        base: range(EventQuery { sensor: Some("search-sensor".into()), ..Default::default() }),
        filter: None,
        count_by: Some(GroupBy::Field(Field::parse("event_type").expect("field"))),
    };
    match store.search(&q).await.expect("count search") {
        SearchResult::Counts(c) => assert_eq!(c, vec![("dns".to_string(), 4), ("http".to_string(), 1)]),
        other => panic!("want counts, got {other:?}"),
    }
    let q = SearchQuery {
        base: range(EventQuery { sensor: Some("search-sensor".into()), ..Default::default() }),
        filter: Some(cmp("event_type", Op::Eq, "dns")),
        count_by: Some(GroupBy::Field(Field::parse("dns.rrname").expect("field"))),
    };
    match store.search(&q).await.expect("count search") {
        SearchResult::Counts(c) => assert_eq!(c.len(), 4, "{c:?}"),
        other => panic!("want counts, got {other:?}"),
    }
    let q = SearchQuery {
        base: range(EventQuery { sensor: Some("search-sensor".into()), ..Default::default() }),
        filter: None,
        count_by: Some(GroupBy::TimeBucket { micros: 3_600_000_000 }),
    };
    match store.search(&q).await.expect("bucket search") {
        SearchResult::Counts(c) => {
            assert_eq!(c.iter().map(|(_, n)| n).sum::<u64>(), 5, "{c:?}");
        }
        other => panic!("want counts, got {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_are_validated_and_aliased() {
        assert_eq!(Field::parse("src_ip"), Ok(Field::Column(Column::SrcIp)));
        assert_eq!(Field::parse("ip"), Ok(Field::AnyIp));
        assert_eq!(
            Field::parse("dns.rrname"),
            Ok(Field::Json(vec![
                PathStep::Key("dns".into()),
                PathStep::Key("queries".into()),
                PathStep::Index(0),
                PathStep::Key("rrname".into())
            ]))
        );
        assert!(Field::parse("a..b").is_err());
        assert!(Field::parse("a'b").is_err());
        assert!(Field::parse("").is_err());
    }

    #[test]
    fn values_and_paths_are_parameters_in_both_dialects() {
        let q = SearchQuery {
            filter: Some(Expr::And(vec![
                Expr::Cmp { field: Field::parse("http.url").unwrap(), op: Op::Eq, value: "x' OR 1=1 --".into() },
                Expr::Not(Box::new(Expr::Cmp { field: Field::AnyIp, op: Op::Eq, value: "10.*".into() })),
                Expr::Cmp { field: Field::parse("src_port").unwrap(), op: Op::Gt, value: "1024".into() },
            ])),
            count_by: Some(GroupBy::Field(Field::parse("dns.rrname").unwrap())),
            ..Default::default()
        };
        for d in [Dialect::Sqlite, Dialect::ClickHouse] {
            let c = compile(&q, d).unwrap();
            assert!(!c.sql.contains("OR 1=1"), "{}", c.sql);
            assert!(!c.sql.contains("http"), "{}", c.sql);
            assert_eq!(c.sql.matches('?').count(), c.params.len(), "{d:?}: {}", c.sql);
        }
    }

    #[test]
    fn non_integer_in_an_ordering_comparison_is_invalid() {
        let q = SearchQuery {
            filter: Some(Expr::Cmp { field: Field::parse("dest_port").unwrap(), op: Op::Gt, value: "many".into() }),
            ..Default::default()
        };
        assert!(matches!(compile(&q, Dialect::Sqlite), Err(StoreError::Invalid(_))));
    }

    #[test]
    fn clickhouse_refuses_array_indices_it_cannot_follow() {
        let q = |f: &str| SearchQuery {
            filter: Some(Expr::Cmp { field: Field::parse(f).unwrap(), op: Op::Eq, value: "x".into() }),
            ..Default::default()
        };
        assert!(compile(&q("dns.queries.0.rrname"), Dialect::ClickHouse).is_ok());
        assert!(matches!(compile(&q("dns.queries.1.rrname"), Dialect::ClickHouse), Err(StoreError::Invalid(_))));
        assert!(compile(&q("dns.queries.1.rrname"), Dialect::Sqlite).is_ok());
    }

    #[test]
    fn too_deep_expressions_are_refused() {
        let mut e = Expr::Cmp { field: Field::AnyIp, op: Op::Eq, value: "1".into() };
        for _ in 0..(MAX_DEPTH + 2) {
            e = Expr::Not(Box::new(e));
        }
        let q = SearchQuery { filter: Some(e), ..Default::default() };
        assert!(matches!(compile(&q, Dialect::Sqlite), Err(StoreError::Invalid(_))));
    }
}
