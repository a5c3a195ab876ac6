//! `galley generate` and `galley deploy`: the spec and the operator's secrets in, the
//! deploy crate's bundle out (to review) or run on the hosts over SSH.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use local::Location;

/// The operator's copy of the cluster's secrets, next to its galley.toml state.
fn local_secrets(location: &Location) -> PathBuf {
    location.dir.join("secrets.toml")
}

fn load(location: &Location) -> anyhow::Result<(spec::ClusterSpec, String)> {
    let text = std::fs::read_to_string(&location.config)
        .with_context(|| format!("cannot read {}", location.config.display()))?;
    let loaded = spec::parse(&location.config, &text)?;
    for warning in &loaded.warnings {
        eprintln!("warning: {}: {warning}", location.config.display());
    }
    Ok((loaded.spec, text))
}

/// With a controller in the spec, the console's `admin` needs a password: generated into
/// the secrets file once (the controller stores its hash on first start) and shown once.
fn console_admin_password(spec: &spec::ClusterSpec, secrets_file: &Path) -> anyhow::Result<()> {
    if spec.controller.is_none() {
        return Ok(());
    }
    if let Some(password) = agent::Secrets::ensure_console_admin_password(secrets_file)? {
        println!(
            "Web console user admin, password (shown only this once; it is kept in {}):\n  {password}",
            secrets_file.display()
        );
    }
    Ok(())
}

pub fn generate(
    location: &Location,
    output: &Path,
    include_secrets: bool,
) -> anyhow::Result<ExitCode> {
    let (spec, text) = load(location)?;
    let secrets = if include_secrets {
        let path = local_secrets(location);
        let (_, created) = agent::Secrets::load_or_create(&path)?;
        if created {
            println!("Generated secrets in {}", path.display());
        }
        console_admin_password(&spec, &path)?;
        Some(deploy::Secrets(
            std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        ))
    } else {
        None
    };
    let bundle = deploy::generate(&spec, &text, secrets.as_ref())?;
    let name = output.to_string_lossy();
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        let staging = tempfile_dir(output)?;
        deploy::write_bundle(&bundle, &staging)?;
        let status = std::process::Command::new("tar")
            .arg("-czf")
            .arg(output)
            .arg("-C")
            .arg(&staging)
            .arg(".")
            .status()
            .context("cannot run tar")?;
        std::fs::remove_dir_all(&staging).ok();
        if !status.success() {
            bail!("tar could not write {}", output.display());
        }
        if include_secrets {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(output, std::fs::Permissions::from_mode(0o600))?;
        }
    } else {
        if output.exists() && !output.join("README.md").exists() {
            bail!(
                "{} exists and is not a galley bundle; choose a new directory",
                output.display()
            );
        }
        deploy::write_bundle(&bundle, output)?;
    }
    println!(
        "Wrote the bundle for {} host(s) to {}; start with its README.md.",
        bundle.hosts.len(),
        output.display()
    );
    if include_secrets {
        println!("It CONTAINS THE SECRETS: keep it private.");
    }
    Ok(ExitCode::SUCCESS)
}

fn tempfile_dir(output: &Path) -> anyhow::Result<PathBuf> {
    let parent = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = parent.join(format!(".galley-bundle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

pub fn deploy(
    location: &Location,
    accept_new_host_keys: bool,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let (spec, text) = load(location)?;
    let secrets_file = local_secrets(location);
    let (_, created) = agent::Secrets::load_or_create(&secrets_file)?;
    if created {
        println!("Generated secrets in {}", secrets_file.display());
    }
    console_admin_password(&spec, &secrets_file)?;
    let bundle = deploy::generate(&spec, &text, None)?;
    let deployment = deploy::Deployment {
        spec: spec.clone(),
        bundle,
        state_dir: location.dir.join("deploy"),
        binary: std::env::current_exe().context("cannot find the galley executable")?,
        secrets_file,
        secrets_generated: created,
        options: deploy::DeployOptions {
            accept_new_host_keys,
            dry_run,
        },
    };
    let outcome = deployment.run()?;
    print!("\n{}", deploy::summary(&spec, &outcome));
    println!(
        "Per-host logs: {}",
        location.dir.join("deploy").join("logs").display()
    );
    Ok(ExitCode::SUCCESS)
}
