//! Command-line interface: every flag documented in `--help`.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Canh Gác: an open security operations center. Sensors watch networks, collectors gather
/// logs, the correlator detects and stores, the dashboard serves analysts, the forwarder
/// shares incidents with the national centre (NCSC).
#[derive(Debug, Parser)]
#[command(name = "soc", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// Log format on stderr: `text` or `json`. Filter with the SOC_LOG environment variable
    /// (e.g. `SOC_LOG=soc_sensor=debug,info`).
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// More log detail (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run everything in one process: sensor, collector, correlator and API, with an
    /// in-process bus and an embedded SQLite store. No server to install.
    Run(RunArgs),
    /// Network sensor: decode packets (pcap file or live interface), track flows, parse
    /// HTTP/DNS/TLS, write EVE JSON or publish to Kafka.
    Sensor(SensorArgs),
    /// Log collector: syslog over UDP/TCP and JSON over HTTP, normalized and published to Kafka.
    Collector(DaemonArgs),
    /// Correlator: consume Kafka, detect, store in ClickHouse (or SQLite), commit after storing.
    Correlator(DaemonArgs),
    /// Dashboard: the HTTP API over the store.
    Dashboard(DaemonArgs),
    /// NCSC forwarder: incidents as STIX 2.1 over TAXII 2.1, through a durable outbox, every
    /// send recorded; `approve` and `status` for analysts.
    Forwarder(crate::forwarder_cmd::ForwarderArgs),
    /// Rule tools: check Suricata and Sigma rule files; test Suricata rules over a capture.
    Rules(RulesArgs),
    /// Offline Sigma detection: rules over JSON event files, one JSON line per detection,
    /// counts per rule printed.
    Detect(crate::detect_cmd::DetectArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Read packets from this pcap or pcapng file (`.zst`-compressed files too). Repeatable.
    #[arg(long, value_name = "FILE")]
    pub pcap: Vec<PathBuf>,
    /// Capture live on this interface (needs CAP_NET_RAW). Repeatable.
    #[arg(long, value_name = "IF")]
    pub interface: Vec<String>,
    /// Generate demo traffic and logs (DNS, HTTP with a few attacks, TLS, syslog, Windows
    /// process events) on two segments, `ministry` and `cpnet`.
    #[arg(long)]
    pub demo: bool,
    /// Run this many seconds, then flush everything, print a summary and exit 0.
    /// Without it, run until Ctrl-C (then do the same).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Address of the API (and, later, the web UI).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Where the embedded store keeps its data (created if missing).
    #[arg(long, default_value = "./soc-data", value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Segment name given to records from --pcap and --interface.
    #[arg(long, default_value = "ministry", value_name = "NAME")]
    pub segment: String,
    /// Sensor name given to records from --pcap and --interface.
    #[arg(long, default_value = "soc-run", value_name = "NAME")]
    pub sensor_name: String,
    /// Address of the syslog listener (UDP and TCP).
    #[arg(long, default_value = "127.0.0.1:5514", value_name = "ADDR")]
    pub syslog: SocketAddr,
    /// Do not listen for syslog.
    #[arg(long)]
    pub no_syslog: bool,
    /// Do not validate IP/TCP/UDP checksums (like `suricata -k none`). By default they are
    /// validated unless over 10% of the first 1,000 packets are bad (checksum offloading), as
    /// Suricata's `auto` mode does.
    #[arg(long)]
    pub no_checksum_check: bool,
    /// Keep this many days of records; older days are dropped hourly.
    #[arg(long, default_value_t = 30, value_name = "DAYS")]
    pub retention_days: u32,
    /// Suricata rule files or directories for the sensor (default: the project's rules built
    /// into the binary). Repeatable. SIGHUP reloads them without stopping the capture (see
    /// `soc sensor --help`).
    #[arg(long, value_name = "PATH")]
    pub rules: Vec<PathBuf>,
    /// Parse the application layer of TCP sessions whose start was not seen (already open
    /// when the capture started), like Suricata's `stream.midstream: true`.
    #[arg(long)]
    pub midstream: bool,
    /// Sigma rule files or directories for the correlator (default: the project's rules built
    /// into the binary). Repeatable.
    #[arg(long, value_name = "PATH")]
    pub sigma: Vec<PathBuf>,
    /// A classification.config (Suricata format) added to the built-in table.
    #[arg(long, value_name = "FILE")]
    pub classification_config: Option<PathBuf>,
    /// Records the in-process bus holds per topic before producers wait.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub bus_capacity: usize,
    /// MaxMind-format City or Country database for GeoIP enrichment of public addresses
    /// (GeoLite2-City.mmdb, DB-IP city lite, ...).
    #[arg(long, value_name = "FILE")]
    pub geoip_location: Option<PathBuf>,
    /// MaxMind-format ASN database (GeoLite2-ASN.mmdb, ...).
    #[arg(long, value_name = "FILE")]
    pub geoip_asn: Option<PathBuf>,
    /// IOC list files or directories (ip*.txt, cidr*, domain*, url*, hash*; or `type:value`
    /// lines); matches become detections; reloaded when they change. Repeatable.
    #[arg(long, value_name = "PATH")]
    pub ioc: Vec<PathBuf>,
    /// Forward incidents to the NCSC: the TAXII 2.1 collection's objects URL
    /// (`https://host/api-root/collections/<id>/objects/`). Credentials come from the
    /// SOC_NCSC_USER and SOC_NCSC_PASSWORD environment variables; the outbox is kept in the
    /// data dir. Incidents of severity low and above are sent, redacted.
    #[arg(long, value_name = "URL")]
    pub ncsc_url: Option<String>,
    /// A TAXII 2.1 collection's objects URL where the NCSC publishes indicators: polled every
    /// minute (same credentials), written as IOC lists in the data dir and matched by the
    /// correlator like `--ioc` lists.
    #[arg(long, value_name = "URL")]
    pub ncsc_indicators: Option<String>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SensorArgs {
    #[command(subcommand)]
    pub command: Option<SensorCommand>,
    /// Sensor configuration file (TOML; see deploy/config/sensor-*.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Read this pcap/pcapng file (also `.zst`), write records and exit, like `suricata -r`.
    /// `-` reads an uncompressed pcap/pcapng stream from standard input as it arrives
    /// (`tcpdump -w - | soc sensor --pcap - ...`).
    #[arg(long, value_name = "FILE", conflicts_with = "interface")]
    pub pcap: Option<PathBuf>,
    /// Capture live on this interface (overrides the config's interfaces).
    #[arg(long, value_name = "IF")]
    pub interface: Vec<String>,
    /// Write EVE JSON lines to this file (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub eve: Option<PathBuf>,
    /// Do not validate checksums (like `suricata -k none`). By default they are validated
    /// unless over 10% of the first 1,000 packets are bad (checksum offloading).
    #[arg(long)]
    pub no_checksum_check: bool,
    /// Segment name for the records (overrides the config).
    #[arg(long, value_name = "NAME")]
    pub segment: Option<String>,
    /// Sensor name for the records (overrides the config).
    #[arg(long, value_name = "NAME")]
    pub sensor_name: Option<String>,
    /// Suricata rule files or directories (overrides the config's `rules`; without either,
    /// no signatures are inspected). Repeatable. On SIGHUP the files are read again and
    /// compiled in the background; the new set replaces the running one between two packets,
    /// flows and their detection state (flowbits, flowints, xbits, thresholds) kept. A new set
    /// that rejects more rules than the running one, or whose files cannot be read, is refused
    /// and the running set stays (logged; metric `soc_sensor_rule_reloads_total{result}`).
    #[arg(long, value_name = "PATH")]
    pub rules: Vec<PathBuf>,
    /// A classification.config (Suricata format) added to the built-in table.
    #[arg(long, value_name = "FILE")]
    pub classification_config: Option<PathBuf>,
    /// Parse the application layer (HTTP, DNS, TLS) of TCP sessions whose start was not seen,
    /// such as sessions already open when the capture started (Suricata's
    /// `stream.midstream: true`; config: `[sensor] midstream = true`). Without it, only
    /// their flow records are written.
    #[arg(long)]
    pub midstream: bool,
    /// Worker threads for --pcap: frames are hashed by flow (IP pair) to workers, each with
    /// its own flow table. 1 processes in the reading thread.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub workers: u16,
    /// Capture filter in BPF syntax, e.g. `"not port 22"` or `"host 10.0.0.1 and tcp"`
    /// (a subset: host, net, port, portrange, src/dst, protocols, and/or/not, parentheses;
    /// anything else is refused at start-up). Overrides the config's `[sensor] bpf`.
    #[arg(long, value_name = "EXPR")]
    pub bpf: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SensorCommand {
    /// Validate a sensor configuration file and exit (0 = valid).
    CheckConfig {
        /// The TOML file.
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DaemonArgs {
    #[command(subcommand)]
    pub command: Option<DaemonCommand>,
    /// Configuration file (TOML; examples in deploy/config/).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum DaemonCommand {
    /// Validate a configuration file and exit (0 = valid).
    CheckConfig {
        /// The TOML file.
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct RulesArgs {
    #[command(subcommand)]
    pub command: RulesCommand,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Check Suricata (.rules) and Sigma (.yml) rule files: loaded, rejected with reasons.
    Check {
        /// Output format: `text` or `json`.
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        format: String,
        /// A classification.config (Suricata format) added to the built-in table.
        #[arg(long, value_name = "FILE")]
        classification_config: Option<PathBuf>,
        /// Rule files or directories.
        paths: Vec<PathBuf>,
    },
    /// Run Suricata rules over a capture and compare the alerts with expectations, like a
    /// suricata-verify check: prints sid, expected, got and ok/FAIL per sid; exit 0 when every
    /// check holds, 1 when one fails, 2 when the expectations file is malformed.
    ///
    /// The expectations file has one `SID COUNT` per line: COUNT alerts exactly, or
    /// `>=COUNT` for at least COUNT; `#` starts a comment; blank lines are ignored. A sid that
    /// alerts but is not listed fails (it is expected 0 times), so list every sid that should
    /// alert. `--write-expect` writes the current result in this format.
    Test(RulesTestArgs),
}

#[derive(Debug, Args)]
pub struct RulesTestArgs {
    /// Suricata rule files or directories (`*.rules`). Repeatable. A rule directory's
    /// classification.config and threshold.config are used, as by the sensor.
    #[arg(long, value_name = "PATH", required = true)]
    pub rules: Vec<PathBuf>,
    /// The capture to run them over (pcap or pcapng, also `.zst` or `.gz`; `-` for standard
    /// input).
    #[arg(long, value_name = "FILE")]
    pub pcap: PathBuf,
    /// The expectations file (`SID COUNT` lines; see above).
    #[arg(long, value_name = "FILE")]
    pub expect: PathBuf,
    /// Write the alerts of this run to the --expect file (replacing it) instead of comparing,
    /// one `SID COUNT` line per sid with its message as a comment; review it before keeping.
    #[arg(long)]
    pub write_expect: bool,
    /// Output format: `text` (a table) or `json`.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    /// A classification.config (Suricata format) added to the built-in table.
    #[arg(long, value_name = "FILE")]
    pub classification_config: Option<PathBuf>,
    /// Do not validate checksums (like `suricata -k none`); by default they are validated
    /// unless over 10% of the first 1,000 packets are bad, as `soc sensor` does.
    #[arg(long)]
    pub no_checksum_check: bool,
    /// Parse the application layer of TCP sessions whose start is not in the capture (see
    /// `soc sensor --midstream`).
    #[arg(long)]
    pub midstream: bool,
}

pub async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(a) => crate::run::run(a).await,
        Command::Sensor(a) => crate::components::sensor(a).await,
        Command::Collector(a) => crate::components::collector(a).await,
        Command::Correlator(a) => crate::components::correlator(a).await,
        Command::Dashboard(a) => crate::components::dashboard(a).await,
        Command::Forwarder(a) => crate::forwarder_cmd::forwarder(a).await,
        Command::Detect(a) => crate::detect_cmd::detect(a),
        Command::Rules(RulesArgs { command: RulesCommand::Check { format, classification_config, paths } }) => {
            crate::rules::check(&paths, &format, classification_config.as_deref())
        }
        Command::Rules(RulesArgs { command: RulesCommand::Test(a) }) => crate::rules_test::test(&a),
    }
}
