//! The README as a new user reads it: every documented command line parses
//! with the real clap definitions, every `make` target and script it names
//! exists, and the package list it gives is the one `make deps` installs.
//! No BPF: these run anywhere.

use std::path::Path;

use ckb_libbpf::cli::Cli;
use clap::Parser;

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The lines inside the README's fenced code blocks, except ```text ones
/// (captured screens and output, not commands).
fn code_lines() -> Vec<String> {
    let (mut inside, mut text) = (false, false);
    let mut out = Vec::new();
    for l in read("README.md").lines() {
        if let Some(info) = l.trim_start().strip_prefix("```") {
            inside = !inside;
            text = inside && info.trim() == "text";
        } else if inside && !text {
            out.push(l.to_string());
        }
    }
    out
}

/// A documented command line as argv: the shell comment, pipe or
/// redirection cut off, optional `[...]` groups of a synopsis dropped,
/// a `$(...)` substitution replaced by a PID, quotes removed.
fn argv(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let (mut depth, mut subst) = (0, false);
    for w in line.split_whitespace() {
        if subst {
            subst = !w.ends_with(')');
            continue;
        }
        if depth == 0 && ["#", "|", ">", "&&", ";"].contains(&w) {
            break;
        }
        depth += w.matches('[').count();
        let closes = w.matches(']').count();
        if depth > 0 {
            depth -= closes.min(depth);
            continue;
        }
        if w.starts_with("$(") {
            subst = !w.ends_with(')');
            words.push("1".to_string());
            continue;
        }
        words.push(w.trim_matches('\'').to_string());
    }
    words
}

#[test]
fn every_documented_command_line_parses() {
    let mut n = 0;
    for l in code_lines() {
        let l = l.trim();
        let l = l.strip_prefix("sudo ").unwrap_or(l);
        if !l.starts_with("ckb-libbpf ") {
            continue;
        }
        let args = argv(l);
        if let Err(e) = Cli::try_parse_from(&args) {
            panic!("README: `{l}` does not parse ({args:?}):\n{e}");
        }
        n += 1;
    }
    assert!(n >= 25, "only {n} command lines found in the README");
}

#[test]
fn every_make_target_and_script_named_exists() {
    let makefile = read("Makefile");
    let has_target = |t: &str| makefile.lines().any(|l| l.starts_with(&format!("{t}:")));
    let mut n = 0;
    for l in code_lines() {
        // Leading VAR=value words set the environment.
        let args: Vec<String> = argv(l.trim())
            .into_iter()
            .skip_while(|w| w.contains('=') && !w.starts_with('-'))
            .collect();
        match args.first().map(String::as_str) {
            Some("make") => {
                // `make` alone is `all`; VAR=value words are not targets.
                let targets: Vec<&String> = args[1..].iter().filter(|a| !a.contains('=')).collect();
                for t in targets {
                    assert!(
                        has_target(t),
                        "README: `{l}`: no target {t} in the Makefile"
                    );
                    n += 1;
                }
            }
            Some(w) if w.starts_with("scripts/") || w.starts_with("packaging/") => {
                let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(w);
                assert!(p.is_file(), "README: `{l}`: {w} does not exist");
                n += 1;
            }
            _ => {}
        }
    }
    assert!(
        n >= 10,
        "only {n} make targets and scripts found in the README"
    );
}

/// The Makefile's APT_PKGS, as a sorted list.
fn makefile_apt_pkgs() -> Vec<String> {
    let makefile = read("Makefile");
    let line = makefile
        .lines()
        .find_map(|l| l.strip_prefix("APT_PKGS"))
        .expect("APT_PKGS in the Makefile");
    let (_, pkgs) = line.split_once(":=").expect("APT_PKGS := ...");
    let mut v: Vec<String> = pkgs.split_whitespace().map(String::from).collect();
    v.sort();
    v
}

#[test]
fn the_package_list_is_what_make_deps_installs() {
    let readme = read("README.md");
    let (_, rest) = readme
        .split_once("APT_PKGS: `")
        .expect("README names make deps' packages as APT_PKGS: `...`");
    let (list, _) = rest.split_once('`').expect("a closing backquote");
    let mut documented: Vec<String> = list.split_whitespace().map(String::from).collect();
    documented.sort();
    assert_eq!(documented, makefile_apt_pkgs());
}

#[test]
fn argv_reads_documented_lines_as_a_shell_would() {
    assert_eq!(
        argv("ckb-libbpf rocksdb --json | jq ."),
        ["ckb-libbpf", "rocksdb", "--json"]
    );
    assert_eq!(
        argv("ckb-libbpf net [DURATION] [--pid PID | --name NAME] [--json]"),
        ["ckb-libbpf", "net"]
    );
    assert_eq!(
        argv("ckb-libbpf check --pid $(pgrep -x ckb)   # live"),
        ["ckb-libbpf", "check", "--pid", "1"]
    );
    assert_eq!(
        argv("ckb-libbpf report --claim 'a<1' -o x.jwt"),
        ["ckb-libbpf", "report", "--claim", "a<1", "-o", "x.jwt"]
    );
}
