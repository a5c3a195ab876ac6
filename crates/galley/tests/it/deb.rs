//! galley's Debian package, installed with apt on a clean host of the netns bed, and by
//! `galley deploy` with `[deploy] install = "package"`.
//!
//! scripts/build-deb.sh packs the debug binary that cargo built for this test binary
//! (`--dev --no-build`: a release build would add minutes to CI, and running cargo from
//! a test would wait for the build directory's lock that the test's cargo holds). The
//! bed's hosts share this machine's /usr and dpkg database, so each install runs on a
//! throwaway copy-on-write root of the host (`bed.sh overlay-exec`) and in a network
//! namespace of its own, where apt can download nothing: whatever the package depends
//! on must already be installed, as on a host without a mirror.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::deploy::Bed;
use crate::support::GALLEY;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The package, built once for every test of this module (they would otherwise write
/// the same files at once): target/debian-dev/galley_<version>_<arch>.deb.
fn build_package() -> PathBuf {
    static PACKAGE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PACKAGE.get_or_init(build).clone()
}

fn build() -> PathBuf {
    let output = Command::new("bash")
        .arg(repository().join("scripts/build-deb.sh"))
        .args(["--dev", "--no-build"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "scripts/build-deb.sh failed:\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let built = stdout
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("build-deb: "))
        .expect("build-deb.sh names the package it built");
    repository().join(built)
}

/// What this machine itself has of galley: the test must leave it as it was.
fn machine_state() -> String {
    let query = Command::new("dpkg-query")
        .args(["-W", "-f=${Status} ${Version}", "galley"])
        .output()
        .unwrap();
    format!(
        "dpkg: {} {}; /usr/bin/galley: {}; units: {}",
        query.status.success(),
        String::from_utf8_lossy(&query.stdout),
        Path::new("/usr/bin/galley").exists(),
        Path::new("/lib/systemd/system/galley-proxy.service").exists()
    )
}

/// The commands `galley --help` lists (hidden ones are not).
fn listed_commands() -> Vec<String> {
    let output = Command::new(GALLEY).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout).into_owned();
    help.lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        // A wrapped description continues on a line indented further.
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .filter(|command| command != "help")
        .collect()
}

/// The text of a script's section `== NAME` (up to the next section).
fn section<'a>(output: &'a str, name: &str) -> &'a str {
    let start = output
        .find(&format!("== {name}\n"))
        .unwrap_or_else(|| panic!("no section {name} in:\n{output}"))
        + name.len()
        + 4;
    let rest = &output[start..];
    &rest[..rest.find("\n== ").map_or(rest.len(), |end| end + 1)]
}

/// Run on the host's overlay root with the package's path as $1.
const INSTALL_WITH_APT: &str = r#"set -euo pipefail
if dpkg-query -W galley >/dev/null 2>&1 || [ -e /usr/bin/galley ]; then
    echo "not a clean host: galley is installed already" >&2
    exit 1
fi
DEBIAN_FRONTEND=noninteractive unshare --net apt-get install -y -q --no-install-recommends "$1"
echo "== status"
dpkg-query -W -f='${Status} ${Version}\n${Depends}\n${Recommends}\n' galley
echo "== version"
galley --version
echo "== man"
MANWIDTH=200 man -P cat galley
echo "== pages"
man -w galley-deploy galley-db-create
echo "== files"
for file in /lib/systemd/system/galley-agent@.service /lib/systemd/system/galley-proxy.service \
    /lib/systemd/system/galley-controller.service /usr/share/bash-completion/completions/galley \
    /usr/share/zsh/vendor-completions/_galley /usr/share/fish/vendor_completions.d/galley.fish; do
    [ -s "$file" ] && echo "$file"
done
grep -h '^ExecStart=' /lib/systemd/system/galley-*.service
echo "== completion"
# What bash offers for `galley dep<Tab>`, from the installed completion.
source /usr/share/bash-completion/completions/galley
COMP_WORDS=(galley dep) COMP_CWORD=1
_galley galley dep galley
echo "${COMPREPLY[@]}"
"#;

#[test]
fn the_package_installs_with_apt_on_a_clean_host() {
    let machine_before = machine_state();
    let package = build_package();
    let bed = Bed::up(1, &[]);
    // Inside the bed's directory, which the overlay root binds in.
    let deb = bed.path().join("galley.deb");
    std::fs::copy(&package, &deb).unwrap();
    let deb_text = deb.to_str().unwrap();

    let output = bed.run(&[
        "overlay-exec",
        "h1",
        "bash",
        "-c",
        INSTALL_WITH_APT,
        "install",
        deb_text,
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let all = format!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "apt-get install failed:\n{all}");
    let version = env!("CARGO_PKG_VERSION");
    let status = section(&stdout, "status");
    assert!(
        status.starts_with(&format!("install ok installed {version}\n")),
        "{status}"
    );
    assert!(status.contains("libc6"), "{status}");
    assert!(
        status.contains("mariadb-server (>= 1:10.11), galera-4, mariadb-backup"),
        "{status}"
    );
    assert_eq!(
        section(&stdout, "version").trim(),
        format!("galley {version}")
    );
    let man = section(&stdout, "man");
    assert!(man.contains("galley - "), "{man}");
    let commands = listed_commands();
    assert!(commands.len() > 20, "{commands:?}");
    for command in &commands {
        assert!(
            man.contains(&format!("galley-{command}(1)")),
            "man galley does not list {command}:\n{man}"
        );
    }
    assert!(!man.contains("galley-host("), "a hidden command got a page");
    let pages = section(&stdout, "pages");
    assert!(
        pages.contains("/usr/share/man/man1/galley-deploy.1.gz")
            && pages.contains("/usr/share/man/man1/galley-db-create.1.gz"),
        "{pages}"
    );
    let files = section(&stdout, "files");
    assert_eq!(
        files.lines().filter(|line| line.starts_with('/')).count(),
        6,
        "{files}"
    );
    for line in [
        "ExecStart=/usr/bin/galley agent --config /etc/galley/galley.toml --node %i",
        "ExecStart=/usr/bin/galley proxy --config /etc/galley/galley.toml",
        "ExecStart=/usr/bin/galley controller --config /etc/galley/galley.toml --dir /var/lib/galley",
    ] {
        assert!(files.contains(line), "{line} missing:\n{files}");
    }

    assert_eq!(section(&stdout, "completion").trim(), "deploy");

    // `[deploy] install = "package"`: the bundle's step 10 installs the package with
    // apt-get, run by hand on the proxy and controller host (h1), and changes nothing
    // the second time. The nodes are never contacted.
    let operator = bed.path().join("operator");
    std::fs::create_dir_all(&operator).unwrap();
    let mut spec = format!(
        "[cluster]\nname = \"packaged\"\nsecrets_file = \"/etc/galley/secrets.toml\"\n\n\
         [deploy]\nssh_user = \"galleytest\"\nservice_manager = \"supervised\"\n\
         install = \"package\"\npackage = \"{deb_text}\"\n\n\
         [proxy]\naddress = \"10.77.0.11\"\nadmin_address = \"10.77.0.11\"\n\n\
         [controller]\naddress = \"10.77.0.11\"\n"
    );
    for node in 1..=3 {
        spec.push_str(&format!(
            "\n[[node]]\nname = \"db{node}\"\naddress = \"10.77.0.{}\"\ndata_dir = \"/var/lib/mysql\"\n",
            20 + node
        ));
    }
    std::fs::write(operator.join("galley.toml"), spec).unwrap();
    let bundle = bed.path().join("bundle");
    let generate = Command::new(GALLEY)
        .arg("generate")
        .arg("--dir")
        .arg(&operator)
        .arg("--output")
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        generate.status.success(),
        "galley generate: {}",
        String::from_utf8_lossy(&generate.stderr)
    );
    let host = bundle.join("hosts/proxy");
    std::fs::copy(&package, host.join("galley.deb")).unwrap();
    let step = host.join("10-install.sh");
    let step = step.to_str().unwrap();
    let script = "set -euo pipefail\n\
         echo '== first'\n\
         unshare --net bash \"$1\"\n\
         echo '== again'\n\
         unshare --net bash \"$1\"\n\
         echo '== version'\n\
         /usr/bin/galley --version\n";
    let output = bed.run(&["overlay-exec", "h1", "bash", "-c", script, "step", step]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let all = format!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "step 10 failed:\n{all}");
    let first = section(&stdout, "first");
    assert!(
        first.contains(&format!("changed: installed the galley package {version}")),
        "{all}"
    );
    let again = section(&stdout, "again");
    assert!(
        !again.contains("changed: "),
        "the second run changed something:\n{all}"
    );
    assert!(again.contains(&format!("ok: galley {version}")), "{all}");
    assert_eq!(
        section(&stdout, "version").trim(),
        format!("galley {version}")
    );

    drop(bed);
    assert_eq!(
        machine_state(),
        machine_before,
        "the test changed this machine"
    );
}

/// `galley deploy` with `[deploy] install = "package"`, over real SSH to bed hosts that
/// each have a root of their own (`Bed::up_with_own_roots`): h1 runs the one data node,
/// h2 the proxy and the controller. Both get galley from the package, every service runs
/// /usr/bin/galley, and a second run changes nothing.
#[test]
fn deploy_installs_the_package_on_the_hosts() {
    let machine_before = machine_state();
    let package = build_package();
    let bed = Bed::up_with_own_roots(2);
    let deb = bed.path().join("galley.deb");
    std::fs::copy(&package, &deb).unwrap();
    let spec =
        crate::deploy::spec_text(&bed, "packaged", &[crate::deploy::address(1)], Some(2), 100)
            .replace(
                "[deploy]\n",
                &format!(
            "[deploy]\nservice_manager = \"supervised\"\ninstall = \"package\"\npackage = \"{}\"\n",
            deb.display()
        ),
            );
    let dir = crate::deploy::operator_dir(&bed, "packaged", &spec);
    let version = env!("CARGO_PKG_VERSION");

    let (ok, output) = crate::deploy::galley(&dir, &["deploy", "--accept-new-host-keys"]);
    assert!(ok, "{output}");
    for host in ["db1", "proxy"] {
        for change in [
            "copied the galley package to /opt/galley/package/galley.deb".to_owned(),
            format!("installed the galley package {version}"),
        ] {
            assert!(
                output
                    .lines()
                    .any(|line| line.starts_with(host) && line.contains(&change)),
                "{host}: no `{change}` in:\n{output}"
            );
        }
    }
    assert!(output.contains("db1 bootstrapped the cluster"), "{output}");
    for (host, service) in [
        ("h1", "galley-agent"),
        ("h2", "galley-proxy"),
        ("h2", "galley-controller"),
    ] {
        let found = bed.exec(
            host,
            &format!(
                "test ! -e /opt/galley/bin/galley && /usr/bin/galley --version && \
                 readlink /proc/$(cat /run/galley/{service}.child.pid)/exe"
            ),
        );
        let text = String::from_utf8_lossy(&found.stdout);
        assert!(
            found.status.success()
                && text.starts_with(&format!("galley {version}\n"))
                && text.contains("/usr/bin/galley"),
            "{host} {service}: {text}{}",
            String::from_utf8_lossy(&found.stderr)
        );
    }

    let (ok, output) = crate::deploy::galley(&dir, &["deploy"]);
    assert!(ok, "{output}");
    assert!(
        output.contains("Nothing changed: every host already matches galley.toml."),
        "{output}"
    );

    drop(bed);
    assert_eq!(
        machine_state(),
        machine_before,
        "the test changed this machine"
    );
}
