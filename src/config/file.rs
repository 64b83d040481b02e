//! The TOML schema shared by berth.toml, the user config and the admin policy, and the
//! reader that turns a broken file into an error naming the file, line and key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use crate::dockerargs::{parse_cpus, parse_size, GpuSpec, PortSpec, VolumeSpec};
use crate::error::{Error, Result};
use crate::suggest;

/// One configuration file, every key optional. Values are checked as they are read, so a
/// bad size or port is reported at its line.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub image: Option<String>,
    pub command: Option<Argv>,
    pub user: Option<String>,
    pub gpus: Option<Gpus>,
    pub cpus: Option<Cpus>,
    pub memory: Option<Size>,
    pub shm_size: Option<Size>,
    #[serde(default)]
    pub env: BTreeMap<String, ScalarText>,
    #[serde(default)]
    pub env_files: Vec<String>,
    #[serde(default)]
    pub ports: Vec<Port>,
    #[serde(default)]
    pub volumes: Vec<Volume>,
    #[serde(default)]
    pub data: DataSection,
    #[serde(default)]
    pub retire: RetireSection,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    pub host_path: Option<String>,
    pub target: Option<String>,
    pub group: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetireSection {
    /// Paths whose changes never block a retire (replaces the default list).
    pub disposable: Option<Vec<String>>,
}

/// Reads and checks one file. A file that does not exist is `Ok(None)`.
pub fn read(path: &Path) -> Result<Option<FileConfig>> {
    read_as(path)
}

/// [`read`] for any schema (the admin policy has its own).
pub fn read_as<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) if err.kind() == std::io::ErrorKind::InvalidData => {
            return Err(Error::failed(format!(
                "{}: not a text file (TOML must be UTF-8)",
                path.display()
            )))
        }
        Err(err) => return Err(Error::io("read", path, err)),
    };
    parse_as(&text, path).map(Some)
}

pub fn parse(text: &str, path: &Path) -> Result<FileConfig> {
    parse_as(text, path)
}

pub fn parse_as<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T> {
    toml::from_str(text).map_err(|err| explain(&err, text, path))
}

/// A TOML or schema error as `file:line:column: what`, with a suggestion for a
/// misspelt key.
fn explain(err: &toml::de::Error, text: &str, path: &Path) -> Error {
    let (line, column) = err
        .span()
        .map(|span| line_and_column(text, span.start))
        .unwrap_or((1, 1));
    let message = err.message().trim().to_string();
    let place = format!("{}:{line}:{column}", path.display());
    if let Some((key, expected)) = unknown_key(&message) {
        let candidates = expected.iter().map(String::as_str);
        let error = Error::failed(format!("{place}: unknown key `{key}`"));
        return match suggest::closest(&key, candidates) {
            Some(close) => error.hint(format!("did you mean `{close}`?")),
            None => error.hint(format!("known keys here: {}", expected.join(", "))),
        };
    }
    Error::failed(format!("{place}: {message}"))
        .hint("see the configuration reference in the README")
}

/// Serde's "unknown field `x`, expected one of `a`, `b`" as (x, [a, b]).
fn unknown_key(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field ")?;
    let mut quoted = rest.split('`').skip(1).step_by(2).map(str::to_string);
    let key = quoted.next()?;
    Some((key, quoted.collect()))
}

fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A scalar (string, number or boolean) kept as the text a person would write.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalarText(pub String);

impl<'de> Deserialize<'de> for ScalarText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = ScalarText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(ScalarText(v.to_string()))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// Defines a newtype read from a scalar through one of dockerargs' parsers, so the file
/// reader reports a bad value at its line with the parser's own words.
macro_rules! parsed_scalar {
    ($(#[$doc:meta])* $name:ident($inner:ty) = $parse:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name(pub $inner);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let ScalarText(text) = ScalarText::deserialize(deserializer)?;
                $parse(&text).map($name).map_err(de::Error::custom)
            }
        }
    };
}

parsed_scalar!(
    /// A size: `32g`, or a number of bytes.
    Size(u64) = parse_size
);
parsed_scalar!(
    /// CPUs as docker's NanoCpus.
    Cpus(i64) = parse_cpus
);
parsed_scalar!(
    /// `all`, a count, or `device=0,1`.
    Gpus(GpuSpec) = GpuSpec::parse
);
parsed_scalar!(Port(PortSpec) = PortSpec::parse);
parsed_scalar!(Volume(VolumeSpec) = VolumeSpec::parse);

/// A command: a list of words, or one string run by `/bin/sh -c`.
#[derive(Debug, Clone, PartialEq)]
pub struct Argv(pub Vec<String>);

impl<'de> Deserialize<'de> for Argv {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ArgvVisitor;
        impl<'de> Visitor<'de> for ArgvVisitor {
            type Value = Argv;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of strings, or one string for /bin/sh -c")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                if v.trim().is_empty() {
                    return Err(E::custom("the command is empty"));
                }
                Ok(Argv(vec!["/bin/sh".into(), "-c".into(), v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut words = Vec::new();
                while let Some(word) = seq.next_element::<String>()? {
                    words.push(word);
                }
                if words.is_empty() {
                    return Err(de::Error::custom("the command is empty"));
                }
                Ok(Argv(words))
            }
        }
        deserializer.deserialize_any(ArgvVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<FileConfig> {
        parse(text, Path::new("/p/berth.toml"))
    }

    #[test]
    fn reads_every_key() {
        let config = parse_str(
            r#"
            image = "pytorch:2"
            command = ["python", "train.py"]
            user = "root"
            gpus = 2
            cpus = 1.5
            memory = "32g"
            shm_size = 1073741824
            env = { A = "x", N = 3 }
            env_files = [".env.local"]
            ports = ["8888:8888"]
            volumes = ["/scratch:/scratch:ro"]
            [data]
            host_path = "../data"
            target = "/mnt/data"
            group = "team"
            [retire]
            disposable = ["/tmp"]
            "#,
        )
        .unwrap();
        assert_eq!(config.image.as_deref(), Some("pytorch:2"));
        assert_eq!(config.command.unwrap().0, ["python", "train.py"]);
        assert_eq!(config.gpus.unwrap().0, GpuSpec::Count(2));
        assert_eq!(config.cpus.unwrap().0, 1_500_000_000);
        assert_eq!(config.memory.unwrap().0, 32 << 30);
        assert_eq!(config.shm_size.unwrap().0, 1 << 30);
        assert_eq!(config.env["N"], ScalarText("3".into()));
        assert_eq!(config.ports[0].0.container_port, 8888);
        assert_eq!(config.data.host_path.as_deref(), Some("../data"));
        assert_eq!(config.retire.disposable.unwrap(), ["/tmp"]);
    }

    #[test]
    fn a_command_string_runs_through_the_shell() {
        let config = parse_str(r#"command = "python train.py > log""#).unwrap();
        assert_eq!(
            config.command.unwrap().0,
            ["/bin/sh", "-c", "python train.py > log"]
        );
    }

    #[test]
    fn unknown_key_names_file_line_and_suggestion() {
        let err = parse_str("image = \"x\"\nimgae = \"y\"\n").unwrap_err();
        assert_eq!(err.code(), 1);
        assert!(
            err.message
                .starts_with("/p/berth.toml:2:1: unknown key `imgae`"),
            "{}",
            err.message
        );
        assert_eq!(err.hint.as_deref(), Some("did you mean `image`?"));
    }

    #[test]
    fn unknown_key_in_a_table_suggests_from_that_table() {
        let err = parse_str("[data]\nhostpath = \"/d\"\n").unwrap_err();
        assert!(
            err.message.contains(":2:1: unknown key `hostpath`"),
            "{}",
            err.message
        );
        assert_eq!(err.hint.as_deref(), Some("did you mean `host_path`?"));
    }

    #[test]
    fn a_stranger_key_lists_the_known_ones() {
        let err = parse_str("colour = 1").unwrap_err();
        assert!(err
            .hint
            .unwrap()
            .starts_with("known keys here: image, command"));
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = parse_str("image = \"x\"\nmemory = \n").unwrap_err();
        assert!(
            err.message.starts_with("/p/berth.toml:2:"),
            "{}",
            err.message
        );
    }

    #[test]
    fn bad_values_are_reported_at_their_line_in_the_parsers_words() {
        let err = parse_str("\n\nmemory = \"32x\"").unwrap_err();
        assert!(
            err.message.starts_with("/p/berth.toml:3:"),
            "{}",
            err.message
        );
        assert!(
            err.message.contains("invalid size \"32x\""),
            "{}",
            err.message
        );
        let err = parse_str("gpus = true").unwrap_err();
        assert!(err.message.contains("invalid gpus"), "{}", err.message);
        let err = parse_str("image = 3").unwrap_err();
        assert!(err.message.contains("expected a string"), "{}", err.message);
        let err = parse_str("command = []").unwrap_err();
        assert!(
            err.message.contains("the command is empty"),
            "{}",
            err.message
        );
    }

    #[test]
    fn line_and_column_count_characters() {
        assert_eq!(line_and_column("ab\ncdé\nx", 0), (1, 1));
        assert_eq!(line_and_column("ab\ncdé\nx", 3), (2, 1));
        assert_eq!(line_and_column("ab\ncdé\nx", 8), (3, 1));
        assert_eq!(line_and_column("ab\ncdé\nx", 7), (2, 4));
    }
}
