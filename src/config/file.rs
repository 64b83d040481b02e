//! The TOML schema shared by berth.toml, the user config and the admin policy, and the
//! reader that turns a broken file into an error naming the file, line and key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use super::policy::Span;
use crate::dockerargs::{GpuSpec, PortSpec, VolumeSpec};
use crate::error::{Error, Result};
use crate::suggest;
use crate::units::{parse_cpus, parse_size};

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
    #[serde(default, deserialize_with = "env_table")]
    pub env: BTreeMap<String, ScalarText>,
    #[serde(default)]
    pub env_files: Vec<String>,
    #[serde(default)]
    pub ports: Vec<Port>,
    #[serde(default)]
    pub volumes: Vec<Volume>,
    /// Container paths kept in the project's own named volumes.
    #[serde(default)]
    pub persist: Vec<String>,
    #[serde(default)]
    pub data: DataSection,
    #[serde(default)]
    pub retire: RetireSection,
    #[serde(default)]
    pub build: BuildSection,
    #[serde(default)]
    pub backup: BackupSection,
    #[serde(default)]
    pub snapshot: SnapshotSection,
    #[serde(default)]
    pub slurm: SlurmSection,
}

/// `[slurm]`: how `deploy --slurm` submits the project's job. The policy's are
/// defaults (and it may require Slurm); the user config's and the project's win, and a
/// flag wins over all.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmSection {
    pub partition: Option<String>,
    /// The job's time limit, as sbatch takes it.
    pub time: Option<String>,
    pub account: Option<String>,
    /// More sbatch options, each one word (`--qos=long`, `--constraint=a100`).
    pub options: Option<Vec<String>>,
}

/// `[snapshot]`: how often `berth reap` copies the container's unsaved changes out,
/// how many copies are kept, and whether disposable paths go too. The policy's are
/// defaults, and its bounds hold whatever a file says.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSection {
    pub every: Option<Span>,
    pub keep: Option<usize>,
    pub all: Option<bool>,
}

/// `[backup]`: where `berth backup` writes and how often `berth reap` takes one (the
/// user config only; the policy fixes `every` and `keep`), and what of the workspace it
/// leaves out (every file adds to the list).
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupSection {
    /// The folder archives go to.
    pub dir: Option<String>,
    /// How often a scheduled backup is taken.
    pub every: Option<Span>,
    /// How many scheduled archives of each project are kept.
    pub keep: Option<usize>,
    /// Workspace paths left out, as `[retire] disposable` writes them.
    #[serde(default)]
    pub exclude: Vec<String>,
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
    /// `berth shell` and a deploy of a running project say so when its container's
    /// writable layer holds more than this.
    pub warn_over: Option<Size>,
}

/// `[build]`: how `berth build` builds the project's image. Paths are relative to the
/// workspace; read from the project's berth.toml only.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSection {
    /// The Dockerfile, `Dockerfile` in the context by default.
    pub dockerfile: Option<String>,
    /// The context folder, the workspace by default.
    pub context: Option<String>,
    #[serde(default)]
    pub args: BTreeMap<String, ScalarText>,
    /// The stage to build (`--target`).
    pub target: Option<String>,
    /// The largest context sent; 1 GiB by default.
    pub max_context: Option<Size>,
}

/// Reads and checks one file. A file that does not exist is `Ok(None)`.
pub fn read(path: &Path) -> Result<Option<FileConfig>> {
    read_as(path)
}

/// [`read`] for any schema (the admin policy has its own).
pub fn read_as<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match read_text(path, "TOML")? {
        Some(text) => parse_as(&text, path).map(Some),
        None => Ok(None),
    }
}

/// The largest configuration or env file berth reads: far more than any real one holds,
/// and small enough that a huge or endless file (a mistake, a device) is refused at
/// once instead of being parsed for minutes.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// The text of the file at `path`, or `None` where there is none (nothing at the path,
/// or a file where a directory on the way should be). `kind` names the syntax for the
/// error about a file that is not UTF-8.
pub fn read_text(path: &Path, kind: &str) -> Result<Option<String>> {
    use std::io::Read;
    use std::os::unix::fs::FileTypeExt;
    let absent = |err: &std::io::Error| {
        matches!(
            err.kind(),
            std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
        )
    };
    // Opening a named pipe would wait for a writer, for ever.
    match std::fs::metadata(path) {
        Ok(meta) if meta.file_type().is_fifo() || meta.file_type().is_socket() => {
            return Err(Error::failed(format!(
                "cannot read {}: it is a pipe or a socket, not a file",
                path.display()
            )))
        }
        Err(err) if absent(&err) => return Ok(None),
        _ => {}
    }
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if absent(&err) => return Ok(None),
        Err(err) => return Err(Error::io("read", path, err)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| Error::io("read", path, err))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Error::failed(format!(
            "{} is larger than {} MiB, the most berth reads",
            path.display(),
            MAX_FILE_BYTES >> 20
        ))
        .hint("is it the right file? configuration and env files are a few lines long"));
    }
    String::from_utf8(bytes).map(Some).map_err(|err| {
        let valid = &err.as_bytes()[..err.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        Error::failed(format!(
            "{}:{line}: not a text file ({kind} must be UTF-8)",
            path.display()
        ))
    })
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

/// An `env` table whose names docker accepts (not empty, no `=`) and whose text holds no
/// NUL byte, which no process environment can: refused at its line rather than by the
/// engine after the workspace exists.
pub fn env_table<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, ScalarText>, D::Error> {
    let table = BTreeMap::<String, ScalarText>::deserialize(deserializer)?;
    for (key, ScalarText(value)) in &table {
        if key.is_empty() || key.contains(['=', '\0']) {
            return Err(de::Error::custom(format!(
                "invalid variable name {key:?}: a name is not empty and holds no = or NUL"
            )));
        }
        if value.contains('\0') {
            return Err(de::Error::custom(format!(
                "the value of {key} holds a NUL byte, which no environment can"
            )));
        }
    }
    Ok(table)
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
    fn env_tables_hold_only_names_and_values_an_environment_can() {
        for (text, want) in [
            ("env = { \"\" = \"x\" }", "invalid variable name \"\""),
            ("env = { \"A=B\" = \"x\" }", "invalid variable name \"A=B\""),
            ("env = { \"A\\u0000\" = 1 }", "invalid variable name"),
            (
                "\n[env]\nA = \"x\\u0000y\"",
                "the value of A holds a NUL byte",
            ),
        ] {
            let err = parse_str(text).unwrap_err();
            assert!(err.message.starts_with("/p/berth.toml:"), "{}", err.message);
            assert!(err.message.contains(want), "{text}: {}", err.message);
            let err =
                parse_as::<crate::config::policy::Policy>(text, Path::new("/p.toml")).unwrap_err();
            assert!(err.message.contains(want), "{text}: {}", err.message);
        }
        assert_eq!(
            parse_str("env = { \"a.b-c\" = \" \" }").unwrap().env.len(),
            1
        );
    }

    #[test]
    fn reading_a_file_that_is_not_a_small_text_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.toml");
        // Missing, or under a file where a directory should be: no file.
        assert!(read(&path).unwrap().is_none());
        std::fs::write(dir.path().join("file"), "").unwrap();
        assert!(read(&dir.path().join("file/berth.toml")).unwrap().is_none());
        // Not UTF-8: the line of the first bad byte.
        std::fs::write(&path, b"image = \"x\"\n\nuser = \"\xff\"\n").unwrap();
        let err = read(&path).unwrap_err();
        let want = format!("{}:3: not a text file (TOML must be UTF-8)", path.display());
        assert_eq!(err.message, want);
        // A directory.
        let err = read(dir.path()).unwrap_err();
        assert!(err.message.ends_with(": is a directory"), "{}", err.message);
        // Larger than the cap: refused before any parsing, however it goes on.
        let big = format!("# {}\n", "x".repeat(MAX_FILE_BYTES as usize));
        std::fs::write(&path, big).unwrap();
        let err = read(&path).unwrap_err();
        assert!(err
            .message
            .ends_with("is larger than 1 MiB, the most berth reads"));
        let err = read(Path::new("/dev/zero")).unwrap_err();
        assert!(err.message.contains("larger than 1 MiB"), "{}", err.message);
        // A device that ends is read (BERTH_CONFIG=/dev/null: no user config).
        assert!(read(Path::new("/dev/null")).unwrap().is_some());
        // A named pipe would wait for a writer for ever.
        let fifo = dir.path().join("fifo");
        use rustix::fs::{mknodat, FileType, Mode, CWD};
        mknodat(CWD, &fifo, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
        let err = read(&fifo).unwrap_err();
        assert!(
            err.message.contains("a pipe or a socket"),
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
