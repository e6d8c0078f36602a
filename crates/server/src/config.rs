//! Layered configuration: command-line flags, then environment variables, then
//! an optional config file (YAML, TOML or JSON), then defaults.
//!
//! Flags and environment variables come from clap (`env = "..."` on each
//! option). The file uses the flag names as keys, flat (`collector.queue-size:
//! 5000`) or nested (`collector: {queue-size: 5000}`), as Jaeger's
//! `--config-file` does. A file value fills only options that neither a flag
//! nor the environment set. Unknown keys are an error.
//!
//! Boolean options read as Jaeger's (Go's pflag) do: `--flag`,
//! `--flag=true`, `--flag=false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
use std::any::TypeId;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use anyhow::{Context, bail};
use clap::builder::BoolishValueParser;
use clap::parser::ValueSource;
use clap::{ArgAction, Command, Parser};

/// The id every binary's options give their `--config-file` argument.
pub const CONFIG_FILE_ARG: &str = "config_file";

/// `T`'s command line, its boolean options (and its subcommands') taking
/// an optional `=value` as Go's flags do: clap's own flags refuse
/// `--es.use-aliases=true`, which Jaeger's users write and config files
/// become.
pub fn command<T: Parser>() -> Command {
    go_style_booleans(T::command())
}

fn go_style_booleans(command: Command) -> Command {
    command
        .mut_args(|arg| {
            let flag = matches!(arg.get_action(), ArgAction::SetTrue);
            let boolean = arg.get_value_parser().type_id() == TypeId::of::<bool>();
            if arg.get_long().is_none() || !(flag || boolean) {
                return arg;
            }
            // a plain flag is false unless given; an Option<bool> stays unset
            let default = flag && arg.get_default_values().is_empty();
            let arg = arg
                .action(ArgAction::Set)
                .num_args(0..=1)
                .require_equals(true)
                .default_missing_value("true")
                .value_parser(BoolishValueParser::new());
            if default {
                arg.default_value("false")
            } else {
                arg
            }
        })
        .mut_subcommands(go_style_booleans)
}

/// Parses the process's arguments and environment, then the config file
/// when `T` has a `--config-file` option.
/// `--help` and bad flags print and exit as clap does.
pub fn parse<T: Parser>() -> anyhow::Result<T> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let matches = command::<T>().get_matches_from(args.clone());
    // a command without --config-file (the operator's) has no file to read
    let config_file = matches.try_get_one::<std::path::PathBuf>(CONFIG_FILE_ARG);
    let file_values = match config_file.ok().flatten() {
        Some(path) => read_file(path)?,
        None => BTreeMap::new(),
    };
    match parse_with_file::<T>(args, &file_values) {
        Ok(t) => Ok(t),
        Err(e) => match e.downcast::<clap::Error>() {
            Ok(clap_err) => clap_err.exit(),
            Err(e) => Err(e),
        },
    }
}

/// Reads a config file into flat `flag-name -> value` pairs.
pub fn read_file(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let source = config::Config::builder()
        .add_source(config::File::from(path))
        .build()
        .with_context(|| format!("while reading config file {}", path.display()))?;
    let table: BTreeMap<String, config::Value> = source
        .try_deserialize()
        .with_context(|| format!("while reading config file {}", path.display()))?;
    let mut flat = BTreeMap::new();
    flatten("", table, &mut flat)?;
    Ok(flat)
}

fn flatten(
    prefix: &str,
    table: BTreeMap<String, config::Value>,
    out: &mut BTreeMap<String, String>,
) -> anyhow::Result<()> {
    for (key, value) in table {
        let key = if prefix.is_empty() {
            key
        } else {
            format!("{prefix}.{key}")
        };
        match value.kind {
            config::ValueKind::Table(t) => flatten(&key, t.into_iter().collect(), out)?,
            config::ValueKind::Array(items) => {
                let items: Vec<String> = items.into_iter().map(|v| v.to_string()).collect();
                out.insert(key, items.join(","));
            }
            config::ValueKind::Nil => {}
            _ => {
                out.insert(key, value.to_string());
            }
        }
    }
    Ok(())
}

/// Parses `args` (and the environment), filling options that neither set from
/// `file_values`. No file I/O, so tests call it directly.
pub fn parse_with_file<T: Parser>(
    args: Vec<OsString>,
    file_values: &BTreeMap<String, String>,
) -> anyhow::Result<T> {
    let command = command::<T>();
    let matches = command.clone().try_get_matches_from(args.clone())?;
    let mut layered = args;
    for (key, value) in file_values {
        let Some(arg) = command
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()))
        else {
            bail!("unknown option {key:?} in config file");
        };
        let id = arg.get_id().as_str();
        let set_elsewhere = matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        if !set_elsewhere {
            layered.push(format!("--{key}={value}").into());
        }
    }
    let matches = command.try_get_matches_from(layered)?;
    Ok(T::from_arg_matches(&matches)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Parser, Debug)]
    struct Opts {
        #[arg(long = "config-file")]
        config_file: Option<std::path::PathBuf>,
        #[arg(
            long = "collector.queue-size",
            env = "SPOOR_TEST_QUEUE_SIZE",
            default_value_t = 2000
        )]
        queue_size: usize,
        #[arg(long = "log-level", default_value = "info")]
        log_level: String,
        #[arg(long = "es.use-aliases", env = "SPOOR_TEST_USE_ALIASES")]
        use_aliases: bool,
        #[arg(long = "collector.otlp.enabled", default_value_t = true, action = ArgAction::Set)]
        otlp: bool,
        #[arg(long = "collector.ack-after-write")]
        ack: Option<bool>,
    }

    fn file(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn args(a: &[&str]) -> Vec<OsString> {
        std::iter::once("prog")
            .chain(a.iter().copied())
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn file_fills_defaults_but_flags_win() {
        let f = file(&[("collector.queue-size", "5"), ("log-level", "debug")]);
        let o: Opts = parse_with_file(args(&[]), &f).unwrap();
        assert_eq!((o.queue_size, o.log_level.as_str()), (5, "debug"));
        let o: Opts = parse_with_file(args(&["--collector.queue-size=7"]), &f).unwrap();
        assert_eq!((o.queue_size, o.log_level.as_str()), (7, "debug"));
    }

    #[test]
    fn unknown_file_keys_and_bad_values_are_errors() {
        let err = parse_with_file::<Opts>(args(&[]), &file(&[("nope", "1")])).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        let err = parse_with_file::<Opts>(args(&[]), &file(&[("collector.queue-size", "x")]));
        assert!(err.is_err());
    }

    #[test]
    fn booleans_take_go_style_values() {
        let parse = |a: &[&str]| parse_with_file::<Opts>(args(a), &file(&[])).unwrap();
        let o = parse(&[]);
        assert!((!o.use_aliases, o.otlp, o.ack) == (true, true, None));
        let o = parse(&["--es.use-aliases", "--collector.otlp.enabled=false"]);
        assert!(o.use_aliases && !o.otlp);
        let o = parse(&["--es.use-aliases=true", "--collector.ack-after-write=false"]);
        assert!(o.use_aliases && o.ack == Some(false));
        let o = parse(&["--es.use-aliases=false", "--collector.ack-after-write"]);
        assert!(!o.use_aliases && o.ack == Some(true));
        let o = parse_with_file::<Opts>(args(&[]), &file(&[("es.use-aliases", "true")])).unwrap();
        assert!(o.use_aliases, "config files write booleans as values");
        assert!(parse_with_file::<Opts>(args(&["--es.use-aliases=maybe"]), &file(&[])).is_err());
    }

    #[test]
    fn nested_yaml_flattens_to_flag_names() {
        let dir = std::env::temp_dir().join(format!("spoor-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("spoor.yaml");
        std::fs::write(&path, "collector:\n  queue-size: 42\nlog-level: warn\n").unwrap();
        let values = read_file(&path).unwrap();
        assert_eq!(
            values,
            file(&[("collector.queue-size", "42"), ("log-level", "warn")])
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
