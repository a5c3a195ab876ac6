//! `galley init`: an interactive configurator that writes galley.toml, over any reader
//! and writer (a terminal, a pipe in scripts, scripted bytes in tests). `answers.rs` is
//! the answers model and the galley.toml it renders (pure); `flow.rs` asks the
//! questions in order and checks each answer with `spec::parse` at once; `prompt.rs`
//! is the line prompt under it. The CLI (crates/galley/src/init.rs) only hands over
//! its terminal.

mod answers;
mod flow;
mod prompt;

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{bail, Context as _};

pub use answers::{Answers, DeployAnswers, NodeAnswers, SERVICE_MANAGERS, SST_METHODS};
pub use flow::{Flow, InitFlags, NodeFlag};

/// `galley init`: refuses to overwrite `config` without --force, asks every question
/// over `input` and `output` (`echo`: write each answer after its prompt, for input that
/// a terminal does not echo), validates the whole file with `spec::parse`, writes it and
/// says what to run next. `dir` is the state directory (the default place of a local
/// cluster's files).
pub fn init<R: BufRead, W: Write>(
    input: R,
    output: W,
    echo: bool,
    dir: &Path,
    config: &Path,
    flags: &InitFlags,
) -> anyhow::Result<()> {
    if config.exists() && !flags.force {
        bail!(
            "{} already exists; run with --force to replace it, or choose another --dir or --config",
            config.display()
        );
    }
    let mut flow = Flow::new(input, output, echo, dir, !flags.non_interactive);
    flow.run(flags)?;
    let text = flow.answers.render();
    let loaded = spec::parse(config, &text).map_err(|error| {
        anyhow::anyhow!("the answers do not make a valid spec (nothing was written): {error}")
    })?;
    if let Some(parent) = config.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(config, &text).with_context(|| format!("cannot write {}", config.display()))?;
    for warning in &loaded.warnings {
        flow.say(&format!("note: {warning}"))?;
    }
    let target = if config == dir.join("galley.toml") {
        format!("--dir {}", dir.display())
    } else {
        format!("--config {}", config.display())
    };
    let next = if flow.answers.is_local() {
        format!("`galley up {target}` starts it on this machine")
    } else {
        format!("`galley deploy {target}` installs it on the hosts")
    };
    let nodes = loaded.spec.nodes.len();
    flow.say(&format!(
        "\nWrote {} ({nodes} node{}). Next: {next}.",
        config.display(),
        if nodes == 1 { "" } else { "s" }
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(nodes: &[&str]) -> InitFlags {
        InitFlags {
            non_interactive: true,
            cluster_name: Some("openstack".into()),
            nodes: nodes.iter().map(|node| (*node).to_owned()).collect(),
            ..InitFlags::default()
        }
    }

    fn run(dir: &Path, config: &Path, flags: &InitFlags) -> (anyhow::Result<()>, String) {
        let mut output = Vec::new();
        let result = init(&b""[..], &mut output, true, dir, config, flags);
        (result, String::from_utf8(output).unwrap())
    }

    #[test]
    fn writes_a_spec_that_loads_and_names_the_next_command() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("state");
        let config = dir.join("galley.toml");
        let local = flags(&["name=db1,address=127.0.0.1", "name=db2,address=127.0.0.1"]);
        let (result, output) = run(&dir, &config, &local);
        result.unwrap();
        let loaded = spec::load(&config).unwrap();
        assert_eq!(loaded.spec.node_names(), ["db1", "db2"]);
        assert!(
            output.contains(&format!(
                "Wrote {} (2 nodes). Next: `galley up --dir {}` starts it on this machine.",
                config.display(),
                dir.display()
            )),
            "{output}"
        );
        // A spec elsewhere, on other hosts: deploy it, named by --config.
        let other = root.path().join("prod.toml");
        let (result, output) = run(&dir, &other, &flags(&["name=db1,address=10.0.0.11"]));
        result.unwrap();
        assert!(
            output.contains(&format!(
                "(1 node). Next: `galley deploy --config {}` installs it on the hosts.",
                other.display()
            )),
            "{output}"
        );
    }

    #[test]
    fn an_existing_file_is_kept_unless_forced() {
        let root = tempfile::tempdir().unwrap();
        let config = root.path().join("galley.toml");
        std::fs::write(&config, "# mine\n").unwrap();
        let remote = flags(&["name=db1,address=10.0.0.11"]);
        let error = run(root.path(), &config, &remote)
            .0
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("already exists; run with --force"),
            "{error}"
        );
        assert_eq!(std::fs::read_to_string(&config).unwrap(), "# mine\n");
        let forced = InitFlags {
            force: true,
            ..remote
        };
        run(root.path(), &config, &forced).0.unwrap();
        assert!(spec::load(&config).is_ok());
    }
}
