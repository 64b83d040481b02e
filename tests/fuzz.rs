//! Property tests that throw arbitrary and near-valid input at berth's readers: docker's
//! run/create flags, the TOML files (berth.toml, the user config, the admin policy) and
//! the env files. None may panic; each either reads the input or says what is wrong.
//!
//! Every test is named `fuzz_*`. A run takes PROPTEST_CASES cases per test (proptest's
//! default, 256, in CI: a few seconds in all); run longer by hand with
//! `PROPTEST_CASES=100000 cargo nextest run --profile fuzz -E 'binary(fuzz)'` (the `fuzz`
//! profile lets a test run past the default profile's four minutes).

use std::path::Path;

use berth::config::file;
use berth::config::policy::Policy;
use berth::dockerargs::{self, GpuSpec, PortSpec, VolumeSpec};
use berth::dockerflags::{self, ParseOutcome};
use berth::envfile;
use berth::units;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::Config;

/// proptest's configuration, PROPTEST_CASES included.
fn config() -> Config {
    Config::default()
}

/// Runs one case's reading; an input that takes seconds to read is a finding too.
fn quickly<T>(what: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    let start = std::time::Instant::now();
    let done = what();
    let took = start.elapsed();
    prop_assert!(took.as_secs() < 5, "took {took:?}");
    Ok(done)
}

// ---------------------------------------------------------------------------------------
// Building blocks: text that is almost what a reader expects.

/// Pieces of the syntax the readers split on, and values near their limits.
const FRAGMENTS: &[&str] = &[
    "=",
    ":",
    ",",
    "/",
    "-",
    "--",
    ".",
    "..",
    "\"",
    "'",
    "\\",
    "#",
    " ",
    "\t",
    "\n",
    "\r\n",
    "\r",
    "\0",
    "\u{feff}",
    "é",
    "😀",
    "[",
    "]",
    "{",
    "}",
    "0",
    "1",
    "-1",
    "+",
    "_",
    "e",
    "65535",
    "65536",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "99999999999999999999999999999",
    "0x",
    "0o",
    "0b",
    "1.5",
    ".5",
    "1e-1",
    "1/2",
    "0/0",
    "k",
    "m",
    "g",
    "t",
    "p",
    "ib",
    "b",
    "512m",
    "1g",
    "inf",
    "NaN",
    "tcp",
    "udp",
    "sctp",
    "127.0.0.1",
    "[::1]",
    "::",
    "all",
    "count=",
    "device=",
    "driver=",
    "capabilities=",
    "options=",
    "type=",
    "bind",
    "volume",
    "tmpfs",
    "source=",
    "src=",
    "target=",
    "dst=",
    "readonly",
    "ro",
    "rw",
    "z",
    "nocopy",
    "rprivate",
    "bind-propagation=",
    "volume-opt=",
    "volume-label=",
    "tmpfs-size=",
    "tmpfs-mode=",
    "name=",
    "alias=",
    "host",
    "container:",
    "none",
    "private",
    "seccomp=",
    "seccomp=unconfined",
    "{\"a\":1}",
    "apparmor=",
    "label=",
    "no-new-privileges",
    "nofile=",
    "core=",
    "net.",
    "kernel.sem",
    "SIGKILL",
    "RTMIN+",
    "always",
    "on-failure",
    "unless-stopped",
    "no",
    "/data",
    "/workspace",
    "/",
    "/tmp",
    "~",
    "./x",
    "rwm",
    "CAP_",
    "NET_ADMIN",
    "ALL",
    "0-3",
    "host-gateway",
    "export",
    "HOST_DATA_PATH",
];

/// Text made of syntax fragments and stray characters.
fn near_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => prop::sample::select(FRAGMENTS).prop_map(str::to_string),
        1 => any::<char>().prop_map(|c| c.to_string()),
        1 => "[a-z0-9]{1,6}",
    ];
    vec(piece, 0..8).prop_map(|pieces| pieces.concat())
}

/// Any string, or near-valid text.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![1 => any::<String>(), 4 => near_text()]
}

// ---------------------------------------------------------------------------------------
// docker run/create flags → ContainerSpec

/// The flags of `berth run`, in every spelling docker accepts.
const FLAGS: &[&str] = &[
    "--project",
    "--dry-run",
    "-d",
    "--detach",
    "-i",
    "--interactive",
    "-t",
    "--tty",
    "--rm",
    "--name",
    "-e",
    "--env",
    "--env-file",
    "-w",
    "--workdir",
    "-u",
    "--user",
    "--entrypoint",
    "-l",
    "--label",
    "-h",
    "--hostname",
    "--init",
    "--read-only",
    "--restart",
    "--stop-signal",
    "--stop-timeout",
    "-v",
    "--volume",
    "--mount",
    "--tmpfs",
    "--device",
    "--group-add",
    "-p",
    "--publish",
    "--expose",
    "--network",
    "--net",
    "--add-host",
    "--dns",
    "--gpus",
    "--shm-size",
    "-m",
    "--memory",
    "--memory-swap",
    "--memory-reservation",
    "--cpus",
    "--cpuset-cpus",
    "--ipc",
    "--pid",
    "--cap-add",
    "--cap-drop",
    "--security-opt",
    "--ulimit",
    "--sysctl",
    "--pids-limit",
    "--oom-score-adj",
    "--privileged",
    "-it",
    "-itd",
    "--",
    "-",
    "--unknown",
    "-x",
];

/// One command-line word group: a flag with a separate value, a flag with its value
/// inline (`--flag=v`, `-eK=V`), or a stray word.
fn flag_words() -> impl Strategy<Value = Vec<String>> {
    let flag = prop::sample::select(FLAGS);
    prop_oneof![
        3 => (flag.clone(), value()).prop_map(|(f, v)| vec![f.to_string(), v]),
        2 => (flag.clone(), value()).prop_map(|(f, v)| {
            let joiner = if f.starts_with("--") { "=" } else { "" };
            vec![format!("{f}{joiner}{v}")]
        }),
        1 => flag.prop_map(|f| vec![f.to_string()]),
        1 => value().prop_map(|v| vec![v]),
    ]
}

fn argv() -> impl Strategy<Value = Vec<String>> {
    (vec(flag_words(), 0..8), vec(value(), 0..3)).prop_map(|(flags, tail)| {
        let mut args: Vec<String> = flags.concat();
        args.push("img".to_string());
        args.extend(tail);
        args
    })
}

fn pick(items: &'static [&'static str]) -> BoxedStrategy<String> {
    prop::sample::select(items).prop_map(str::to_string).boxed()
}

fn pattern(regex: &str) -> BoxedStrategy<String> {
    proptest::string::string_regex(regex).unwrap().boxed()
}

/// An env file for `--env-file`, made once: docker's syntax with its odd corners.
fn env_file_path() -> String {
    static PATH: std::sync::OnceLock<tempfile::TempPath> = std::sync::OnceLock::new();
    let path = PATH.get_or_init(|| {
        let file = tempfile::NamedTempFile::new().unwrap();
        let text =
            "\u{feff}# comment\nA=1\n  B = two \r\nexport C=3\nSET\nUNSET\nQ=\"quoted\"\n\nD=x=y\n";
        std::fs::write(file.path(), text).unwrap();
        file.into_temp_path()
    });
    path.to_str().unwrap().to_string()
}

/// Values docker's flags take, mostly valid: each flag with the forms its reader knows.
fn flag_value(flag: &'static str) -> BoxedStrategy<String> {
    let size = "[0-9]{1,4}(\\.[0-9])?( )?[kmgtpKMGTP]?[iI]?[bB]?";
    let port = "([1-9][0-9]{0,2}|65535|0)";
    match flag {
        "--name" => pattern("/?[a-zA-Z0-9][a-zA-Z0-9_.-]{0,10}"),
        "--env" => prop_oneof![
            pattern("[A-Za-z_][A-Za-z0-9_]{0,5}(=[ -~]{0,8})?"),
            pick(&["SET", "UNSET", "A=b=c", "A= ", "=x", " A=1", "A B=1"]),
        ]
        .boxed(),
        "--env-file" => Just(env_file_path()).boxed(),
        "--workdir" => pattern("/?[a-z/.]{0,8}"),
        "--user" => pattern("[a-z0-9:]{0,8}"),
        "--entrypoint" => pattern("[a-z/ ]{0,8}"),
        "--label" => pattern("[ a-z.]{0,6}(=[ -~]{0,6})?"),
        "--hostname" => pattern("[a-z0-9.-]{0,8}"),
        "--restart" => pick(&[
            "no", "always", "unless-stopped", "on-failure", "on-failure:3", "on-failure:-1",
            "always:1", "", "no:0", "on-failure:x", "a:b:c",
        ]),
        "--stop-signal" => pick(&[
            "SIGTERM", "9", "KILL", "RTMIN+3", "sigusr1", "0", "BOGUS", "SIGRTMAX-14", "",
        ]),
        "--stop-timeout" | "--pids-limit" | "--oom-score-adj" => prop_oneof![
            pattern("-?[0-9]{1,4}"),
            pick(&["0x1f", "010", "0b11", "1_000", "_1", "-0", "99999999999999999999"]),
        ]
        .boxed(),
        "--volume" => prop_oneof![
            pattern("/[a-z]{1,4}:/[a-z./]{1,5}(:ro|:rw,z|:nocopy|:rprivate|:Z,ro|:bogus)?"),
            pattern("[a-z][a-z0-9]{0,4}:/[a-z]{1,4}(:ro|:nocopy)?"),
            pattern("/[a-z/]{0,5}"),
            pick(&["c:/x", ":/x", "/a:/", "/a:/b:/c:/d", "a:b"]),
        ]
        .boxed(),
        "--mount" => {
            let field = prop_oneof![
                pattern("(type|Type)=(bind|volume|tmpfs|npipe)"),
                pattern("(source|src)=/?[a-z]{0,4}"),
                pattern("(target|dst|destination)=/[a-z/]{0,4}"),
                pick(&[
                    "readonly", "ro=false", "ro=1", "consistency=cached",
                    "bind-propagation=rshared", "bind-propagation=bogus",
                    "bind-nonrecursive", "volume-nocopy", "volume-nocopy=false",
                    "volume-driver=local", "volume-driver=other", "volume-opt=o=a",
                    "\"volume-opt=o=a,b\"", "volume-label=a=b", "volume-label=c",
                    "tmpfs-size=1m", "tmpfs-mode=1777", "tmpfs-mode=99999999999",
                    "\"src=/a,b\"", "bogus=1", "\"\"", "x\"y",
                ]),
            ];
            vec(field, 1..5).prop_map(|fields| fields.join(",")).boxed()
        }
        "--tmpfs" => pattern("/?[a-z/]{0,5}(:size=1m|:mode=1777,size=2m)?"),
        "--device" => pattern("(/dev/[a-z]{1,4}|[a-z]{1,3})(:/dev/[a-z]{0,4})?(:rwm|:r|:mm|:x)?"),
        "--group-add" => pattern("[a-z0-9]{1,5}"),
        "--publish" => prop_oneof![
            pattern(&format!("(127\\.0\\.0\\.1:|\\[::1\\]:|bad:|:)?({port}(-{port})?:)?{port}(-{port})?(/tcp|/udp|/sctp|/TCP|/icmp|/)?")),
            pattern("(published=[0-9]{1,3},)?target=[0-9]{1,3}(,protocol=udp)?"),
        ]
        .boxed(),
        "--expose" => pattern(&format!("{port}(-{port})?(/tcp|/udp|/x)?")),
        "--network" => pick(&[
            "bridge", "host", "none", "container:abc", "name=foo", "name=Foo,alias=x",
            "default", "", "name=", "driver-opt=x=y", "\"name=a,b\"",
        ]),
        "--add-host" => pattern("[a-z]{0,5}:(1\\.2\\.3\\.4|::1|host-gateway|bogus| 1\\.2\\.3\\.4)"),
        "--dns" => pick(&["1.1.1.1", "::1", " 8.8.8.8", "::ffff:1.2.3.4", "x", "01.1.1.1"]),
        "--gpus" => pick(&[
            "all", "2", "\"device=0,1\"", "count=all", "driver=nvidia,count=1",
            "\"capabilities=compute,utility\"", "\"options=a=1,b=2\"", "0", "-1",
            "count=1,count=2", "device=0", "\"device=0,1\",count=2", "",
        ]),
        "--shm-size" | "--memory" | "--memory-reservation" => prop_oneof![
            pattern(size),
            pick(&["0", "6m", "6291455", "1.5.5g", "1e3", " 1g", "9999999999p"]),
        ]
        .boxed(),
        "--memory-swap" => prop_oneof![pattern(size), pick(&["-1", "0", "-2"])].boxed(),
        "--cpus" => prop_oneof![
            pattern("[0-9]{1,2}(\\.[0-9]{1,3})?"),
            pick(&["1/2", "1e-1", ".5", "-1", "0", "1.0000000001", "3/0", "+2", "1e400"]),
        ]
        .boxed(),
        "--cpuset-cpus" => pattern("[0-9](-[0-9])?(,[0-9])?"),
        "--ipc" => pick(&["none", "private", "shareable", "host", "container:x", "", "bad"]),
        "--pid" => pick(&["host", "container:x", "container:", "", "bad"]),
        "--cap-add" | "--cap-drop" => pick(&[
            "NET_ADMIN", "net_admin", "CAP_SYS_ADMIN", "all", "ALL", "bogus", "cap_chown",
        ]),
        "--security-opt" => pick(&[
            "no-new-privileges", "no-new-privileges=true", "no-new-privileges:false",
            "seccomp=unconfined", "seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}",
            "seccomp={ \"a\" : [1, 2] , \"b\":\"x y\"}", "seccomp={bad", "apparmor=unconfined",
            "label=disable", "label:user:x", "bogus=1", "systempaths=unconfined", "x",
        ]),
        "--ulimit" => pattern("(nofile|core|nproc|bogus)=-?[0-9]{1,4}(:-?[0-9]{1,4})?"),
        "--sysctl" => pattern("(net\\.ipv4\\.ip_forward|kernel\\.shmmax|fs\\.mqueue\\.x|vm\\.x)=[0-9a-z ]{0,4}"),
        _ => near_text().boxed(),
    }
}

/// Flags that take a value, their short spellings, and the switches.
const VALUE_FLAGS: &[(&str, Option<&str>)] = &[
    ("--name", None),
    ("--env", Some("-e")),
    ("--env-file", None),
    ("--workdir", Some("-w")),
    ("--user", Some("-u")),
    ("--entrypoint", None),
    ("--label", Some("-l")),
    ("--hostname", Some("-h")),
    ("--restart", None),
    ("--stop-signal", None),
    ("--stop-timeout", None),
    ("--volume", Some("-v")),
    ("--mount", None),
    ("--tmpfs", None),
    ("--device", None),
    ("--group-add", None),
    ("--publish", Some("-p")),
    ("--expose", None),
    ("--network", None),
    ("--add-host", None),
    ("--dns", None),
    ("--gpus", None),
    ("--shm-size", None),
    ("--memory", Some("-m")),
    ("--memory-swap", None),
    ("--memory-reservation", None),
    ("--cpus", None),
    ("--cpuset-cpus", None),
    ("--ipc", None),
    ("--pid", None),
    ("--cap-add", None),
    ("--cap-drop", None),
    ("--security-opt", None),
    ("--ulimit", None),
    ("--sysctl", None),
    ("--pids-limit", None),
    ("--oom-score-adj", None),
];
const SWITCHES: &[&str] = &[
    "-d",
    "-i",
    "-t",
    "-it",
    "-itd",
    "--rm",
    "--init",
    "--read-only",
    "--privileged",
    "--rm=false",
    "-i=true",
    "--tty=0",
    "--detach=T",
];

/// One flag with a value its reader mostly accepts (now and then any text), spelled
/// `--flag value`, `--flag=value` or `-fvalue`; or a switch.
fn docker_flag() -> impl Strategy<Value = Vec<String>> {
    let valued = prop::sample::select(VALUE_FLAGS).prop_flat_map(|(long, short)| {
        let value = prop_oneof![8 => flag_value(long), 1 => value()];
        (value, 0..3u8).prop_map(move |(value, spelling)| match (spelling, short) {
            (0, _) => vec![long.to_string(), value],
            (1, _) => vec![format!("{long}={value}")],
            (_, Some(short)) => vec![format!("{short}{value}")],
            (_, None) => vec![long.to_string(), value],
        })
    });
    prop_oneof![
        6 => valued,
        1 => prop::sample::select(SWITCHES).prop_map(|s| vec![s.to_string()]),
    ]
}

/// A docker command line of flags with near-valid values, the image and a command.
fn docker_argv() -> impl Strategy<Value = Vec<String>> {
    let image = pick(&[
        "img",
        "busybox:1",
        "reg.example:5000/a/b@sha256:00",
        "-",
        "",
        "-- img",
        "-- -x",
        "-- --rm",
    ]);
    (vec(docker_flag(), 0..10), image, vec(value(), 0..3)).prop_map(|(flags, image, tail)| {
        let mut args: Vec<String> = flags.concat();
        match image.split_once(' ') {
            Some((dashes, image)) => args.extend([dashes.to_string(), image.to_string()]),
            None => args.push(image),
        }
        args.extend(tail);
        args
    })
}

/// A fixed environment: `-e NAME` and bare env-file lines never read the test's own.
fn lookup(name: &str) -> Option<String> {
    (name == "SET").then(|| "from-env".to_string())
}

/// Whether `args` could make berth read a file other than the test's own: `--env-file`
/// and `seccomp=FILE` open what they name, and a device would never end.
fn reads_only_safe_files(args: &[String]) -> bool {
    let opens = |a: &String| a.contains("env-file") || a.contains("seccomp");
    !args.iter().any(opens)
        || args
            .iter()
            .all(|a| !a.contains("/dev") && !a.contains("/proc") && !a.contains("/sys"))
}

/// Reads `args` as `berth run` does; the spec, or why not.
fn spec_of(args: &[String]) -> Option<Result<berth::spec::ContainerSpec, String>> {
    match dockerflags::parse_run_args("run", args) {
        Ok(run) => Some(dockerargs::spec_from_args(&run, &lookup).map_err(|e| e.0)),
        Err(ParseOutcome::Invalid(err)) => Some(Err(err.0)),
        Err(ParseOutcome::Help(_)) => None,
    }
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary words never panic the flag reader.
    #[test]
    fn fuzz_run_flags_arbitrary_words(args in vec(any::<String>(), 0..10)) {
        prop_assume!(reads_only_safe_files(&args));
        if let Some(Err(message)) = quickly(|| spec_of(&args))? {
            prop_assert!(!message.is_empty());
        }
    }

    /// Flag names with any values, in any order.
    #[test]
    fn fuzz_run_flags_any_values(args in argv()) {
        prop_assume!(reads_only_safe_files(&args));
        if let Some(Err(message)) = quickly(|| spec_of(&args))? {
            prop_assert!(!message.trim().is_empty(), "{args:?}");
        }
    }

    /// Real flags with near-valid values: read or refused with a message, and a spec that
    /// is read renders (`--dry-run`) as flags that read back as the same spec, as
    /// `spec_to_args` promises.
    #[test]
    fn fuzz_run_flags_round_trip(args in docker_argv()) {
        prop_assume!(reads_only_safe_files(&args));
        match quickly(|| spec_of(&args))? {
            None => {}
            Some(Err(message)) => prop_assert!(!message.trim().is_empty(), "{args:?}"),
            Some(Ok(spec)) => {
                let again = dockerargs::spec_to_args(&spec);
                match spec_of(&again) {
                    Some(Ok(back)) => prop_assert_eq!(back, spec, "{:?} -> {:?}", args, again),
                    other => prop_assert!(false, "{args:?} -> {again:?} -> {other:?}"),
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// TOML: berth.toml, the user config, the admin policy

const PROJECT_KEYS: &[&str] = &[
    "image",
    "command",
    "user",
    "gpus",
    "cpus",
    "memory",
    "shm_size",
    "env",
    "env_files",
    "ports",
    "volumes",
    "data",
    "retire",
    "imgae",
];
const POLICY_KEYS: &[&str] = &[
    "allowed_images",
    "forbid",
    "allowed_mount_roots",
    "env",
    "limits",
    "defaults",
    "data",
    "retire",
    "gpus",
    "reap",
    "events",
];
/// Tables and their keys, of both schemas.
const TABLES: &[(&str, &[&str])] = &[
    ("data", &["host_path", "target", "group", "hostpath"]),
    ("retire", &["disposable"]),
    (
        "env",
        &["A", "HOST_DATA_PATH", "NVIDIA_VISIBLE_DEVICES", "1"],
    ),
    (
        "limits",
        &[
            "max_gpus_per_user",
            "max_containers_per_user",
            "max_memory",
            "max_cpus",
        ],
    ),
    ("defaults", &["shm_size", "memory", "cpus"]),
    ("gpus", &["inventory", "request", "lock"]),
    (
        "reap",
        &["idle_after", "keep_alive_max", "hold_stopped", "idle_cpu"],
    ),
    ("events", &["path"]),
];

/// A TOML basic string holding `text`, whatever it contains.
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML value of any type, right or wrong for the key it lands on; now and then text
/// that is not TOML at all.
fn toml_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        4 => value().prop_map(|v| toml_string(&v)),
        2 => any::<i64>().prop_map(|n| n.to_string()),
        1 => prop::sample::select(&[
            "0", "-0", "1", "2", "-1", "0.5", "1e308", "-1e308", "1e-320", "inf", "-inf",
            "nan", "-0.0", "1_000", "0x10", "0o7", "0b1", "true", "false",
            "1979-05-27T07:32:00Z", "1979-05-27", "07:32:00", "\"\"", "''", "'''x'''",
            "\"\"\"\nmulti\"\"\"", "{}", "[]", "[[]]", "{ a = 1 }", "=", "\"unterminated",
            "[1,", "{a=", "\"\\u0000\"", "\"\\uD800\"", "'\0'",
        ][..]).prop_map(str::to_string),
        1 => any::<f64>().prop_map(|f| format!("{f:?}")),
        1 => near_text(),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(|items| format!("[{}]", items.join(", "))),
            vec((prop::sample::select(FRAGMENTS), inner), 0..3).prop_map(|pairs| {
                let body: Vec<String> = pairs
                    .into_iter()
                    .map(|(k, v)| format!("{} = {v}", toml_string(k)))
                    .collect();
                format!("{{ {} }}", body.join(", "))
            }),
        ]
    })
}

/// A document of known keys (top level and in tables) with values of any type.
fn toml_document(top_keys: &'static [&'static str]) -> impl Strategy<Value = String> {
    let top = vec((prop::sample::select(top_keys), toml_value()), 0..6);
    let table = (
        prop::sample::select(TABLES),
        vec((any::<prop::sample::Index>(), toml_value()), 0..4),
    )
        .prop_map(|((name, keys), entries)| {
            let mut text = format!("[{name}]\n");
            for (index, value) in entries {
                text.push_str(&format!("{} = {value}\n", index.get(keys)));
            }
            text
        });
    let line_end = prop::sample::select(&["\n", "\r\n"][..]);
    (top, vec(table, 0..3), line_end).prop_map(|(top, tables, end)| {
        let mut text: String = top
            .into_iter()
            .map(|(key, value)| format!("{key} = {value}\n"))
            .collect();
        text.extend(tables);
        text.replace('\n', end)
    })
}

/// A berth.toml with an image and values that mostly read: what reaches the plan.
fn plan_document() -> impl Strategy<Value = String> {
    let entry = prop_oneof![
        pick(&[
            "user = \"root\"",
            "user = \"1:1\"",
            "user = \"\"",
            "gpus = 2",
            "gpus = \"all\"",
            "gpus = \"device=0,x\"",
            "cpus = 0.5",
            "cpus = 1e-9",
            "memory = \"6m\"",
            "memory = 0",
            "shm_size = \"1g\"",
            "shm_size = 0",
            "command = \"sleep 1\"",
            "command = [\"a\", \"\"]",
            "[retire]\ndisposable = [\"\", \"**\"]"
        ]),
        value().prop_map(|v| format!("env = {{ {} = {} }}", toml_string(&v), toml_string(&v))),
        value().prop_map(|v| format!("ports = [{}]", toml_string(&v))),
        flag_value("--publish").prop_map(|v| format!("ports = [{}]", toml_string(&v))),
        flag_value("--volume").prop_map(|v| format!("volumes = [{}]", toml_string(&v))),
        value().prop_map(|v| format!("volumes = [{}]", toml_string(&v))),
        value().prop_map(|v| format!("image = {}", toml_string(&v))),
        value().prop_map(|v| format!("command = [{}]", toml_string(&v))),
        value().prop_map(|v| format!("[data]\ntarget = {}", toml_string(&v))),
        value().prop_map(|v| format!("[data]\ngroup = {}", toml_string(&v))),
        prop::sample::select(&["/data", "/d/", "/workspace2", "/home/ana/x", "/root"][..])
            .prop_map(|t| format!("[data]\ntarget = \"{t}\"")),
    ];
    vec(entry, 0..6).prop_map(|entries| {
        // Tables last, each once: a key after a table header belongs to the table.
        let (tables, keys): (Vec<String>, Vec<String>) =
            entries.into_iter().partition(|e| e.starts_with('['));
        let mut text = String::from("image = \"img\"\n");
        for key in keys {
            if !text.contains(&format!("\n{}", key.split(' ').next().unwrap_or_default())) {
                text.push_str(&key);
                text.push('\n');
            }
        }
        if let Some(table) = tables.first() {
            text.push_str(table);
            text.push('\n');
        }
        text
    })
}

/// Reads `text` as both schemas; an error must name the file and a line.
fn check_toml(text: &str) -> Result<(), TestCaseError> {
    let project = quickly(|| file::parse(text, Path::new("/p/berth.toml")).err())?;
    let policy =
        quickly(|| file::parse_as::<Policy>(text, Path::new("/etc/berth/policy.toml")).err())?;
    for (path, result) in [
        ("/p/berth.toml", project),
        ("/etc/berth/policy.toml", policy),
    ] {
        if let Some(err) = result {
            prop_assert_eq!(err.code(), 1);
            prop_assert!(
                err.message.starts_with(&format!("{path}:")),
                "{}",
                err.message
            );
            prop_assert!(!err.message.contains("Error {"), "{}", err.message);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_toml_arbitrary_text(text in any::<String>()) {
        check_toml(&text)?;
    }

    #[test]
    fn fuzz_toml_near_valid_text(text in vec(near_text(), 0..12).prop_map(|l| l.join("\n"))) {
        check_toml(&text)?;
    }

    #[test]
    fn fuzz_toml_project_keys_with_any_values(text in toml_document(PROJECT_KEYS)) {
        check_toml(&text)?;
    }

    #[test]
    fn fuzz_toml_policy_keys_with_any_values(text in toml_document(POLICY_KEYS)) {
        check_toml(&text)?;
    }

    /// A berth.toml that reads becomes a plan (or a clear refusal), and the plan a create
    /// request and a `docker run` line.
    #[test]
    fn fuzz_toml_to_plan(text in plan_document(), with_root in any::<bool>()) {
        check_plan(&text, with_root)?;
    }

    /// The file reader takes bytes: anything that is not UTF-8 is one clear error.
    #[test]
    fn fuzz_toml_file_bytes(bytes in vec(any::<u8>(), 0..256)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.toml");
        std::fs::write(&path, &bytes).unwrap();
        match file::read(&path) {
            Ok(config) => prop_assert!(config.is_some()),
            Err(err) => {
                prop_assert_eq!(err.code(), 1);
                prop_assert!(err.message.contains("berth.toml"), "{}", err.message);
                if std::str::from_utf8(&bytes).is_err() {
                    prop_assert!(err.message.contains("UTF-8"), "{}", err.message);
                }
            }
        }
    }

    /// The scalar readers behind both the flags and the files.
    #[test]
    fn fuzz_scalar_values(text in value()) {
        if let Ok(bytes) = units::parse_size(&text) {
            prop_assert_eq!(units::parse_size(&units::format_size(bytes)), Ok(bytes));
        }
        if let Ok(nano) = units::parse_cpus(&text) {
            prop_assert!(nano > 0);
            prop_assert_eq!(units::parse_cpus(&units::format_cpus(nano)), Ok(nano));
        }
        if let Ok(gpus) = GpuSpec::parse(&text) {
            prop_assert_eq!(GpuSpec::parse(&gpus.to_string()), Ok(gpus));
        }
        if let Ok(port) = PortSpec::parse(&text) {
            let again = PortSpec::parse(&port.to_string());
            prop_assert!(again.is_ok(), "{text:?} -> {port} -> {again:?}");
        }
        if let Ok(volume) = VolumeSpec::parse(&text) {
            prop_assert_eq!(VolumeSpec::parse(&volume.to_arg()), Ok(volume));
        }
        let _ = units::parse_duration(&text);
        if let Ok(name) = berth::host::ProjectName::parse(&text) {
            let name = name.as_str();
            prop_assert!(!name.contains('/') && name != "." && name != "..");
            prop_assert!(!name.is_empty() && name.len() <= berth::host::MAX_PROJECT_NAME);
        }
    }
}

fn check_plan(text: &str, with_root: bool) -> Result<(), TestCaseError> {
    use berth::config::{self, Files};
    use berth::plan::{self, DataRoot, HostFacts};
    let path = Path::new("/ws/p/berth.toml");
    let Ok(project) = file::parse(text, path) else {
        return Ok(());
    };
    let files = Files {
        policy: None,
        project: Some((path.to_path_buf(), project)),
        user: None,
    };
    let settings = config::layer(&files, &Default::default(), None, Path::new("/cwd"));
    let host = HostFacts {
        user: berth::host::HostUser {
            uid: 1000,
            gid: 1000,
            name: "ana".into(),
        },
        workspace: "/ws/p".into(),
        home: "/h/p".into(),
        data_root: with_root.then(|| DataRoot {
            path: "/mnt/data".into(),
            id: "id".into(),
        }),
    };
    let name = berth::host::ProjectName::parse("p").unwrap();
    match quickly(|| plan::build(&name, &settings, &host))? {
        Ok(plan) => {
            let spec = plan.to_spec();
            let _ = plan.docker_run_line();
            let args = dockerargs::spec_to_args(&spec);
            match spec_of(&args) {
                Some(Ok(_)) => {}
                other => prop_assert!(false, "{text:?}\n-> {args:?}\n-> {other:?}"),
            }
        }
        Err(err) => {
            prop_assert!(!err.message.is_empty());
            prop_assert!(matches!(err.code(), 1 | 3), "{}", err.message);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Env files: compose's syntax (`.env`, `env_files`) and docker's (`--env-file`)

/// A key, valid or not.
fn env_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[A-Za-z_][A-Za-z0-9_.-]{0,8}",
        1 => prop::sample::select(&[
            "", " ", "A B", "1A", "A$B", "export", "exporter", "-A", "é", "A\0", "K:",
            "HOST_DATA_PATH", "\u{feff}A",
        ][..]).prop_map(str::to_string),
        1 => value(),
    ]
}

/// One line of an env file in one of the ways people write them.
fn env_line() -> impl Strategy<Value = String> {
    let space = prop::sample::select(&["", " ", "\t", "  "][..]);
    let export = prop::sample::select(&["", "export ", "export\t", "export"][..]);
    let equals = prop::sample::select(&["=", " = ", "", "==", "=\"", "='"][..]);
    let quoted = prop_oneof![
        value(),
        value().prop_map(|v| format!("'{v}'")),
        value().prop_map(|v| format!("\"{v}\"")),
        value().prop_map(|v| format!("\"{v}")),
        value().prop_map(|v| format!("{v} # comment")),
        "[a-z]{0,4}".prop_map(|v| format!("\"{v}\\\"\\n\\$\\q\"")),
        (0usize..200_000).prop_map(|n| "x".repeat(n)),
    ];
    prop_oneof![
        8 => (space.clone(), export, env_key(), equals, quoted, space)
            .prop_map(|(a, e, k, q, v, b)| format!("{a}{e}{k}{q}{v}{b}")),
        1 => Just(String::new()),
        1 => value().prop_map(|v| format!("# {v}")),
        1 => value(),
    ]
}

fn env_text() -> impl Strategy<Value = String> {
    let end = prop::sample::select(&["\n", "\r\n", "\r", "\0\n"][..]);
    (vec((env_line(), end), 0..8), any::<bool>()).prop_map(|(lines, bom)| {
        let body: String = lines.into_iter().map(|(line, end)| line + end).collect();
        if bom {
            format!("\u{feff}{body}")
        } else {
            body
        }
    })
}

/// A variable that compose reads back exactly: a safe key and a value in any quoting.
fn written_entry() -> impl Strategy<Value = (String, String, String)> {
    let key = "[A-Za-z_][A-Za-z0-9_]{0,8}";
    let plain = "[A-Za-z0-9_./:@%+-]{0,12}";
    let spaced = "[A-Za-z0-9 #$'=]{0,12}";
    prop_oneof![
        (key, plain).prop_map(|(k, v)| (format!("{k}={v}"), k, v)),
        (key, plain).prop_map(|(k, v)| (format!("export {k} = {v}  # note"), k, v)),
        (key, "[A-Za-z0-9 #$\"=\\\\]{0,12}").prop_map(|(k, v)| (format!("{k}='{v}'"), k, v)),
        (key, spaced).prop_map(|(k, v)| {
            let escaped = v.replace('$', "\\$");
            (format!("{k}=\"{escaped}\" # c"), k, v)
        }),
    ]
}

/// Reads docker's env-file `bytes` through `berth run --env-file`.
fn docker_env_file(bytes: &[u8]) -> Result<Vec<String>, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("env");
    std::fs::write(&path, bytes).unwrap();
    let args = ["--env-file", path.to_str().unwrap(), "img"].map(str::to_string);
    match spec_of(&args) {
        Some(result) => result.map(|spec| spec.env),
        None => Err("help".into()),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_compose_env_arbitrary_text(text in any::<String>()) {
        check_compose(&text)?;
    }

    #[test]
    fn fuzz_compose_env_near_valid_lines(text in env_text()) {
        check_compose(&text)?;
    }

    /// What a person writes, compose reads back: every quoting style, `export`,
    /// comments, CRLF.
    #[test]
    fn fuzz_compose_env_reads_back_what_was_written(
        entries in vec(written_entry(), 0..8),
        crlf in any::<bool>(),
    ) {
        let end = if crlf { "\r\n" } else { "\n" };
        let text: String = entries.iter().map(|(line, _, _)| format!("{line}{end}")).collect();
        let parsed = envfile::parse(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let got: Vec<(String, Option<String>)> =
            parsed.into_iter().map(|e| (e.key, e.value)).collect();
        let want: Vec<(String, Option<String>)> =
            entries.into_iter().map(|(_, k, v)| (k, Some(v))).collect();
        prop_assert_eq!(got, want, "{:?}", text);
    }

    #[test]
    fn fuzz_docker_env_file_bytes(bytes in vec(any::<u8>(), 0..512)) {
        check_docker_env(&bytes)?;
    }

    #[test]
    fn fuzz_docker_env_file_near_valid_lines(text in env_text()) {
        check_docker_env(text.as_bytes())?;
    }
}

fn check_compose(text: &str) -> Result<(), TestCaseError> {
    let lines = text.lines().count().max(1);
    match quickly(|| envfile::parse(text))? {
        Ok(entries) => {
            for entry in entries {
                prop_assert!(!entry.key.is_empty());
                prop_assert!((1..=lines).contains(&entry.line), "{entry:?} of {lines}");
            }
        }
        Err(err) => {
            prop_assert!((1..=lines).contains(&err.line), "{err} of {lines}");
            prop_assert!(!err.message.is_empty());
        }
    }
    Ok(())
}

fn check_docker_env(bytes: &[u8]) -> Result<(), TestCaseError> {
    match quickly(|| docker_env_file(bytes))? {
        Ok(env) => {
            for entry in env {
                prop_assert!(!entry.starts_with('='), "{entry:?}");
            }
        }
        Err(message) => prop_assert!(message.contains("env"), "{message}"),
    }
    Ok(())
}
