//! `galley package-files DIR` (hidden): the files of the Debian package that come from
//! galley itself, written by scripts/build-deb.sh before cargo-deb packs them: a man page
//! per command from the clap definitions (clap_mangen), the bash, zsh and fish completions
//! (clap_complete), and the systemd units (`deploy::package_units`, the command lines a
//! deployment's units run). Generated from the same definitions as `--help`, so they
//! cannot drift from the binary they ship with.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap_complete::Shell;

/// Writes `DIR/man/*.1`, `DIR/completions/{galley.bash,_galley,galley.fish}` and
/// `DIR/systemd/*.service`, replacing files of the same names.
pub fn write(command: clap::Command, dir: &Path) -> anyhow::Result<ExitCode> {
    let man = dir.join("man");
    let completions = dir.join("completions");
    let systemd = dir.join("systemd");
    for sub in [&man, &completions, &systemd] {
        std::fs::create_dir_all(sub).with_context(|| format!("cannot create {}", sub.display()))?;
    }
    // One page for galley and one for each command that --help lists, nested ones too
    // (galley-db-create.1); hidden commands get none. The NAME line already says
    // `galley - `, so the summary drops its own `galley: `.
    let about = command.get_about().map(ToString::to_string);
    let pages = match about
        .as_deref()
        .and_then(|about| about.strip_prefix("galley: "))
    {
        Some(summary) => command.clone().about(summary.to_owned()),
        None => command.clone(),
    };
    clap_mangen::generate_to(pages, &man)
        .with_context(|| format!("cannot write the man pages to {}", man.display()))?;
    for (shell, name) in [
        (Shell::Bash, "galley.bash"),
        (Shell::Zsh, "_galley"),
        (Shell::Fish, "galley.fish"),
    ] {
        let path = completions.join(name);
        let mut file = std::fs::File::create(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        clap_complete::generate(shell, &mut command.clone(), "galley", &mut file);
    }
    for (name, text) in deploy::package_units() {
        let path = systemd.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!(
        "wrote man pages, completions and systemd units to {}",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
