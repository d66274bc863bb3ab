//! Typed TOML configuration with line-precise errors.
//!
//! ```
//! #[derive(serde::Deserialize, Debug)]
//! #[serde(deny_unknown_fields)]
//! struct Cfg { name: String, port: u16 }
//! let err = soc_model::config::from_toml_str::<Cfg>("sensor.toml", "name = \"a\"\nport = 70000\n").unwrap_err();
//! assert!(err.to_string().starts_with("sensor.toml:2:"), "{err}");
//! ```

use serde::de::DeserializeOwned;
use std::path::Path;

/// A configuration file that could not be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}:{line}:{column}: {message}")]
    Invalid { path: String, line: usize, column: usize, message: String },
    #[error("{path}: {message}")]
    Semantic { path: String, message: String },
}

/// Parses TOML text into a typed config; errors name `path:line:column` and the key.
pub fn from_toml_str<T: DeserializeOwned>(path: &str, text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        ConfigError::Invalid { path: path.to_string(), line, column, message: e.message().trim().to_string() }
    })
}

/// Reads and parses a TOML file.
pub fn load_toml<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: p.clone(), source })?;
    from_toml_str(&p, &text)
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = offset - before.iter().rposition(|&b| b == b'\n').map(|p| p + 1).unwrap_or(0) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Cfg {
        name: String,
        inner: Inner,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        port: u16,
    }

    #[test]
    fn unknown_key_is_reported_with_line_and_name() {
        let e = from_toml_str::<Cfg>("c.toml", "name = \"x\"\n[inner]\nport = 1\nbogus = 2\n").unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("c.toml:4:"), "{s}");
        assert!(s.contains("bogus"), "{s}");
    }

    #[test]
    fn wrong_type_is_reported_with_line() {
        let e = from_toml_str::<Cfg>("c.toml", "name = \"x\"\n[inner]\nport = \"eighty\"\n").unwrap_err();
        assert!(e.to_string().starts_with("c.toml:3:"), "{e}");
    }
}
