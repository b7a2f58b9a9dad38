//! Integration tests of the `vexil` binary, run as a user runs it: the real executable, its exit
//! code and its output. Output is compared with snapshots (`snapshots/`, reviewed like code) or,
//! for `vexil eval`, with the shared evaluation vectors. One test binary, a module a subcommand.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod check;
mod crash;
mod eval;
mod fleet;
mod lint;
mod ofrep_client;
mod outage;
mod schema;
mod server_process;
mod ui;
mod ui_support;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// The crate's directory. The binary runs there and is given relative paths, so the paths it
/// prints — and the snapshots — do not depend on where the repository is checked out.
fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// One finished run of `vexil`.
struct Run {
    args: Vec<String>,
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `vexil ARGS…` in the crate's directory, isolated from the caller's `VEXIL_*` variables.
fn vexil<S: AsRef<str>>(args: &[S]) -> Run {
    let args: Vec<String> = args.iter().map(|a| a.as_ref().to_owned()).collect();
    let output = Command::new(env!("CARGO_BIN_EXE_vexil"))
        .args(&args)
        .current_dir(crate_dir())
        .env_remove("VEXIL_ENV")
        .output()
        .expect("the vexil binary runs");
    Run {
        code: output
            .status
            .code()
            .expect("vexil exits with a code, not a signal"),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        args,
    }
}

impl Run {
    /// The run as a snapshot: the command line, the exit code, then stdout and stderr.
    fn render(&self) -> String {
        let mut out = String::from("$ vexil");
        for arg in &self.args {
            let plain = !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:@+".contains(c));
            if plain {
                write!(out, " {arg}").unwrap();
            } else {
                write!(out, " '{arg}'").unwrap();
            }
        }
        write!(out, "\nexit code: {}\n", self.code).unwrap();
        for (name, text) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            write!(out, "--- {name}\n{text}").unwrap();
            if !text.is_empty() && !text.ends_with('\n') {
                out.push('\n');
            }
        }
        out
    }
}
