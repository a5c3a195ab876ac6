//! The questions of `galley init`, in order, over any reader and writer. Each question
//! has a default and a flag; every answer is checked at once by the spec's own
//! validation (the file is rendered and parsed, and the problems naming that answer's
//! field are shown) and asked again until it is valid. With `--non-interactive`, flags
//! and defaults answer everything, and missing required flags are listed together.

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{bail, Context as _};
use clap::Args;

use crate::answers::{self, Answers, NodeAnswers};
use crate::prompt::Prompter;

/// The answers `galley init` takes as flags (each question names its flag).
#[derive(Debug, Args, Clone, Default)]
pub struct InitFlags {
    /// Ask nothing: take the flags given and every default; fail, listing every
    /// missing required flag (--cluster-name, --node), when one is missing.
    #[arg(long)]
    pub non_interactive: bool,
    /// Replace an existing galley.toml.
    #[arg(long)]
    pub force: bool,
    /// Database server vendor: mariadb (the only one galley runs).
    #[arg(long)]
    pub vendor: Option<String>,
    /// Server version: 10.11 (the only one galley runs, with galera-4).
    #[arg(long, value_name = "VERSION")]
    pub mariadb_version: Option<String>,
    /// The cluster's name (wsrep_cluster_name); required.
    #[arg(long)]
    pub cluster_name: Option<String>,
    #[arg(long, value_name = "FILE")]
    pub secrets_file: Option<String>,
    /// The OS user mariadbd runs as.
    #[arg(long)]
    pub os_user: Option<String>,
    /// InnoDB buffer pool per node, like 256M or 8G.
    #[arg(long, value_name = "SIZE")]
    pub buffer_pool_size: Option<String>,
    #[arg(long, value_name = "N")]
    pub max_connections: Option<String>,
    #[arg(long)]
    pub character_set: Option<String>,
    #[arg(long)]
    pub collation: Option<String>,
    /// Galera's write-set cache: a node that was away for less than it holds rejoins by
    /// IST instead of a full copy.
    #[arg(long, value_name = "SIZE")]
    pub gcache_size: Option<String>,
    /// rsync or mariabackup.
    #[arg(long, value_name = "METHOD")]
    pub sst_method: Option<String>,
    /// One data node, as `name=db1,address=10.0.0.11[,data_dir=/var/lib/galley/db1][,ssh_address=HOST]`;
    /// repeat it for each node (their number answers "how many"). Required.
    #[arg(long = "node", value_name = "KEY=VALUE,...")]
    pub nodes: Vec<String>,
    #[arg(long, value_name = "ADDRESS")]
    pub controller_address: Option<String>,
    #[arg(long, value_name = "PORT")]
    pub controller_port: Option<String>,
    #[arg(long, value_name = "ADDRESS")]
    pub proxy_address: Option<String>,
    #[arg(long, value_name = "PORT")]
    pub proxy_writer_port: Option<String>,
    #[arg(long, value_name = "PORT")]
    pub proxy_reader_port: Option<String>,
    #[arg(long, value_name = "PORT")]
    pub proxy_admin_port: Option<String>,
    /// The SSH user `galley deploy` logs in as (root, or one with passwordless sudo).
    #[arg(long)]
    pub ssh_user: Option<String>,
    #[arg(long, value_name = "PORT")]
    pub ssh_port: Option<String>,
    /// A private key file for SSH; `none` for ssh's own defaults and agent.
    #[arg(long, value_name = "FILE")]
    pub ssh_key: Option<String>,
    /// Where galley is installed on each host.
    #[arg(long, value_name = "DIR")]
    pub install_dir: Option<String>,
    /// auto, systemd or supervised.
    #[arg(long)]
    pub service_manager: Option<String>,
}

/// One `--node` flag, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeFlag {
    pub name: Option<String>,
    pub address: Option<String>,
    pub data_dir: Option<String>,
    pub ssh_address: Option<String>,
}

const NODE_FLAG_KEYS: &[&str] = &["name", "address", "data_dir", "ssh_address"];

impl NodeFlag {
    pub fn parse(text: &str) -> Result<NodeFlag, String> {
        let mut flag = NodeFlag::default();
        for part in text
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
        {
            let Some((key, value)) = part.split_once('=') else {
                return Err(format!(
                    "--node {text}: `{part}` is not KEY=VALUE; keys: {}",
                    NODE_FLAG_KEYS.join(", ")
                ));
            };
            let slot = match key.trim() {
                "name" => &mut flag.name,
                "address" => &mut flag.address,
                "data_dir" => &mut flag.data_dir,
                "ssh_address" => &mut flag.ssh_address,
                other => {
                    return Err(format!(
                        "--node {text}: unknown key `{other}`; keys: {}",
                        NODE_FLAG_KEYS.join(", ")
                    ))
                }
            };
            *slot = Some(value.trim().to_owned());
        }
        Ok(flag)
    }
}

/// One question: what is shown, its default, its flag, and the spec fields whose
/// problems belong to it.
struct Question<'a> {
    flag: String,
    prompt: String,
    default: Option<String>,
    given: Option<String>,
    /// An empty answer is allowed and means "none".
    optional: bool,
    fields: &'a dyn Fn(&Answers) -> Vec<String>,
}

/// Sets an answer from text; `Err` when the text is not even of the right kind.
type Setter<'a> = &'a dyn Fn(&mut Answers, &str) -> Result<(), String>;

fn fields(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

fn integer(text: &str) -> Result<i64, String> {
    text.parse()
        .map_err(|_| format!("`{text}` is not a whole number"))
}

/// The problems the spec finds in these answers that name one of `fields`.
fn problems_for(answers: &Answers, fields: &[String]) -> Vec<String> {
    match spec::parse(Path::new("galley.toml"), &answers.render()) {
        Ok(_) => Vec::new(),
        Err(error) => error
            .problems
            .into_iter()
            .filter(|problem| fields.contains(&problem.field) || problem.field.is_empty())
            .map(|problem| problem.message)
            .collect(),
    }
}

/// The questions in order, over a prompter; the answers so far.
#[derive(Debug)]
pub struct Flow<R, W> {
    prompter: Prompter<R, W>,
    interactive: bool,
    pub answers: Answers,
    missing: Vec<String>,
}

impl<R: BufRead, W: Write> Flow<R, W> {
    pub fn new(input: R, output: W, echo: bool, dir: &Path, interactive: bool) -> Flow<R, W> {
        Flow {
            prompter: Prompter::new(input, output, echo),
            interactive,
            answers: Answers::new(dir),
            missing: Vec::new(),
        }
    }

    fn ask(&mut self, question: Question<'_>, set: Setter<'_>) -> anyhow::Result<()> {
        if let Some(value) = &question.given {
            if let Err(message) = self.try_answer(&question, set, value) {
                bail!("{} {value}: {message}", question.flag);
            }
            return Ok(());
        }
        if !self.interactive {
            match &question.default {
                Some(default) => {
                    if let Err(message) = self.try_answer(&question, set, default) {
                        bail!(
                            "the default for {} ({default}) does not fit the other answers: {message}; give {} explicitly",
                            question.flag,
                            question.flag
                        );
                    }
                }
                None if question.optional => {
                    if let Err(message) = self.try_answer(&question, set, "") {
                        bail!("{}: {message}", question.flag);
                    }
                }
                None => self.missing.push(question.flag.clone()),
            }
            return Ok(());
        }
        loop {
            let line = self
                .prompter
                .ask(&question.prompt, question.default.as_deref())?
                .with_context(|| {
                    format!(
                        "the input ended before \"{}\" was answered; give it with {} (or use --non-interactive to take the defaults)",
                        question.prompt, question.flag
                    )
                })?;
            let value = match (line.is_empty(), &question.default) {
                (false, _) => line,
                (true, Some(default)) => default.clone(),
                (true, None) if question.optional => String::new(),
                (true, None) => {
                    self.prompter
                        .say("  ! an answer is required here (there is no default)")?;
                    continue;
                }
            };
            match self.try_answer(&question, set, &value) {
                Ok(()) => return Ok(()),
                Err(message) => self.prompter.say(&format!("  ! {message}"))?,
            }
        }
    }

    /// Applies the answer to a copy and keeps it only if the spec finds no problem in
    /// this answer's fields.
    fn try_answer(
        &mut self,
        question: &Question<'_>,
        set: Setter<'_>,
        value: &str,
    ) -> Result<(), String> {
        let mut candidate = self.answers.clone();
        set(&mut candidate, value)?;
        let problems = problems_for(&candidate, &(question.fields)(&candidate));
        if problems.is_empty() {
            self.answers = candidate;
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    fn heading(&mut self, text: &str) -> anyhow::Result<()> {
        if self.interactive {
            self.prompter.say(&format!("\n{text}"))?;
        }
        Ok(())
    }

    /// Asks everything, in the order an operator thinks about a cluster.
    pub fn run(&mut self, flags: &InitFlags) -> anyhow::Result<()> {
        let node_flags = flags
            .nodes
            .iter()
            .map(|text| NodeFlag::parse(text))
            .collect::<Result<Vec<NodeFlag>, String>>()
            .map_err(anyhow::Error::msg)?;
        if self.interactive {
            self.prompter.say(
                "galley init writes galley.toml. Press Enter to take the [default]; every answer is checked at once.",
            )?;
        }
        self.heading("Database server")?;
        self.ask(
            Question {
                flag: "--vendor".into(),
                prompt: "Vendor (galley runs MariaDB only)".into(),
                default: Some("mariadb".into()),
                given: flags.vendor.clone(),
                optional: false,
                fields: &|_| fields(&["deploy.vendor"]),
            },
            &|a, v| {
                a.deploy.vendor = v.to_owned();
                Ok(())
            },
        )?;
        self.ask(
            Question {
                flag: "--mariadb-version".into(),
                prompt: "Version (galley runs MariaDB 10.11 with galera-4 only)".into(),
                default: Some("10.11".into()),
                given: flags.mariadb_version.clone(),
                optional: false,
                fields: &|_| fields(&["deploy.version"]),
            },
            &|a, v| {
                a.deploy.version = v.to_owned();
                Ok(())
            },
        )?;
        self.ask(
            Question {
                flag: "--cluster-name".into(),
                prompt: "Cluster name (letters, digits, _ or -)".into(),
                default: None,
                given: flags.cluster_name.clone(),
                optional: false,
                fields: &|_| fields(&["cluster.name"]),
            },
            &|a, v| {
                a.cluster_name = Some(v.to_owned());
                Ok(())
            },
        )?;
        self.ask_nodes(&node_flags)?;

        self.heading("Server settings (every node)")?;
        let default_secrets = self.answers.default_secrets_file();
        self.ask(
            Question {
                flag: "--secrets-file".into(),
                prompt: "Secrets file (passwords and the cluster token, mode 0600)".into(),
                default: Some(default_secrets),
                given: flags.secrets_file.clone(),
                optional: false,
                fields: &|_| fields(&["cluster.secrets_file"]),
            },
            &|a, v| {
                a.secrets_file = Some(v.to_owned());
                Ok(())
            },
        )?;
        self.ask(
            Question {
                flag: "--os-user".into(),
                prompt: "OS user mariadbd runs as".into(),
                default: Some(self.answers.os_user.clone()),
                given: flags.os_user.clone(),
                optional: false,
                fields: &|_| fields(&["server.os_user"]),
            },
            &|a, v| {
                a.os_user = v.to_owned();
                Ok(())
            },
        )?;
        self.ask(
            Question {
                flag: "--buffer-pool-size".into(),
                prompt: "InnoDB buffer pool size (like 256M or 8G)".into(),
                default: Some(self.answers.buffer_pool_size.clone()),
                given: flags.buffer_pool_size.clone(),
                optional: false,
                fields: &|_| fields(&["server.buffer_pool_size"]),
            },
            &|a, v| {
                a.buffer_pool_size = v.to_owned();
                Ok(())
            },
        )?;
        self.ask(
            Question {
                flag: "--max-connections".into(),
                prompt: "max_connections (OpenStack needs thousands)".into(),
                default: Some(self.answers.max_connections.to_string()),
                given: flags.max_connections.clone(),
                optional: false,
                fields: &|_| fields(&["server.max_connections"]),
            },
            &|a, v| {
                a.max_connections = integer(v)?;
                Ok(())
            },
        )?;
        self.ask(
            Question {
                flag: "--character-set".into(),
                prompt: "Character set".into(),
                default: Some(self.answers.character_set.clone()),
                given: flags.character_set.clone(),
                optional: false,
                fields: &|_| fields(&["server.character_set"]),
            },
            &|a, v| {
                a.character_set = v.to_owned();
                Ok(())
            },
        )?;
        let default_collation = self.answers.default_collation();
        self.ask(
            Question {
                flag: "--collation".into(),
                prompt: "Collation".into(),
                default: Some(default_collation),
                given: flags.collation.clone(),
                optional: false,
                fields: &|_| fields(&["server.collation"]),
            },
            &|a, v| {
                a.collation = Some(v.to_owned());
                Ok(())
            },
        )?;
        self.ask(
            Question {
                flag: "--gcache-size".into(),
                prompt: "Galera gcache size (a node away for less than it holds rejoins by IST)"
                    .into(),
                default: Some(self.answers.gcache_size.clone()),
                given: flags.gcache_size.clone(),
                optional: false,
                fields: &|_| fields(&["server.gcache_size"]),
            },
            &|a, v| {
                a.gcache_size = v.to_owned();
                Ok(())
            },
        )?;
        self.ask(
            Question {
                flag: "--sst-method".into(),
                prompt: format!(
                    "State transfer method ({})",
                    answers::SST_METHODS.join(" or ")
                ),
                default: Some(self.answers.sst_method.clone()),
                given: flags.sst_method.clone(),
                optional: false,
                fields: &|_| fields(&["server.sst_method"]),
            },
            &|a, v| {
                a.sst_method = v.to_owned();
                Ok(())
            },
        )?;

        self.ask_controller_and_proxy(flags)?;
        self.ask_deploy(flags)?;

        if !self.missing.is_empty() {
            bail!(
                "--non-interactive needs these answers as flags: {}",
                self.missing.join(", ")
            );
        }
        Ok(())
    }

    fn ask_nodes(&mut self, node_flags: &[NodeFlag]) -> anyhow::Result<()> {
        self.heading("Data nodes (mariadbd + galley agent each)")?;
        let count = if !node_flags.is_empty() {
            node_flags.len()
        } else if !self.interactive {
            self.missing
                .push("--node name=NAME,address=ADDRESS (once per data node)".to_owned());
            return Ok(());
        } else {
            loop {
                let line = self
                    .prompter
                    .ask("How many data nodes (3 or more keep quorum when one fails)", Some("3"))?
                    .context("the input ended before the number of data nodes was answered; give the nodes with --node")?;
                let text = if line.is_empty() {
                    "3".to_owned()
                } else {
                    line
                };
                match integer(&text) {
                    Ok(count @ 1..=64) => break count as usize,
                    Ok(other) => self
                        .prompter
                        .say(&format!("  ! {other} is out of range; allowed: 1 to 64"))?,
                    Err(message) => self.prompter.say(&format!("  ! {message}"))?,
                }
            }
        };
        if count < 3 {
            self.prompter.say("  note: with fewer than three nodes, the loss of one node stops the cluster (no quorum)")?;
        } else if count % 2 == 0 {
            self.prompter.say("  note: an even count can split into two halves that both lose quorum; an odd count is safer")?;
        }
        for index in 0..count {
            let given = node_flags.get(index).cloned().unwrap_or_default();
            let number = index + 1;
            self.answers.nodes.push(NodeAnswers {
                name: format!("node{number}"),
                ..NodeAnswers::default()
            });
            let label = move |a: &Answers| format!("node \"{}\"", a.nodes[index].name);
            self.ask(
                Question {
                    flag: format!("--node name=... (node {number})"),
                    prompt: format!("Node {number}: name"),
                    default: Some(format!("node{number}")),
                    given: given.name.clone(),
                    optional: false,
                    fields: &|a| vec![format!("{}.name", label(a))],
                },
                &|a, v| {
                    a.nodes[index].name = v.to_owned();
                    Ok(())
                },
            )?;
            let name = self.answers.nodes[index].name.clone();
            self.ask(
                Question {
                    flag: format!("--node address=... (node {name})"),
                    prompt: format!(
                        "{name}: address the other nodes reach it at (IP or host name)"
                    ),
                    default: None,
                    given: given.address.clone(),
                    optional: false,
                    fields: &|a| vec![format!("{}.address", label(a))],
                },
                &|a, v| {
                    a.nodes[index].address = Some(v.to_owned());
                    Ok(())
                },
            )?;
            let Some(address) = self.answers.nodes[index].address.clone() else {
                // Non-interactive and missing: already listed.
                continue;
            };
            self.ask(
                Question {
                    flag: format!("--node ssh_address=... (node {name})"),
                    prompt: format!("{name}: address `galley deploy` reaches it at over SSH"),
                    default: Some(address.clone()),
                    given: given.ssh_address.clone(),
                    optional: false,
                    fields: &|a| vec![format!("{}.ssh_address", label(a))],
                },
                &|a, v| {
                    let same = a.nodes[index].address.as_deref() == Some(v);
                    a.nodes[index].ssh_address = (!same).then(|| v.to_owned());
                    Ok(())
                },
            )?;
            let default_data_dir = self.answers.default_data_dir(&name);
            self.ask(
                Question {
                    flag: format!("--node data_dir=... (node {name})"),
                    prompt: format!("{name}: data directory"),
                    default: Some(default_data_dir),
                    given: given.data_dir.clone(),
                    optional: false,
                    fields: &|a| vec![format!("{}.data_dir", label(a))],
                },
                &|a, v| {
                    a.nodes[index].data_dir = Some(v.to_owned());
                    Ok(())
                },
            )?;
        }
        Ok(())
    }

    fn ask_controller_and_proxy(&mut self, flags: &InitFlags) -> anyhow::Result<()> {
        self.heading(
            "Controller (watches and heals the cluster) and proxy (where applications connect)",
        )?;
        let default = self.answers.default_controller_address();
        self.ask(
            Question {
                flag: "--controller-address".into(),
                prompt: "Controller host (it listens there)".into(),
                default: Some(default),
                given: flags.controller_address.clone(),
                optional: false,
                fields: &|_| fields(&["controller.address"]),
            },
            &|a, v| {
                a.controller_address = Some(v.to_owned());
                Ok(())
            },
        )?;
        let default = self.answers.default_controller_port().to_string();
        self.ask(
            Question {
                flag: "--controller-port".into(),
                prompt: "Controller port (API and console)".into(),
                default: Some(default),
                given: flags.controller_port.clone(),
                optional: false,
                fields: &|_| fields(&["controller.port"]),
            },
            &|a, v| {
                a.controller_port = Some(integer(v)?);
                Ok(())
            },
        )?;
        let default = self.answers.default_proxy_address();
        self.ask(
            Question {
                flag: "--proxy-address".into(),
                prompt: "Proxy host (applications connect there)".into(),
                default: Some(default),
                given: flags.proxy_address.clone(),
                optional: false,
                fields: &|_| fields(&["proxy.address"]),
            },
            &|a, v| {
                a.proxy_address = Some(v.to_owned());
                Ok(())
            },
        )?;
        type Slot = fn(&mut Answers) -> &mut Option<i64>;
        let ports: [(&str, &str, &str, Option<String>, Slot); 3] = [
            (
                "--proxy-writer-port",
                "writer_port",
                "Proxy writer port (one writer node; for OpenStack services)",
                flags.proxy_writer_port.clone(),
                |a| &mut a.writer_port,
            ),
            (
                "--proxy-reader-port",
                "reader_port",
                "Proxy reader port (reads balanced over healthy nodes)",
                flags.proxy_reader_port.clone(),
                |a| &mut a.reader_port,
            ),
            (
                "--proxy-admin-port",
                "admin_port",
                "Proxy admin port (status, metrics, drain)",
                flags.proxy_admin_port.clone(),
                |a| &mut a.admin_port,
            ),
        ];
        for (flag, field, prompt, given, slot) in ports {
            // Each default depends on the ports answered before it.
            let default = match field {
                "writer_port" => self.answers.default_writer_port(),
                "reader_port" => self.answers.default_reader_port(),
                _ => self.answers.default_admin_port(),
            };
            let spec_field = format!("proxy.{field}");
            self.ask(
                Question {
                    flag: flag.to_owned(),
                    prompt: prompt.to_owned(),
                    default: Some(default.to_string()),
                    given,
                    optional: false,
                    fields: &|_| vec![spec_field.clone()],
                },
                &|a, v| {
                    *slot(a) = Some(integer(v)?);
                    Ok(())
                },
            )?;
        }
        Ok(())
    }

    fn ask_deploy(&mut self, flags: &InitFlags) -> anyhow::Result<()> {
        self.heading("Deployment (how `galley deploy` reaches and sets up the hosts)")?;
        self.ask(
            Question {
                flag: "--ssh-user".into(),
                prompt: "SSH user (root, or one with passwordless sudo)".into(),
                default: Some(self.answers.deploy.ssh_user.clone()),
                given: flags.ssh_user.clone(),
                optional: false,
                fields: &|_| fields(&["deploy.ssh_user"]),
            },
            &|a, v| {
                a.deploy.ssh_user = v.to_owned();
                Ok(())
            },
        )?;
        self.ask(
            Question {
                flag: "--ssh-port".into(),
                prompt: "SSH port".into(),
                default: Some(self.answers.deploy.ssh_port.to_string()),
                given: flags.ssh_port.clone(),
                optional: false,
                fields: &|_| fields(&["deploy.ssh_port"]),
            },
            &|a, v| {
                a.deploy.ssh_port = integer(v)?;
                Ok(())
            },
        )?;
        self.ask(
            Question {
                flag: "--ssh-key".into(),
                prompt: "SSH private key file (Enter or `none`: ssh's defaults and agent)".into(),
                default: None,
                given: flags.ssh_key.clone(),
                optional: true,
                fields: &|_| fields(&["deploy.ssh_key"]),
            },
            &|a, v| {
                a.deploy.ssh_key = (!v.is_empty() && v != "none").then(|| v.to_owned());
                Ok(())
            },
        )?;
        self.ask(
            Question {
                flag: "--install-dir".into(),
                prompt: "Install directory on each host".into(),
                default: Some(self.answers.deploy.install_dir.clone()),
                given: flags.install_dir.clone(),
                optional: false,
                fields: &|_| fields(&["deploy.install_dir"]),
            },
            &|a, v| {
                a.deploy.install_dir = v.to_owned();
                Ok(())
            },
        )?;
        self.ask(
            Question {
                flag: "--service-manager".into(),
                prompt: format!("Service manager ({})", answers::SERVICE_MANAGERS.join(", ")),
                default: Some(self.answers.deploy.service_manager.clone()),
                given: flags.service_manager.clone(),
                optional: false,
                fields: &|_| fields(&["deploy.service_manager"]),
            },
            &|a, v| {
                a.deploy.service_manager = v.to_owned();
                Ok(())
            },
        )?;
        Ok(())
    }

    pub fn say(&mut self, text: &str) -> std::io::Result<()> {
        self.prompter.say(text)
    }

    /// The writer back, with everything shown so far (a transcript, in tests).
    pub fn into_output(self) -> W {
        self.prompter.into_output()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        input: &str,
        flags: &InitFlags,
        interactive: bool,
    ) -> (anyhow::Result<()>, Answers, String) {
        let mut flow = Flow::new(
            input.as_bytes(),
            Vec::new(),
            true,
            Path::new("/srv/galley"),
            interactive,
        );
        let result = flow.run(flags);
        let answers = flow.answers.clone();
        let output = String::from_utf8(flow.into_output()).unwrap();
        (result, answers, output)
    }

    /// Every answer typed, for three hosts; blank lines take defaults.
    const THREE_HOSTS: &str = "\
mariadb\n10.11\nopenstack\n3\n\
db1\n10.0.0.11\n\n\n\
db2\n10.0.0.12\nbastion-db2\n/data/mysql\n\
db3\n10.0.0.13\n\n\n\
\n\n2G\n4000\n\n\n1G\nmariabackup\n\
\n\n\n\n\n\n\
deploy\n2222\n/root/.ssh/id_ed25519\n\nsystemd\n";

    #[test]
    fn scripted_answers_make_a_spec_that_loads() {
        let (result, answers, output) = run(THREE_HOSTS, &InitFlags::default(), true);
        result.unwrap_or_else(|error| panic!("{error:#}\n{output}"));
        let loaded = spec::parse(Path::new("galley.toml"), &answers.render()).unwrap();
        let spec = loaded.spec;
        assert_eq!(spec.name, "openstack");
        assert_eq!(spec.node_names(), ["db1", "db2", "db3"]);
        assert_eq!(spec.nodes[1].ssh_address, "bastion-db2");
        assert_eq!(spec.nodes[0].ssh_address, "10.0.0.11");
        assert_eq!(spec.nodes[1].data_dir, Path::new("/data/mysql"));
        assert_eq!(spec.nodes[0].data_dir, Path::new("/var/lib/galley/db1"));
        assert_eq!(spec.server.buffer_pool_size, spec::ByteSize(2 << 30));
        assert_eq!(spec.server.max_connections, 4000);
        assert_eq!(spec.server.sst_method, spec::SstMethod::Mariabackup);
        assert_eq!(spec.secrets_file, Path::new("/etc/galley/secrets.toml"));
        let proxy = spec.proxy.unwrap();
        assert_eq!(
            (proxy.address.as_str(), proxy.writer_port),
            ("10.0.0.11", 13306)
        );
        assert_eq!(spec.controller.unwrap().address, "10.0.0.11");
        let deploy = spec.deploy.unwrap();
        assert_eq!(deploy.ssh_user, "deploy");
        assert_eq!(deploy.ssh_port, 2222);
        assert_eq!(deploy.ssh_key.unwrap(), Path::new("/root/.ssh/id_ed25519"));
        assert_eq!(deploy.service_manager, spec::ServiceManager::Systemd);
        assert!(
            output
                .contains("Proxy writer port (one writer node; for OpenStack services) [13306]: "),
            "{output}"
        );
    }

    #[test]
    fn a_bad_answer_is_shown_with_the_spec_problem_and_asked_again() {
        // (question reached by these answers, bad answer, good answer, what the error says)
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "",
                "mysql",
                "mariadb",
                "`mysql` is not supported; allowed: mariadb",
            ),
            ("mariadb\n", "11.4", "10.11", "allowed: 10.11"),
            (
                "mariadb\n10.11\n",
                "open stack",
                "openstack",
                "letters, digits",
            ),
            (
                "mariadb\n10.11\nopenstack\n",
                "0",
                "3",
                "0 is out of range; allowed: 1 to 64",
            ),
            (
                "mariadb\n10.11\nopenstack\n3\ndb1\n",
                "10.0.0.1x",
                "10.0.0.11",
                "neither an IP address nor a host name",
            ),
            (
                "mariadb\n10.11\nopenstack\n3\ndb1\n10.0.0.11\n\n\n",
                "db1",
                "db2",
                "duplicate node name",
            ),
            (
                "mariadb\n10.11\nopenstack\n3\ndb1\n10.0.0.11\n\n",
                "var/lib/mysql",
                "/var/lib/mysql",
                "relative; give an absolute path",
            ),
        ];
        for (before, bad, good, message) in cases {
            let input = format!("{before}{bad}\n{good}\n");
            let (result, _, output) = run(&input, &InitFlags::default(), true);
            // The script ends soon after: the run stops with "input ended".
            let error = result.unwrap_err().to_string();
            assert!(error.contains("the input ended before"), "{error}");
            assert!(
                output.contains("  ! ") && output.contains(message),
                "{bad}: {output}"
            );
            // The same question again, and the good answer taken.
            let lines: Vec<&str> = output.lines().collect();
            let at = lines
                .iter()
                .position(|line| line.starts_with("  ! "))
                .unwrap();
            let asked = lines[at - 1].strip_suffix(bad).expect("the bad answer");
            assert_eq!(lines[at + 1], format!("{asked}{good}"), "{output}");
        }
    }

    #[test]
    fn later_answers_are_checked_against_earlier_ones() {
        // A bad size and a collation of another character set, each re-asked.
        let input = THREE_HOSTS.replacen("\n2G\n", "\n12Q\n2G\n", 1).replacen(
            "4000\n\n\n",
            "4000\nlatin1\nutf8mb4_general_ci\nlatin1_swedish_ci\n",
            1,
        );
        let (result, answers, output) = run(&input, &InitFlags::default(), true);
        result.unwrap_or_else(|error| panic!("{error:#}\n{output}"));
        assert!(
            output.contains("  ! `12Q` has an unknown unit; allowed: K, M, G"),
            "{output}"
        );
        assert!(
            output.contains("does not belong to character set `latin1`"),
            "{output}"
        );
        assert_eq!(answers.collation.as_deref(), Some("latin1_swedish_ci"));
        assert_eq!(answers.buffer_pool_size, "2G");
    }

    #[test]
    fn non_interactive_lists_every_missing_required_flag() {
        let flags = InitFlags {
            non_interactive: true,
            ..InitFlags::default()
        };
        let (result, _, _) = run("", &flags, false);
        let error = result.unwrap_err().to_string();
        assert!(error.contains("--cluster-name"), "{error}");
        assert!(
            error.contains("--node name=NAME,address=ADDRESS"),
            "{error}"
        );
        // A node without its address is named too.
        let flags = InitFlags {
            non_interactive: true,
            nodes: vec!["name=db1".into()],
            cluster_name: Some("openstack".into()),
            ..InitFlags::default()
        };
        let (result, _, _) = run("", &flags, false);
        let error = result.unwrap_err().to_string();
        assert!(error.contains("--node address=... (node db1)"), "{error}");
        assert!(!error.contains("--cluster-name"), "{error}");
    }

    #[test]
    fn flags_answer_questions_and_bad_flags_are_named() {
        let flags = InitFlags {
            non_interactive: true,
            cluster_name: Some("openstack".into()),
            nodes: vec![
                "name=db1,address=10.0.0.11".into(),
                "name=db2,address=10.0.0.12,data_dir=/data/db2".into(),
                "name=db3,address=10.0.0.13,ssh_address=jump3".into(),
            ],
            ssh_user: Some("ops".into()),
            ..InitFlags::default()
        };
        let (result, answers, output) = run("", &flags, false);
        result.unwrap();
        assert_eq!(output, "", "non-interactive asks nothing");
        let spec = spec::parse(Path::new("galley.toml"), &answers.render())
            .unwrap()
            .spec;
        assert_eq!(spec.nodes[1].data_dir, Path::new("/data/db2"));
        assert_eq!(spec.nodes[2].ssh_address, "jump3");
        assert_eq!(spec.deploy.unwrap().ssh_user, "ops");

        let bad = InitFlags {
            max_connections: Some("lots".into()),
            ..flags.clone()
        };
        let error = run("", &bad, false).0.unwrap_err().to_string();
        assert_eq!(
            error,
            "--max-connections lots: `lots` is not a whole number"
        );
        let bad = InitFlags {
            sst_method: Some("xtrabackup".into()),
            ..flags.clone()
        };
        let error = run("", &bad, false).0.unwrap_err().to_string();
        assert!(error.starts_with("--sst-method xtrabackup: `xtrabackup` is not supported; allowed: rsync, mariabackup"), "{error}");
    }

    #[test]
    fn node_flags_parse_or_say_what_is_allowed() {
        let cases: &[(&str, Result<NodeFlag, &str>)] = &[
            (
                "name=db1,address=10.0.0.11",
                Ok(NodeFlag {
                    name: Some("db1".into()),
                    address: Some("10.0.0.11".into()),
                    ..NodeFlag::default()
                }),
            ),
            (
                " address = h1 , data_dir=/d ,ssh_address=j1",
                Ok(NodeFlag {
                    address: Some("h1".into()),
                    data_dir: Some("/d".into()),
                    ssh_address: Some("j1".into()),
                    ..NodeFlag::default()
                }),
            ),
            (
                "name=db1,port=3306",
                Err("unknown key `port`; keys: name, address, data_dir, ssh_address"),
            ),
            ("db1", Err("`db1` is not KEY=VALUE")),
        ];
        for (text, expected) in cases {
            match (NodeFlag::parse(text), expected) {
                (Ok(flag), Ok(expected)) => assert_eq!(&flag, expected, "{text}"),
                (Err(error), Err(expected)) => assert!(error.contains(expected), "{text}: {error}"),
                (got, _) => panic!("{text}: {got:?}"),
            }
        }
    }
}
