//! `ckb-libbpf generate-assets DIR`: the man pages and shell completions that
//! `make install` and `make deb` ship, checked against the clap definitions
//! they come from (no root, no BPF).

use std::path::Path;
use std::process::Command;

use crate::common::{scratch_dir, Scratch};

/// `generate-assets` into a fresh scratch dir, removed when the test ends.
fn generate() -> Scratch {
    let dir = scratch_dir("assets");
    let out = Command::new(env!("CARGO_BIN_EXE_ckb-libbpf"))
        .arg("generate-assets")
        .arg(&dir)
        .output()
        .expect("running ckb-libbpf");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The visible subcommands and, for each, its long flags.
fn visible() -> Vec<(String, Vec<String>)> {
    let mut root = ckb_libbpf::cli::command().disable_help_subcommand(true);
    root.build();
    root.get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| {
            let flags = s
                .get_arguments()
                .filter(|a| !a.is_hide_set())
                .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
                .collect();
            (s.get_name().to_string(), flags)
        })
        .collect()
}

#[test]
fn every_subcommand_has_a_section_8_page_naming_its_flags() {
    let dir = generate();
    let man = dir.join("man8");
    let mut want: Vec<String> = vec!["ckb-libbpf.8".into()];
    let subs = visible();
    assert!(subs.iter().any(|(n, _)| n == "rocksdb"), "{subs:?}");
    for (name, flags) in &subs {
        let file = format!("ckb-libbpf-{name}.8");
        let page = read(&man.join(&file));
        // .TH title section: man(1) finds it as `man ckb-libbpf-rocksdb`.
        let th = page.lines().find(|l| l.starts_with(".TH ")).unwrap_or("");
        assert!(
            th.starts_with(&format!(".TH ckb-libbpf-{name} 8 ")),
            "{file}: {th}"
        );
        for f in flags {
            // roff escapes '-' as '\-'.
            let escaped = f.replace('-', "\\-");
            assert!(page.contains(&escaped), "{file} lacks {f}");
        }
        want.push(file);
    }
    let mut got: Vec<String> = std::fs::read_dir(&man)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    got.sort();
    want.sort();
    // Hidden subcommands (background, generate-assets) get no page.
    assert_eq!(got, want);
    let root = read(&man.join("ckb-libbpf.8"));
    for (name, _) in &subs {
        assert!(
            root.contains(&format!("ckb\\-libbpf\\-{name}(8)")),
            "{name}"
        );
    }
}

#[test]
fn completions_name_every_subcommand_and_every_rocksdb_flag() {
    let dir = generate();
    let comp = dir.join("completions");
    let subs = visible();
    let (_, rocksdb_flags) = subs.iter().find(|(n, _)| n == "rocksdb").unwrap();
    assert!(rocksdb_flags.len() > 10, "{rocksdb_flags:?}");
    assert!(rocksdb_flags.iter().any(|f| f == "--overhead-budget"));
    for (file, shell) in [
        ("ckb-libbpf", "bash"),
        ("_ckb-libbpf", "zsh"),
        ("ckb-libbpf.fish", "fish"),
    ] {
        let text = read(&comp.join(file));
        for (name, _) in &subs {
            assert!(text.contains(name.as_str()), "{shell}: {name}");
        }
        for f in rocksdb_flags {
            let needle = if shell == "fish" {
                // fish: `-l overhead-budget`
                format!("-l {}", &f[2..])
            } else {
                f.clone()
            };
            assert!(text.contains(&needle), "{shell} lacks rocksdb {f}");
        }
    }
    // bash, for real: what TAB offers after `ckb-libbpf rocksdb --`.
    let offered = bash_complete(&comp.join("ckb-libbpf"), &["rocksdb", "--"]);
    for f in rocksdb_flags {
        assert!(offered.contains(f), "bash offers {offered:?}, not {f}");
    }
    assert_eq!(
        bash_complete(&comp.join("ckb-libbpf"), &["rocksdb", "--over"]),
        vec!["--overhead-budget".to_string()]
    );
    let subs_offered = bash_complete(&comp.join("ckb-libbpf"), &[""]);
    for (name, _) in &subs {
        assert!(subs_offered.contains(name), "{subs_offered:?} lacks {name}");
    }
}

/// Sources the bash completion and calls its function as bash does on TAB
/// after `ckb-libbpf WORDS...` (the last word being completed).
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cur = words.last().copied().unwrap_or("");
    let prev = if words.len() > 1 {
        words[words.len() - 2]
    } else {
        "ckb-libbpf"
    };
    let prog = format!(
        "source '{}'; COMP_WORDS=(ckb-libbpf {}); COMP_CWORD={}; \
         _ckb__libbpf ckb-libbpf '{cur}' '{prev}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words.len()
    );
    let out = Command::new("bash")
        .args(["--norc", "-c", &prog])
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn generate_assets_into_an_unwritable_place_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_ckb-libbpf"))
        .args(["generate-assets", "/proc/ckb-libbpf-assets"])
        .output()
        .expect("running ckb-libbpf");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot write /proc/ckb-libbpf-assets"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
}
