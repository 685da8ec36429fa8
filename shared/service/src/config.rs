//! Layered configuration: `T::default()`, then a TOML file, then `ACCTMON__SECTION__KEY`
//! environment variables, then the binary's command-line overrides; plus [`Secret`] values.

use std::fmt;
use std::path::Path;

use figment::error::{Actual, Kind};
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Prefix of the environment variables read by [`load`]: `ACCTMON__ADMIN__LISTEN` sets
/// `admin.listen` (the prefix is case-sensitive, keys are lowercased, `__` separates sections).
pub const ENV_PREFIX: &str = "ACCTMON__";
const REDACTED: &str = "[redacted]";

/// Why a configuration could not be loaded: names the field and its source, never a value.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(String);

/// Loads `T` from its defaults, the TOML `file` (an error if given and missing), the process
/// environment (see [`ENV_PREFIX`]) and `overrides`, each layer beating the previous ones.
///
/// `overrides` are the command-line flags, serialized with the same nesting as `T`; mark their
/// optional fields `#[serde(skip_serializing_if = "Option::is_none")]` so an absent flag does not
/// override. Pass `()` when there are none. [`Secret`]s serialize redacted: never put one in
/// `T::default()` or `overrides`, apply it after loading (see [`resolve_secret`]).
pub fn load<T>(file: Option<&Path>, overrides: impl Serialize) -> Result<T, ConfigError>
where
    T: Default + Serialize + DeserializeOwned,
{
    let vars: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)))
        .collect();
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    load_from(file, overrides, &pairs)
}

/// [`load`] with explicit environment variables `(name, value)` instead of the process's.
pub fn load_from<T>(
    file: Option<&Path>,
    overrides: impl Serialize,
    env_vars: &[(&str, &str)],
) -> Result<T, ConfigError>
where
    T: Default + Serialize + DeserializeOwned,
{
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    if let Some(path) = file {
        std::fs::metadata(path)
            .map_err(|e| ConfigError(format!("config file {}: {e}", path.display())))?;
        figment = figment.merge(Toml::file_exact(path));
    }
    for (name, value) in env_vars {
        let Some(key) = name.strip_prefix(ENV_PREFIX).filter(|k| !k.is_empty()) else {
            continue;
        };
        let Ok(value) = value.parse::<Value>();
        let key = Some(key.to_ascii_lowercase().replace("__", "."));
        figment = figment.merge(Layer(format!("environment variable {name}"), key, value));
    }
    let overrides = Value::serialize(overrides).map_err(from_figment)?;
    if !matches!(overrides, Value::Empty(..)) {
        figment = figment.merge(Layer("command-line flags".into(), None, overrides));
    }
    figment.extract().map_err(from_figment)
}

/// A provider of `.2` (at the dotted key `.1`, or at the root) whose errors name its source `.0`.
struct Layer(String, Option<String>, Value);

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.0.clone()).interpolater(|_: &Profile, keys: &[&str]| keys.join("."))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        match &self.1 {
            Some(key) => Serialized::default(key, &self.2).data(),
            None => Serialized::defaults(&self.2).data(),
        }
    }
}

/// Renders figment's errors without any configured value: values in type errors are replaced by
/// their type and TOML source snippets (lines with `|`) are dropped.
fn from_figment(error: figment::Error) -> ConfigError {
    let hide = |actual: Actual| match actual {
        Actual::Bool(_) => Actual::Other("a bool".into()),
        Actual::Unsigned(_) | Actual::Signed(_) => Actual::Other("an integer".into()),
        Actual::Float(_) => Actual::Other("a float".into()),
        Actual::Char(_) | Actual::Str(_) => Actual::Other("a string".into()),
        Actual::Bytes(_) => Actual::Other("bytes".into()),
        other => other,
    };
    let messages: Vec<String> = error
        .into_iter()
        .map(|mut e| {
            e.kind = match e.kind {
                Kind::InvalidType(actual, expected) => Kind::InvalidType(hide(actual), expected),
                Kind::InvalidValue(actual, expected) => Kind::InvalidValue(hide(actual), expected),
                Kind::Unsupported(actual) => Kind::Unsupported(hide(actual)),
                Kind::Message(m) => {
                    let lines: Vec<_> = m.lines().filter(|l| !l.contains('|')).collect();
                    Kind::Message(lines.join(" "))
                }
                kind => kind,
            };
            e.to_string()
        })
        .collect();
    ConfigError(messages.join("; "))
}

/// A secret string (API key or secret): `Debug`, `Display` and `Serialize` print `[redacted]`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The secret value itself: pass it straight to where it is used, never to a log.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Reads a secret from `path`, without the trailing newline(s).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Secret, std::io::Error> {
        let text = std::fs::read_to_string(path)?;
        Ok(Self(text.trim_end_matches(['\n', '\r']).to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        if value == REDACTED {
            return Err(D::Error::custom(
                "\"[redacted]\" is a placeholder, not a secret",
            ));
        }
        Ok(Self(value))
    }
}

/// The secret from `file` when given (it wins), else `value`.
pub fn resolve_secret(
    value: Option<Secret>,
    file: Option<&Path>,
) -> Result<Option<Secret>, ConfigError> {
    match file {
        Some(path) => Secret::from_file(path)
            .map(Some)
            .map_err(|e| ConfigError(format!("cannot read secret file {}: {e}", path.display()))),
        None => Ok(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    #[derive(Debug, Default, Serialize, Deserialize)]
    #[serde(default)]
    struct Cfg {
        svc: Svc,
        api_key: Option<Secret>,
    }

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    #[serde(default)]
    struct Svc {
        a: String,
        b: String,
        c: String,
        d: u16,
        #[serde(with = "crate::humantime_serde")]
        every: Duration,
    }

    #[derive(Serialize)]
    struct Flags {
        svc: SvcFlags,
    }

    #[derive(Serialize)]
    struct SvcFlags {
        #[serde(skip_serializing_if = "Option::is_none")]
        c: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        d: Option<u16>,
    }

    fn toml_file(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file
    }

    #[test]
    fn overrides_beat_env_beat_file_beat_default() {
        let file = toml_file("[svc]\nb = \"file\"\nc = \"file\"\nd = 1\nevery = \"30s\"\n");
        let env = [
            ("ACCTMON__SVC__C", "env"),
            ("ACCTMON__SVC__D", "2"),
            ("X__SVC__B", "x"),
        ];
        let flags = Flags {
            svc: SvcFlags {
                c: None,
                d: Some(3),
            },
        };
        let cfg: Cfg = load_from(Some(file.path()), flags, &env).unwrap();
        let want = Svc {
            a: String::new(),
            b: "file".into(),
            c: "env".into(),
            d: 3,
            every: Duration::from_secs(30),
        };
        assert_eq!(cfg.svc, want);

        let cfg: Cfg = load_from(Some(file.path()), (), &[]).unwrap();
        assert_eq!((cfg.svc.c.as_str(), cfg.svc.d), ("file", 1));
        let cfg: Cfg = load(None, ()).unwrap();
        assert_eq!(cfg.svc, Svc::default());
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.toml");
        let error = load_from::<Cfg>(Some(&path), (), &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("absent.toml"), "{error}");
    }

    #[test]
    fn secrets_are_never_printed() {
        let secret = Secret::new("hunter2".into());
        assert_eq!(format!("{secret} {secret:?}"), "[redacted] [redacted]");
        let cfg: Cfg = load_from(None, (), &[("ACCTMON__API_KEY", "hunter2")]).unwrap();
        assert_eq!(cfg.api_key.as_ref().map(Secret::expose), Some("hunter2"));
        let dump = serde_json::to_string(&cfg).unwrap();
        assert!(
            dump.contains("\"api_key\":\"[redacted]\"") && !dump.contains("hunter2"),
            "{dump}"
        );
        assert!(serde_json::from_str::<Secret>("\"[redacted]\"").is_err());

        let file = toml_file("api_key = hunter2\n");
        let bad = [
            (
                load_from::<Cfg>(None, (), &[("ACCTMON__API_KEY", "123456789")]),
                "ACCTMON__API_KEY",
            ),
            (
                load_from::<Cfg>(None, (), &[("ACCTMON__SVC__D", "hunter2")]),
                "ACCTMON__SVC__D",
            ),
            (
                load_from::<Cfg>(Some(file.path()), (), &[]),
                "TOML parse error",
            ),
        ];
        for (result, names) in bad {
            let error = result.unwrap_err().to_string();
            assert!(error.contains(names), "{error}");
            assert!(
                !error.contains("hunter2") && !error.contains("123456789"),
                "{error}"
            );
        }
    }

    #[test]
    fn resolve_secret_prefers_the_file() {
        let file = toml_file("from-file\n");
        let given = || Some(Secret::new("given".into()));
        let secret = resolve_secret(given(), Some(file.path())).unwrap().unwrap();
        assert_eq!(secret.expose(), "from-file");
        assert_eq!(
            resolve_secret(given(), None).unwrap().unwrap().expose(),
            "given"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent-secret");
        let error = resolve_secret(None, Some(&path)).unwrap_err().to_string();
        assert!(error.contains("absent-secret"), "{error}");
    }
}
