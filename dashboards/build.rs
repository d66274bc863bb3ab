//! Builds the web UI (dashboards/ui, Vite) into OUT_DIR and generates `ui_assets.rs`, the list
//! of files the crate embeds. `npm ci` runs only when `ui/node_modules` is missing or
//! `ui/package-lock.json` changed since the last install; `npm run build` only when the UI's
//! inputs changed. With `SOC_SKIP_UI=1` no npm is needed: the binary then serves a page saying
//! the UI was not built.
#![forbid(unsafe_code)]

use std::collections::hash_map::DefaultHasher;
use std::fmt::Write as _;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const INPUTS: &[&str] = &["src", "index.html", "package.json", "package-lock.json", "vite.config.js"];
const STAMP: &str = ".soc-installed-package-lock.json";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("\nerror: building the Canh Gac web UI failed:\n{msg}\n");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let out = PathBuf::from(std::env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let ui = manifest.join("ui");
    for i in INPUTS {
        println!("cargo:rerun-if-changed=ui/{i}");
    }
    println!("cargo:rerun-if-env-changed=SOC_SKIP_UI");
    println!("cargo:rerun-if-env-changed=NPM");

    let dist = out.join("ui-dist");
    let skip = std::env::var("SOC_SKIP_UI").is_ok_and(|v| !v.is_empty() && v != "0");
    if skip {
        println!("cargo:warning=SOC_SKIP_UI is set: building without the web UI");
        return write_assets(&out, None);
    }

    let npm = std::env::var("NPM").unwrap_or_else(|_| "npm".to_string());
    match Command::new(&npm).arg("--version").output() {
        Ok(o) if o.status.success() => {}
        _ => {
            return Err(format!(
                "`{npm} --version` did not run. The web UI needs Node.js 20.19+ and npm:\n  \
                 Debian/Ubuntu: apt-get install -y nodejs npm   (or see https://nodejs.org/en/download)\n\
                 then build again. To build without the UI, set SOC_SKIP_UI=1."
            ));
        }
    }

    // npm ci when node_modules is missing or the lock file changed since the last install.
    let lock = fs::read(ui.join("package-lock.json")).map_err(|e| format!("cannot read ui/package-lock.json: {e}"))?;
    let stamp = ui.join("node_modules").join(STAMP);
    let installed = fs::read(&stamp).ok();
    if installed.as_deref() != Some(lock.as_slice()) {
        run_npm(&npm, &ui, &["ci", "--no-audit", "--no-fund"], None)?;
        fs::write(&stamp, &lock).map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    }

    // npm run build when the inputs' fingerprint differs from the last build's.
    let fp = fingerprint(&ui)?;
    let fp_file = out.join("ui-fingerprint");
    let built = fs::read_to_string(&fp_file).ok();
    if built.as_deref() != Some(fp.as_str()) || !dist.join("index.html").is_file() {
        run_npm(&npm, &ui, &["run", "build"], Some(&dist))?;
        fs::write(&fp_file, &fp).map_err(|e| format!("cannot write {}: {e}", fp_file.display()))?;
    }
    write_assets(&out, Some(&dist))
}

fn run_npm(npm: &str, dir: &Path, args: &[&str], out_dir: Option<&Path>) -> Result<(), String> {
    let mut cmd = Command::new(npm);
    cmd.args(args).current_dir(dir);
    if let Some(o) = out_dir {
        cmd.env("SOC_UI_OUT_DIR", o);
    }
    let status = cmd.status().map_err(|e| format!("cannot run {npm} {}: {e}", args.join(" ")))?;
    if !status.success() {
        return Err(format!(
            "`{npm} {}` in {} failed ({status}); see its output above. Set SOC_SKIP_UI=1 to build without the UI.",
            args.join(" "),
            dir.display()
        ));
    }
    Ok(())
}

/// Hash of the paths and contents of every UI input file.
fn fingerprint(ui: &Path) -> Result<String, String> {
    let mut files = Vec::new();
    for i in INPUTS {
        collect(&ui.join(i), &mut files)?;
    }
    files.sort();
    let mut h = DefaultHasher::new();
    for f in &files {
        f.hash(&mut h);
        fs::read(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?.hash(&mut h);
    }
    Ok(format!("{:016x}", h.finish()))
}

fn collect(p: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    if p.is_dir() {
        let rd = fs::read_dir(p).map_err(|e| format!("cannot list {}: {e}", p.display()))?;
        for entry in rd {
            let entry = entry.map_err(|e| format!("cannot list {}: {e}", p.display()))?;
            collect(&entry.path(), out)?;
        }
    } else if p.is_file() {
        out.push(p.to_path_buf());
    }
    Ok(())
}

/// Writes `ui_assets.rs`: `UI_BUILT` and `ASSETS`, a sorted list of (URL path, bytes).
fn write_assets(out: &Path, dist: Option<&Path>) -> Result<(), String> {
    let mut files = Vec::new();
    if let Some(d) = dist {
        collect(d, &mut files)?;
    }
    let mut entries: Vec<(String, PathBuf)> = Vec::new();
    if let Some(d) = dist {
        for f in files {
            let rel = f.strip_prefix(d).map_err(|e| e.to_string())?;
            let url =
                rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/");
            entries.push((url, f));
        }
    }
    entries.sort();
    let mut code = String::new();
    let _ = writeln!(code, "/// Whether the web UI was built into this binary (false with SOC_SKIP_UI=1).");
    let _ = writeln!(code, "pub const UI_BUILT: bool = {};", dist.is_some());
    let _ = writeln!(code, "/// The UI's files: path relative to the site root, contents.");
    let _ = writeln!(code, "pub static ASSETS: &[(&str, &[u8])] = &[");
    for (url, f) in &entries {
        let _ = writeln!(code, "    ({url:?}, include_bytes!({:?})),", f.display().to_string());
    }
    let _ = writeln!(code, "];");
    fs::write(out.join("ui_assets.rs"), code).map_err(|e| format!("cannot write ui_assets.rs: {e}"))
}
