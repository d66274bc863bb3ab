//! The file input with real files: back-fill, follow, rotation by rename and by truncation,
//! restart from the saved position (while the file was rotated, too), over-long lines.

mod common;

use common::{bus, ctx};
use soc_bus::{Consumer, MemoryBus};
use soc_collector::config::{FileConfig, StartAt};
use soc_collector::parse::Format;
use soc_collector::source::file::{FileSource, load_position};
use soc_model::{DeadLetter, Event, Kind};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

fn line(n: usize) -> String {
    format!("<13>Jun 15 10:00:00 host1 app: line {n}\n")
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn lines(range: std::ops::Range<usize>) -> String {
    range.map(line).collect()
}

fn cfg(path: &Path) -> FileConfig {
    FileConfig { start_at: StartAt::Beginning, poll_interval_ms: 10, format: Format::Syslog, ..FileConfig::new(path) }
}

fn number(ev: &Event) -> usize {
    let m = ev.log.as_ref().and_then(|l| l.message.as_deref()).unwrap_or("");
    m.strip_prefix("line ").and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{m:?}"))
}

/// Everything on the bus now.
async fn drain(c: &mut Box<dyn Consumer>) -> (Vec<Event>, Vec<DeadLetter>) {
    let (mut evs, mut dls) = (Vec::new(), Vec::new());
    loop {
        let msgs = c.poll(10_000, Duration::from_millis(50)).await.unwrap();
        if msgs.is_empty() {
            return (evs, dls);
        }
        for m in &msgs {
            match m.kind {
                Kind::Log => evs.push(Event::from_json(&m.payload).unwrap()),
                Kind::DeadLetter => dls.push(serde_json::from_slice(&m.payload).unwrap()),
                k => panic!("{k}"),
            }
        }
        c.commit(&msgs).await.unwrap();
    }
}

/// Waits until `n` more events arrived (or 20 s passed), returning their line numbers.
async fn wait_for(c: &mut Box<dyn Consumer>, n: usize) -> Vec<usize> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    while got.len() < n && tokio::time::Instant::now() < deadline {
        let (evs, dls) = drain(c).await;
        assert!(dls.is_empty(), "{dls:?}");
        got.extend(evs.iter().map(number));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    got
}

struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), soc_collector::CollectorError>>,
}

fn start(cfg: FileConfig, state: &Path, bus: &Arc<MemoryBus>) -> Running {
    let src = FileSource::new(cfg, state.to_path_buf(), ctx());
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(src.run(bus.clone(), shutdown));
    Running { stop, task }
}

impl Running {
    async fn stop(self) {
        self.stop.send(true).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

fn paths() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let state = dir.path().join("state/app.pos");
    (dir, log, state)
}

#[tokio::test]
async fn backfill_reads_the_whole_file_once_and_stops() {
    let (bus, mut c) = bus(100_000).await;
    let (_dir, log, state) = paths();
    append(&log, &lines(0..1000));
    append(&log, "<13>Jun 15 10:00:00 host1 app: line 1000"); // last line without '\n'
    let src = FileSource::new(FileConfig { stop_at_eof: true, ..cfg(&log) }, state.clone(), ctx());
    let stats = src.stats();
    let (_stop, shutdown) = watch::channel(false);
    src.run(bus.clone(), shutdown).await.unwrap();
    let (evs, _) = drain(&mut c).await;
    assert_eq!(evs.iter().map(number).collect::<Vec<_>>(), (0..=1000).collect::<Vec<_>>());
    assert_eq!(evs[0].log.as_ref().unwrap().input.as_deref(), Some("file"));
    assert_eq!(load_position(&state).unwrap().offset, std::fs::metadata(&log).unwrap().len());
    let s = stats.snapshot();
    assert_eq!((s.received, s.parsed, s.dead_lettered), (1001, 1001, 0));
}

#[tokio::test]
async fn start_at_end_skips_what_was_there() {
    let (bus, mut c) = bus(100_000).await;
    let (_dir, log, state) = paths();
    append(&log, &lines(0..5));
    let run = start(FileConfig { start_at: StartAt::End, ..cfg(&log) }, &state, &bus);
    // The state file is written once the file is opened at its end.
    while load_position(&state).is_none() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    append(&log, &lines(5..8));
    assert_eq!(wait_for(&mut c, 3).await, vec![5, 6, 7]);
    run.stop().await;
}

#[tokio::test]
async fn follows_rename_rotation_and_truncation_without_loss_or_repeats() {
    let (bus, mut c) = bus(100_000).await;
    let (dir, log, state) = paths();
    append(&log, &lines(0..100));
    let run = start(cfg(&log), &state, &bus);
    assert_eq!(wait_for(&mut c, 100).await, (0..100).collect::<Vec<_>>());

    // A partial line is held until its end arrives.
    append(&log, "<13>Jun 15 10:00:00 host1 app: li");
    tokio::time::sleep(Duration::from_millis(50)).await;
    append(&log, "ne 100\n");
    assert_eq!(wait_for(&mut c, 1).await, vec![100]);

    // Rename + create; the writer still appends to the old file once after the rename.
    let rotated = dir.path().join("app.log.1");
    let mut old = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::fs::rename(&log, &rotated).unwrap();
    old.write_all(lines(101..103).as_bytes()).unwrap();
    drop(old);
    append(&log, &lines(103..110));
    assert_eq!(wait_for(&mut c, 9).await, (101..110).collect::<Vec<_>>());

    // Truncation (copytruncate), then shorter content.
    std::fs::write(&log, "").unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    append(&log, &lines(110..112));
    assert_eq!(wait_for(&mut c, 2).await, vec![110, 111]);

    run.stop().await;
    let (evs, dls) = drain(&mut c).await;
    assert!(evs.is_empty() && dls.is_empty(), "repeated: {:?}", evs.iter().map(number).collect::<Vec<_>>());
}

#[tokio::test]
async fn restart_resumes_at_the_saved_position_even_across_a_rotation() {
    let (bus, mut c) = bus(100_000).await;
    let (dir, log, state) = paths();
    append(&log, &lines(0..50));
    let run = start(cfg(&log), &state, &bus);
    assert_eq!(wait_for(&mut c, 50).await, (0..50).collect::<Vec<_>>());
    run.stop().await;

    // Written while stopped: more lines, then a rotation and a new file.
    append(&log, &lines(50..60));
    let run = start(cfg(&log), &state, &bus);
    assert_eq!(wait_for(&mut c, 10).await, (50..60).collect::<Vec<_>>());
    run.stop().await;

    append(&log, &lines(60..70));
    std::fs::rename(&log, dir.path().join("app.log-20240615")).unwrap();
    append(&log, &lines(70..75));
    let run = start(cfg(&log), &state, &bus);
    assert_eq!(wait_for(&mut c, 15).await, (60..75).collect::<Vec<_>>());
    run.stop().await;

    // And nothing more after a last restart.
    let run = start(cfg(&log), &state, &bus);
    tokio::time::sleep(Duration::from_millis(100)).await;
    run.stop().await;
    let (evs, _) = drain(&mut c).await;
    assert!(evs.is_empty(), "repeated: {:?}", evs.iter().map(number).collect::<Vec<_>>());
    assert_eq!(load_position(&state).unwrap().offset, std::fs::metadata(&log).unwrap().len());
}

#[tokio::test]
async fn over_long_lines_are_dead_lettered_and_the_rest_continues() {
    let (bus, mut c) = bus(100_000).await;
    let (_dir, log, state) = paths();
    let long = format!("<13>Jun 15 10:00:00 host1 app: {}\n", "x".repeat(600_000));
    append(&log, &format!("{}{long}{}", line(0), line(1)));
    let cfg = FileConfig { stop_at_eof: true, max_line: 1000, ..cfg(&log) };
    let (_stop, shutdown) = watch::channel(false);
    FileSource::new(cfg, state, ctx()).run(bus.clone(), shutdown).await.unwrap();
    let (evs, dls) = drain(&mut c).await;
    assert_eq!(evs.iter().map(number).collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(dls.len(), 1);
    assert!(dls[0].reason.contains("max_line"), "{}", dls[0].reason);
    assert_eq!(dls[0].raw.len(), 1000);
}

#[tokio::test]
async fn auditd_files_are_joined_into_events() {
    let (bus, mut c) = bus(100_000).await;
    let (_dir, log, state) = paths();
    append(
        &log,
        "type=SYSCALL msg=audit(1507304439.922:1865): syscall=59 exe=\"/usr/bin/id\"\n\
         type=EXECVE msg=audit(1507304439.922:1865): argc=1 a0=\"id\"\n\
         type=USER_LOGIN msg=audit(1507304440.000:1866): pid=1 msg='acct=\"root\" res=failed'\n",
    );
    let cfg = FileConfig { format: Format::Auditd, stop_at_eof: true, ..cfg(&log) };
    let (_stop, shutdown) = watch::channel(false);
    FileSource::new(cfg, state, ctx()).run(bus.clone(), shutdown).await.unwrap();
    let (evs, _) = drain(&mut c).await;
    let types: Vec<&str> = evs.iter().map(|e| e.log.as_ref().unwrap().fields["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["SYSCALL", "USER_LOGIN"]);
    assert_eq!(evs[0].log.as_ref().unwrap().fields["CommandLine"], "id");
}
