//! Interoperability with real clients: util-linux `logger` over UDP and TCP (newline and
//! octet-counting framing, RFC 3164 and RFC 5424), syslog over TLS with a certificate made in
//! the test (rustls client, client certificates required, `openssl s_client`, and rsyslog
//! forwarding with its GnuTLS driver). Tests that need a missing tool skip with a visible line
//! (rsyslog's fails instead under `SOC_REQUIRE_SERVERS=1`: `deploy/test.sh` installs it).

mod common;

use common::{bus, collect, ctx, local};
use soc_collector::config::{CollectorConfig, SyslogTcpConfig, SyslogTlsConfig, SyslogUdpConfig};
use soc_collector::source::syslog_tcp::SyslogTcpSource;
use soc_collector::source::syslog_udp::SyslogUdpSource;
use soc_collector::{Collector, tls};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok() || Command::new(tool).arg("version").output().is_ok()
}

fn logger(args: &[&str]) {
    let st = Command::new("logger").args(args).status().unwrap();
    assert!(st.success(), "logger {args:?}: {st}");
}

#[tokio::test]
async fn logger_over_udp_and_tcp_in_both_framings() {
    if !have("logger") {
        eprintln!("SKIPPED logger interop: logger not found");
        return;
    }
    let (bus, mut c) = bus(10_000).await;
    let udp = SyslogUdpSource::bind(SyslogUdpConfig { address: local(), ..Default::default() }, ctx()).await.unwrap();
    let tcp = SyslogTcpSource::bind(SyslogTcpConfig { address: local(), ..Default::default() }, ctx()).await.unwrap();
    let (uport, tport) = (udp.local_addr().port().to_string(), tcp.local_addr().port().to_string());
    let (stop, shutdown) = watch::channel(false);
    let t1 = tokio::spawn(udp.run(bus.clone(), shutdown.clone()));
    let t2 = tokio::spawn(tcp.run(bus.clone(), shutdown));
    let base = ["-n", "127.0.0.1", "-t", "interop", "-p", "auth.warning"];
    let with = |extra: &[&str], msg: &str| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).chain([msg.to_string()]).collect()
    };
    for (extra, msg) in [
        (vec!["-d", "-P", &uport, "--rfc3164"], "udp 3164"),
        (vec!["-d", "-P", &uport, "--rfc5424"], "udp 5424"),
        (vec!["-T", "-P", &tport, "--rfc5424"], "tcp newline 5424"),
        (vec!["-T", "-P", &tport, "--octet-count", "--rfc5424", "--msgid", "M1"], "tcp octet 5424"),
        (vec!["-T", "-P", &tport, "--octet-count", "--rfc3164"], "tcp octet 3164"),
    ] {
        let args = with(&extra, msg);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        tokio::task::spawn_blocking({
            let a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            move || logger(&a.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .await
        .unwrap();
    }
    let (evs, _) = collect(&mut c, 5, 0).await;
    let mut got: Vec<(String, String, String, String)> = evs
        .iter()
        .map(|e| {
            let l = e.log.as_ref().unwrap();
            (
                l.message.clone().unwrap(),
                l.input.clone().unwrap(),
                l.format.clone().unwrap(),
                format!(
                    "{}/{}/{}",
                    l.program.as_deref().unwrap_or(""),
                    l.facility.as_deref().unwrap_or(""),
                    l.severity.as_deref().unwrap_or("")
                ),
            )
        })
        .collect();
    got.sort();
    let want =
        |m: &str, i: &str, f: &str| (m.to_string(), i.to_string(), f.to_string(), "interop/auth/warning".to_string());
    assert_eq!(
        got,
        [
            want("tcp newline 5424", "syslog-tcp", "rfc5424"),
            want("tcp octet 3164", "syslog-tcp", "rfc3164"),
            want("tcp octet 5424", "syslog-tcp", "rfc5424"),
            want("udp 3164", "syslog-udp", "rfc3164"),
            want("udp 5424", "syslog-udp", "rfc5424"),
        ]
    );
    let m1 = evs.iter().find(|e| e.log.as_ref().unwrap().message.as_deref() == Some("tcp octet 5424")).unwrap();
    assert_eq!(m1.log.as_ref().unwrap().fields["msgid"], "M1");
    stop.send(true).unwrap();
    t1.await.unwrap().unwrap();
    t2.await.unwrap().unwrap();
}

struct Pki {
    _dir: tempfile::TempDir,
    ca_pem: String,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    ca: std::path::PathBuf,
    client: (String, String),
}

/// A CA, a server certificate for 127.0.0.1/localhost and a client certificate, as PEM files.
fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let srv_key = rcgen::KeyPair::generate().unwrap();
    let srv = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .signed_by(&srv_key, &ca, &ca_key)
        .unwrap();
    let cli_key = rcgen::KeyPair::generate().unwrap();
    let mut cli_params = rcgen::CertificateParams::new(vec!["client.test".into()]).unwrap();
    cli_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cli = cli_params.signed_by(&cli_key, &ca, &ca_key).unwrap();
    let w = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let cert = w("server.crt", &srv.pem());
    let key = w("server.key", &srv_key.serialize_pem());
    let ca_path = w("ca.crt", &ca.pem());
    Pki { ca_pem: ca.pem(), cert, key, ca: ca_path, client: (cli.pem(), cli_key.serialize_pem()), _dir: dir }
}

fn connector(ca_pem: &str, client: Option<&(String, String)>) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let cfg = match client {
        None => b.with_no_client_auth(),
        Some((cert, key)) => b
            .with_client_auth_cert(
                vec![rustls::pki_types::CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
    };
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
}

async fn tls_collector(
    p: &Pki,
    client_ca: bool,
) -> (std::net::SocketAddr, watch::Sender<bool>, tokio::task::JoinHandle<()>, Box<dyn soc_bus::Consumer>) {
    let (bus, c) = bus(10_000).await;
    let mut cfg = CollectorConfig::default();
    cfg.inputs.syslog_udp.enabled = false;
    cfg.inputs.syslog_tcp.enabled = false;
    cfg.inputs.syslog_tls = SyslogTlsConfig {
        enabled: true,
        address: local(),
        cert: p.cert.clone(),
        key: p.key.clone(),
        client_ca: client_ca.then(|| p.ca.clone()),
        ..Default::default()
    };
    cfg.validate("test").unwrap();
    let col = Collector::bind(&cfg).await.unwrap();
    let addr = col.tls_addr().unwrap();
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(async move { col.run(bus, shutdown).await.unwrap() });
    (addr, stop, task, c)
}

#[tokio::test]
async fn syslog_over_tls_with_a_generated_certificate() {
    let p = pki();
    let (addr, stop, task, mut c) = tls_collector(&p, false).await;
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut s = connector(&p.ca_pem, None).connect(name, tcp).await.unwrap();
    // Octet counting, as RFC 5425 asks.
    for m in ["<34>1 2024-06-15T10:00:00Z h1 su - - - tls one", "<34>1 2024-06-15T10:00:01Z h1 su - - - tls two"] {
        s.write_all(format!("{} {m}", m.len()).as_bytes()).await.unwrap();
    }
    s.shutdown().await.unwrap();
    let (evs, _) = collect(&mut c, 2, 0).await;
    let msgs: Vec<&str> = evs.iter().map(|e| e.log.as_ref().unwrap().message.as_deref().unwrap()).collect();
    assert_eq!(msgs, ["tls one", "tls two"]);
    assert_eq!(evs[0].log.as_ref().unwrap().input.as_deref(), Some("syslog-tls"));

    // A plain-text client gets nothing in.
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain.write_all(b"<34>Jun 15 10:00:00 h1 su: plain\n").await.unwrap();
    drop(plain);

    // openssl s_client as a real TLS client.
    if have("openssl") {
        let port = addr.port().to_string();
        let ca = p.ca.clone();
        let out = tokio::task::spawn_blocking(move || {
            let mut child = Command::new("openssl")
                .args(["s_client", "-connect", &format!("127.0.0.1:{port}"), "-CAfile"])
                .arg(&ca)
                .args(["-verify_return_error", "-quiet", "-no_ign_eof"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(b"<13>Jun 15 10:00:00 h2 app: from openssl\n").unwrap();
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let (evs, _) = collect(&mut c, 1, 0).await;
        assert_eq!(evs[0].log.as_ref().unwrap().message.as_deref(), Some("from openssl"));
        assert_eq!(evs[0].host.as_deref(), Some("h2"));
    } else {
        eprintln!("SKIPPED openssl s_client interop: openssl not found");
    }
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn client_certificates_are_required_when_a_client_ca_is_set() {
    let p = pki();
    let (addr, stop, task, mut c) = tls_collector(&p, true).await;
    let name = || rustls::pki_types::ServerName::try_from("localhost").unwrap();
    // Without a client certificate: refused (the alert may surface on the first read or write).
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    if let Ok(mut s) = connector(&p.ca_pem, None).connect(name(), tcp).await {
        let _ = s.write_all(b"<13>Jun 15 10:00:00 h app: anonymous\n").await;
        let _ = s.shutdown().await;
        let mut buf = [0u8; 16];
        let r = tokio::io::AsyncReadExt::read(&mut s, &mut buf).await;
        assert!(r.is_err() || r.is_ok_and(|n| n == 0));
    }
    // With one: accepted.
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut s = connector(&p.ca_pem, Some(&p.client)).connect(name(), tcp).await.unwrap();
    s.write_all(b"<13>Jun 15 10:00:00 h app: with cert\n").await.unwrap();
    s.shutdown().await.unwrap();
    let (evs, _) = collect(&mut c, 1, 0).await;
    assert_eq!(evs[0].log.as_ref().unwrap().message.as_deref(), Some("with cert"));
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[test]
fn bad_tls_files_are_config_errors() {
    let p = pki();
    let e = tls::acceptor(&p.key, &p.key, None).err().unwrap().to_string();
    assert!(e.contains("no certificate"), "{e}");
    let e = tls::acceptor(&p.cert, &p.cert, None).err().unwrap().to_string();
    assert!(e.contains("private key"), "{e}");
    let e = tls::acceptor(Path::new("missing.crt"), &p.key, None).err().unwrap().to_string();
    assert!(e.starts_with("missing.crt:"), "{e}");
    let text = format!(
        "[inputs.syslog_tls]\nenabled = true\ncert = {:?}\nkey = {:?}\n",
        p.key.display().to_string(),
        p.key.display().to_string()
    );
    let e = CollectorConfig::from_toml("c.toml", &text).unwrap_err().to_string();
    assert!(e.contains("inputs.syslog_tls") && e.contains("no certificate"), "{e}");
    let e = CollectorConfig::from_toml("c.toml", "[inputs.syslog_tls]\nenabled = true\n").unwrap_err().to_string();
    assert!(e.contains("cert and key are required"), "{e}");
}

/// rsyslogd, from the distribution, if it and its GnuTLS stream driver are installed.
fn rsyslogd() -> Option<std::path::PathBuf> {
    let bin = ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"].iter().map(std::path::PathBuf::from).find(|p| p.exists())?;
    let driver = ["/usr/lib/x86_64-linux-gnu/rsyslog", "/usr/lib/aarch64-linux-gnu/rsyslog", "/usr/lib/rsyslog"]
        .iter()
        .any(|d| Path::new(d).join("lmnsd_gtls.so").exists());
    driver.then_some(bin)
}

/// Runs rsyslogd forwarding its UDP input over TLS to `tls_port` (server name checked against
/// `permitted_peer`), feeds it `logger` lines starting with `marker` for up to `tries` x 200 ms
/// until one arrives, and returns the events with the marker (not lines of an earlier run that
/// arrive late) and what rsyslogd wrote to stderr.
async fn through_rsyslog(
    rsyslogd: &Path,
    ca: &Path,
    tls_port: u16,
    permitted_peer: &str,
    marker: &str,
    tries: usize,
    c: &mut Box<dyn soc_bus::Consumer>,
) -> (Vec<soc_model::Event>, String) {
    let work = tempfile::tempdir().unwrap();
    let udp_port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let conf = work.path().join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            r#"global(workDirectory="{work}" defaultNetstreamDriver="gtls" defaultNetstreamDriverCAFile="{ca}")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="{udp_port}")
action(type="omfwd" target="127.0.0.1" port="{tls_port}" protocol="tcp" tcp_framing="octet-counted"
       streamDriver="gtls" streamDriverMode="1" streamDriverAuthMode="x509/name"
       streamDriverPermittedPeers="{permitted_peer}" template="RSYSLOG_SyslogProtocol23Format")
"#,
            work = work.path().display(),
            ca = ca.display(),
        ),
    )
    .unwrap();
    let mut child = Command::new(rsyslogd)
        .arg("-n")
        .arg("-f")
        .arg(&conf)
        .arg("-i")
        .arg(work.path().join("rsyslogd.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // rsyslog's UDP input opens after start-up: send until a line has come through.
    let port = udp_port.to_string();
    let mut got = Vec::new();
    for i in 0..tries {
        // Each try lasts 200 ms even when the poll returns early (with an earlier run's lines).
        let next = tokio::time::Instant::now() + std::time::Duration::from_millis(200);
        if let Ok(Some(st)) = child.try_wait() {
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err);
            panic!("rsyslogd exited ({st}): {err}");
        }
        logger(&["-d", "-n", "127.0.0.1", "-P", &port, "--rfc3164", "-t", "app", &format!("{marker} {i}")]);
        let msgs = c.poll(100, std::time::Duration::from_millis(200)).await.unwrap();
        got.extend(
            msgs.iter()
                .filter_map(|m| soc_model::Event::from_json(&m.payload).ok())
                .filter(|e| e.log.as_ref().and_then(|l| l.message.as_deref()).is_some_and(|m| m.contains(marker))),
        );
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep_until(next).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err);
    (got, err)
}

/// rsyslog as a ministry server runs it: messages from its UDP input forwarded with `omfwd` over
/// TLS (GnuTLS driver, RFC 5425 octet counting, the collector's certificate checked against the
/// CA and by name). `logger` feeds rsyslog; the lines arrive through the TLS input. With a
/// permitted peer name the certificate does not carry, rsyslog delivers nothing.
#[tokio::test]
async fn rsyslog_forwards_over_tls_with_the_certificate_checked() {
    let Some(rsyslogd) = rsyslogd() else {
        if std::env::var("SOC_REQUIRE_SERVERS").as_deref() == Ok("1") {
            panic!(
                "rsyslogd with rsyslog-gnutls is not installed but SOC_REQUIRE_SERVERS=1 (deploy/test.sh installs it)"
            );
        }
        eprintln!("SKIPPED rsyslog TLS interop: rsyslogd or its GnuTLS driver (rsyslog-gnutls) not found");
        return;
    };
    let p = pki();
    let (addr, stop, task, mut c) = tls_collector(&p, false).await;
    let (got, err) =
        through_rsyslog(&rsyslogd, &p.ca, addr.port(), "localhost", "via rsyslog over tls", 50, &mut c).await;
    let Some(ev) = got.first() else {
        panic!("no line came through rsyslog over TLS within 10 s; rsyslogd said: {err}");
    };
    let log = ev.log.as_ref().unwrap();
    // rsyslog keeps the space after an RFC 3164 tag in its message property; RFC 5424 text is
    // taken as sent.
    assert!(log.message.as_deref().unwrap_or("").trim_start().starts_with("via rsyslog over tls"), "{log:?}");
    assert_eq!(log.program.as_deref(), Some("app"));
    assert_eq!(log.input.as_deref(), Some("syslog-tls"));
    assert_eq!(log.format.as_deref(), Some("rfc5424"), "RSYSLOG_SyslogProtocol23Format is RFC 5424");

    let (got, err) =
        through_rsyslog(&rsyslogd, &p.ca, addr.port(), "wrong.example", "to a refused peer", 25, &mut c).await;
    assert!(got.is_empty(), "rsyslog sent to a server whose certificate names another host: {got:?}");
    // "peer name not authorized - not permitted to talk to it. Names: DNSname: localhost; ..."
    assert!(err.contains("not authorized") || err.contains("not permitted"), "rsyslogd said: {err}");
    stop.send(true).unwrap();
    task.await.unwrap();
}
