//! Parser selection on the network inputs: sniffed per message (`format = "auto"`) or fixed
//! per input; audit records joined into events per TCP connection.

mod common;

use common::{bus, collect, ctx, local};
use soc_collector::config::{SyslogTcpConfig, SyslogUdpConfig};
use soc_collector::parse::Format;
use soc_collector::source::syslog_tcp::SyslogTcpSource;
use soc_collector::source::syslog_udp::SyslogUdpSource;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::watch;

#[tokio::test]
async fn tcp_auto_format_sniffs_each_line_and_joins_audit_records() {
    let (bus, mut c) = bus(10_000).await;
    let cfg = SyslogTcpConfig { address: local(), ..SyslogTcpConfig::default() };
    let src = SyslogTcpSource::bind(cfg, ctx()).await.unwrap();
    let addr = src.local_addr();
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(src.run(bus.clone(), shutdown));
    let mut s = TcpStream::connect(addr).await.unwrap();
    let text = "\
type=SYSCALL msg=audit(1507304439.922:1865): arch=c000003e syscall=59 success=yes pid=7 comm=\"useradd\" exe=\"/usr/sbin/useradd\" key=\"user_mod\"
type=EXECVE msg=audit(1507304439.922:1865): argc=2 a0=\"useradd\" a1=\"bob\"
type=EOE msg=audit(1507304439.922:1865):
10.1.1.1 - - [17/May/2015:10:05:03 +0000] \"GET /a.php?id=1 HTTP/1.1\" 404 12 \"-\" \"curl/8\"
<38>Jun 14 08:01:02 web01 sshd[4123]: Failed password for root
{\"message\":\"json line\",\"host\":\"app1\"}
type=SYSCALL msg=audit(oops): x=1
";
    s.write_all(text.as_bytes()).await.unwrap();
    s.shutdown().await.unwrap();
    let (evs, dls) = collect(&mut c, 4, 1).await;
    let formats: Vec<&str> = evs.iter().map(|e| e.log.as_ref().unwrap().format.as_deref().unwrap()).collect();
    assert_eq!(formats, ["auditd", "combined", "rfc3164", "json"]);
    let audit = evs[0].log.as_ref().unwrap();
    assert_eq!(audit.fields["CommandLine"], "useradd bob");
    assert_eq!(audit.logsource.service.as_deref(), Some("auditd"));
    assert_eq!(evs[0].host.as_deref(), Some("127.0.0.1"));
    let web = evs[1].log.as_ref().unwrap();
    assert_eq!(web.logsource.category.as_deref(), Some("webserver"));
    assert_eq!(web.fields["sc-status"], 404);
    assert!(dls[0].reason.contains("invalid audit record"), "{}", dls[0].reason);
    assert_eq!(dls[0].raw, "type=SYSCALL msg=audit(oops): x=1");
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_fixed_format_rejects_other_lines_as_dead_letters() {
    let (bus, mut c) = bus(10_000).await;
    let cfg = SyslogUdpConfig { address: local(), format: Format::Nginx, ..SyslogUdpConfig::default() };
    let src = SyslogUdpSource::bind(cfg, ctx()).await.unwrap();
    let addr = src.local_addr();
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(src.run(bus.clone(), shutdown));
    let sock = UdpSocket::bind(local()).await.unwrap();
    sock.send_to(b"10.1.1.1 - - [17/May/2015:10:05:03 +0000] \"GET / HTTP/1.1\" 200 5 \"-\" \"x\"", addr)
        .await
        .unwrap();
    sock.send_to(b"<38>Jun 14 08:01:02 web01 sshd[4123]: hi", addr).await.unwrap();
    let (evs, dls) = collect(&mut c, 1, 1).await;
    assert_eq!(evs[0].log.as_ref().unwrap().logsource.product.as_deref(), Some("nginx"));
    assert!(dls[0].reason.contains("invalid access log line"), "{}", dls[0].reason);
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
}
