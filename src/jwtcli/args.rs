//! The flags of `natrix jwt` subcommands, declared once per command: the
//! same table parses the command line and writes its `--help`.
//!
//! Flags are spelled `--name value`, `--name=value` or, for switches,
//! `--name` alone. A flag given twice is an error unless it is declared
//! repeatable (then each value is kept, and comma-separated values are
//! split). Anything not starting with `-` is positional. The table-driven
//! shape keeps the rest of the CLI (`src/cli.rs`, parsed by hand) and this
//! one independent, without a parsing crate.

use std::collections::BTreeMap;

/// One flag of a command.
#[derive(Debug, Clone, Copy)]
pub struct Flag {
    pub name: &'static str,
    /// The value's placeholder (`DUR`, `SUBJECT`), or `None` for a switch.
    pub value: Option<&'static str>,
    /// May be given more than once (values accumulate; commas split).
    pub many: bool,
    /// The value is optional and then only given inline (`--flag=V`);
    /// alone, the flag's value is empty.
    pub optional: bool,
    pub help: &'static str,
}

/// A flag taking one value.
pub const fn opt(name: &'static str, value: &'static str, help: &'static str) -> Flag {
    Flag {
        name,
        value: Some(value),
        many: false,
        optional: false,
        help,
    }
}

/// A flag whose value is optional (`--flag` or `--flag=V`).
pub const fn opt_value(name: &'static str, value: &'static str, help: &'static str) -> Flag {
    Flag {
        name,
        value: Some(value),
        many: false,
        optional: true,
        help,
    }
}

/// A repeatable flag.
pub const fn many(name: &'static str, value: &'static str, help: &'static str) -> Flag {
    Flag {
        name,
        value: Some(value),
        many: true,
        optional: false,
        help,
    }
}

/// A switch.
pub const fn switch(name: &'static str, help: &'static str) -> Flag {
    Flag {
        name,
        value: None,
        many: false,
        optional: false,
        help,
    }
}

/// Joins three flag tables into one (at compile time; a wrong `N` stops
/// the build).
pub const fn concat<const N: usize>(parts: [&'static [Flag]; 3]) -> [Flag; N] {
    let mut out = [parts[0][0]; N];
    let (mut i, mut p) = (0, 0);
    while p < 3 {
        let mut j = 0;
        while j < parts[p].len() {
            out[i] = parts[p][j];
            i += 1;
            j += 1;
        }
        p += 1;
    }
    assert!(i == N, "flag table size");
    out
}

/// A command's declaration.
#[derive(Debug, Clone, Copy)]
pub struct Command {
    /// `jwt issue`, `jwt add user` ...
    pub path: &'static str,
    pub about: &'static str,
    /// Positional arguments, as shown in the usage line (`<FILE>`), and
    /// how many at most.
    pub positional: Option<(&'static str, usize)>,
    pub flags: &'static [Flag],
}

impl Command {
    /// The `--help` text.
    pub fn help(&self) -> String {
        let pos = self
            .positional
            .map(|(p, _)| format!(" {p}"))
            .unwrap_or_default();
        let mut s = format!(
            "{}\n\nUsage: natrix {}{pos} [OPTIONS]\n\nOptions:\n",
            self.about, self.path
        );
        let cols: Vec<String> = self
            .flags
            .iter()
            .map(|f| match f.value {
                Some(v) if f.optional => format!("--{}[=<{v}>]", f.name),
                Some(v) => format!("--{} <{v}>", f.name),
                None => format!("--{}", f.name),
            })
            .collect();
        let width = cols.iter().map(String::len).max().unwrap_or(0).max(10);
        for (f, c) in self.flags.iter().zip(&cols) {
            let rep = if f.many { " (repeatable)" } else { "" };
            s.push_str(&format!("  {c:width$}  {}{rep}\n", f.help));
        }
        s.push_str(&format!("  {:width$}  Print help\n", "-h, --help"));
        s
    }

    /// Parses `args` (after the command words) against the table.
    pub fn parse(&self, args: &[String]) -> Result<Parsed, CliError> {
        let mut p = Parsed {
            command: self.path,
            values: BTreeMap::new(),
            positional: Vec::new(),
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            if arg == "-h" || arg == "--help" {
                return Err(CliError::Help(self.help()));
            }
            let Some(body) = arg.strip_prefix("--") else {
                if arg.starts_with('-') && arg.len() > 1 {
                    return Err(self.err(format!("unknown flag {arg:?}")));
                }
                p.positional.push(arg.clone());
                continue;
            };
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let Some(flag) = self.flags.iter().find(|f| f.name == name) else {
                return Err(self.err(format!("unknown flag --{name}")));
            };
            let value = match (flag.value, inline) {
                (None, None) => "true".to_string(),
                (None, Some(v)) if v == "true" || v == "false" => v,
                (None, Some(v)) => {
                    return Err(self.err(format!("--{name} is a switch, it takes no value {v:?}")))
                }
                (Some(_), Some(v)) => v,
                (Some(_), None) if flag.optional => String::new(),
                (Some(meta), None) => it
                    .next()
                    .cloned()
                    .ok_or_else(|| self.err(format!("--{name} needs a value <{meta}>")))?,
            };
            let slot = p.values.entry(flag.name).or_default();
            if !flag.many && !slot.is_empty() {
                return Err(self.err(format!("--{name} given twice")));
            }
            if flag.many {
                slot.extend(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(String::from),
                );
            } else {
                slot.push(value);
            }
        }
        let max = self.positional.map_or(0, |(_, n)| n);
        if p.positional.len() > max {
            return Err(self.err(format!(
                "unexpected argument {:?}",
                p.positional[max.min(p.positional.len() - 1)]
            )));
        }
        Ok(p)
    }

    fn err(&self, msg: String) -> CliError {
        CliError::Usage(format!(
            "natrix {}: {msg} (see natrix {} --help)",
            self.path, self.path
        ))
    }
}

/// Why a command did not run.
#[derive(Debug)]
pub enum CliError {
    /// `--help`: the text to print, exit 0.
    Help(String),
    /// Bad command line: exit 2.
    Usage(String),
    /// The command failed: exit 1.
    Failed(String),
}

impl From<String> for CliError {
    fn from(s: String) -> CliError {
        CliError::Failed(s)
    }
}

/// The flags of one parsed command line.
#[derive(Debug)]
pub struct Parsed {
    command: &'static str,
    values: BTreeMap<&'static str, Vec<String>>,
    pub positional: Vec<String>,
}

impl Parsed {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    pub fn all(&self, name: &str) -> &[String] {
        self.values.get(name).map_or(&[], Vec::as_slice)
    }

    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    pub fn switch(&self, name: &str) -> bool {
        self.get(name) == Some("true")
    }

    /// A required flag's value.
    pub fn need(&self, name: &str) -> Result<&str, CliError> {
        self.get(name).ok_or_else(|| {
            CliError::Usage(format!(
                "natrix {}: --{name} is required (see natrix {} --help)",
                self.command, self.command
            ))
        })
    }

    /// A flag's value as an integer, naming the flag when it is not one.
    pub fn int(&self, name: &str) -> Result<Option<i64>, CliError> {
        self.get(name)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    CliError::Usage(format!(
                        "natrix {}: --{name} {v:?} is not an integer",
                        self.command
                    ))
                })
            })
            .transpose()
    }

    /// A usage error about this command.
    pub fn usage(&self, msg: impl std::fmt::Display) -> CliError {
        CliError::Usage(format!("natrix {}: {msg}", self.command))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CMD: Command = Command {
        path: "jwt test",
        about: "A test command.",
        positional: Some(("<FILE>", 1)),
        flags: &[
            opt("name", "NAME", "the name"),
            many("allow-pub", "SUBJECT", "subjects"),
            switch("bearer", "a bearer token"),
        ],
    };

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_values_and_errors() {
        let p = CMD
            .parse(&args(&[
                "f",
                "--name=x",
                "--allow-pub",
                "a.>,b",
                "--allow-pub",
                "c",
                "--bearer",
            ]))
            .unwrap();
        assert_eq!(p.get("name"), Some("x"));
        assert_eq!(p.all("allow-pub"), ["a.>", "b", "c"]);
        assert!(p.switch("bearer"));
        assert_eq!(p.positional, ["f"]);
        let e = |a: &[&str]| match CMD.parse(&args(a)) {
            Err(CliError::Usage(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(e(&["--nope"]).contains("unknown flag --nope"));
        assert!(e(&["--name"]).contains("--name needs a value <NAME>"));
        assert!(e(&["--name", "a", "--name", "b"]).contains("--name given twice"));
        assert!(e(&["a", "b"]).contains("unexpected argument \"b\""));
        assert!(e(&["--bearer=yes"]).contains("is a switch"));
        match CMD.parse(&args(&["--help"])) {
            Err(CliError::Help(h)) => {
                assert!(h.contains("Usage: natrix jwt test <FILE> [OPTIONS]"), "{h}");
                assert!(h.contains("--allow-pub <SUBJECT>"), "{h}");
                assert!(h.contains("(repeatable)"), "{h}");
            }
            other => panic!("{other:?}"),
        }
    }
}
