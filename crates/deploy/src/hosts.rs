//! Which host runs what: one host per data node (reached at its `ssh_address`), the
//! proxy and controller on a node's host when their address is that node's, or on hosts
//! of their own, and each arbitrator (garbd) on a host without a data node. Pure.

use std::net::IpAddr;

use spec::{ArbitratorSpec, ClusterSpec, DeploySpec, NodeSpec};

/// Where galley.toml lives on every host.
pub const HOST_CONFIG: &str = "/etc/galley/galley.toml";

/// One machine galley deploys to, with the roles the spec gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// A stable name for logs and bundle folders: the node's name, else `controller` or
    /// `proxy`.
    pub label: String,
    /// Where SSH reaches the host.
    pub ssh_address: String,
    pub node: Option<NodeSpec>,
    pub proxy: bool,
    pub controller: bool,
    /// An arbitrator (garbd) this host runs: never beside a data node, whose host's
    /// failure would then cost two votes at once.
    pub arbitrator: Option<ArbitratorSpec>,
    /// The first node by priority: it bootstraps a new cluster.
    pub bootstrap: bool,
}

impl Host {
    /// Services and roles on this host, in the words the scripts use.
    pub fn roles(&self) -> Vec<&'static str> {
        let mut roles = Vec::new();
        if self.node.is_some() {
            roles.push("agent");
        }
        if self.proxy {
            roles.push("proxy");
        }
        if self.controller {
            roles.push("controller");
        }
        if self.arbitrator.is_some() {
            // The word the scripts use for the galley-garbd service.
            roles.push("garbd");
        }
        roles
    }

    /// Every port this host must have free (or held by galley), with what it is for.
    pub fn ports(&self, spec: &ClusterSpec) -> Vec<(u16, String)> {
        let mut ports = Vec::new();
        if let Some(node) = &self.node {
            for (field, port) in node.ports() {
                ports.push((port, format!("node {} {field}", node.name)));
            }
        }
        if let (true, Some(proxy)) = (self.proxy, &spec.proxy) {
            ports.push((proxy.writer_port, "proxy writer_port".to_owned()));
            ports.push((proxy.reader_port, "proxy reader_port".to_owned()));
            if let Some(port) = proxy.multi_writer_port {
                ports.push((port, "proxy multi_writer_port".to_owned()));
            }
            ports.push((proxy.admin_port, "proxy admin_port".to_owned()));
        }
        if let (true, Some(controller)) = (self.controller, &spec.controller) {
            ports.push((controller.port, "controller port".to_owned()));
        }
        if let Some(arbitrator) = &self.arbitrator {
            ports.push((
                arbitrator.galera_port,
                format!("arbitrator {} galera_port", arbitrator.name),
            ));
        }
        ports
    }
}

/// A spec that cannot be deployed as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("galley.toml has no [deploy] section; add one naming the SSH user with passwordless sudo, like:\n[deploy]\nssh_user = \"deploy\"")]
    NoDeploySection,
    #[error("nodes {first} and {second} are both on host {address}; galley deploy puts one data node on each host")]
    SharedHost {
        first: String,
        second: String,
        address: String,
    },
    #[error("{field} = \"{address}\" is not a host galley can deploy to; give the address of the host that runs it (the one the nodes and clients reach)")]
    NotDeployable { field: String, address: String },
    #[error("proxy.admin_address = \"{address}\" (127.0.0.1 unless set) is reachable only on the proxy's own host, but the node hosts drain the proxy through it in a rolling restart and the controller reads its status; set proxy.admin_address to an address of the proxy's host that they reach, on a management network rather than the one SQL clients use (for example admin_address = \"{proxy_address}\")")]
    AdminNotReachable {
        address: String,
        proxy_address: String,
    },
    #[error("arbitrator {arbitrator} is on the host of node {node} ({address}); galley deploy runs garbd only on a host without a data node, or that host's failure costs two votes and the arbitrator helps nothing")]
    ArbitratorBesideNode {
        arbitrator: String,
        node: String,
        address: String,
    },
    #[error("arbitrators {first} and {second} are both on host {address}; one garbd per host")]
    SharedArbitratorHost {
        first: String,
        second: String,
        address: String,
    },
}

/// The hosts of a spec, data nodes first in spec order, then the others.
pub fn plan_hosts(spec: &ClusterSpec) -> Result<Vec<Host>, PlanError> {
    deploy_section(spec)?;
    let bootstrap_name = spec
        .nodes
        .iter()
        .min_by_key(|node| node.priority)
        .map(|node| node.name.clone());
    let mut hosts: Vec<Host> = Vec::new();
    for node in &spec.nodes {
        if let Some(other) = hosts.iter().find(|host| {
            host.ssh_address == node.ssh_address
                || host
                    .node
                    .as_ref()
                    .is_some_and(|n| n.address == node.address)
        }) {
            return Err(PlanError::SharedHost {
                first: other.label.clone(),
                second: node.name.clone(),
                address: node.address.clone(),
            });
        }
        hosts.push(Host {
            label: node.name.clone(),
            ssh_address: node.ssh_address.clone(),
            bootstrap: bootstrap_name.as_deref() == Some(node.name.as_str()),
            node: Some(node.clone()),
            proxy: false,
            controller: false,
            arbitrator: None,
        });
    }
    if let Some(proxy) = &spec.proxy {
        let host = host_for(&mut hosts, "proxy.address", &proxy.address, "proxy")?;
        host.proxy = true;
        if !reachable_from_other_hosts(&proxy.admin_address) {
            return Err(PlanError::AdminNotReachable {
                address: proxy.admin_address.clone(),
                proxy_address: proxy.address.clone(),
            });
        }
    }
    if let Some(controller) = &spec.controller {
        let host = host_for(
            &mut hosts,
            "controller.address",
            &controller.address,
            "controller",
        )?;
        host.controller = true;
    }
    for arbitrator in &spec.arbitrators {
        let label = format!("arbitrator \"{}\".address", arbitrator.name);
        let host = host_for(&mut hosts, &label, &arbitrator.address, &arbitrator.name)?;
        if let Some(node) = &host.node {
            return Err(PlanError::ArbitratorBesideNode {
                arbitrator: arbitrator.name.clone(),
                node: node.name.clone(),
                address: arbitrator.address.clone(),
            });
        }
        if let Some(other) = &host.arbitrator {
            return Err(PlanError::SharedArbitratorHost {
                first: other.name.clone(),
                second: arbitrator.name.clone(),
                address: arbitrator.address.clone(),
            });
        }
        if host.ssh_address == arbitrator.address {
            host.ssh_address = arbitrator.ssh_address.clone();
        }
        host.arbitrator = Some(arbitrator.clone());
    }
    Ok(hosts)
}

/// The `[deploy]` section, which `deploy` and `generate` need.
pub fn deploy_section(spec: &ClusterSpec) -> Result<&DeploySpec, PlanError> {
    spec.deploy.as_ref().ok_or(PlanError::NoDeploySection)
}

/// Whether other hosts reach a service that listens on `address`: not loopback, and not
/// the unspecified address (which names no host to connect to).
fn reachable_from_other_hosts(address: &str) -> bool {
    address != "localhost"
        && !address
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
}

fn host_for<'a>(
    hosts: &'a mut Vec<Host>,
    field: &str,
    address: &str,
    label: &str,
) -> Result<&'a mut Host, PlanError> {
    if !reachable_from_other_hosts(address) {
        return Err(PlanError::NotDeployable {
            field: field.to_owned(),
            address: address.to_owned(),
        });
    }
    let position = hosts.iter().position(|host| {
        host.node
            .as_ref()
            .is_some_and(|node| node.address == address)
            || host.ssh_address == address
    });
    let index = match position {
        Some(index) => index,
        None => {
            hosts.push(Host {
                label: label.to_owned(),
                ssh_address: address.to_owned(),
                node: None,
                proxy: false,
                controller: false,
                arbitrator: None,
                bootstrap: false,
            });
            hosts.len() - 1
        }
    };
    Ok(&mut hosts[index])
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &str = r#"
[cluster]
name = "prod"
[deploy]
ssh_user = "ops"
[[node]]
name = "db1"
address = "10.0.0.1"
data_dir = "/var/lib/mysql"
priority = 2
[[node]]
name = "db2"
address = "10.0.0.2"
ssh_address = "192.0.2.2"
data_dir = "/var/lib/mysql"
priority = 1
[[node]]
name = "db3"
address = "10.0.0.3"
data_dir = "/var/lib/mysql"
priority = 3
"#;

    fn hosts(extra: &str) -> Result<Vec<String>, PlanError> {
        let text = format!("{NODES}{extra}");
        let spec = spec::parse("galley.toml".as_ref(), &text)
            .expect("valid spec")
            .spec;
        Ok(plan_hosts(&spec)?
            .iter()
            .map(|host| {
                format!(
                    "{}@{} {}{}",
                    host.label,
                    host.ssh_address,
                    host.roles().join("+"),
                    if host.bootstrap { " bootstrap" } else { "" }
                )
            })
            .collect())
    }

    #[test]
    fn places_every_role() {
        let cases: &[(&str, Result<Vec<&str>, PlanError>)] = &[
            (
                "",
                Ok(vec!["db1@10.0.0.1 agent", "db2@192.0.2.2 agent bootstrap", "db3@10.0.0.3 agent"]),
            ),
            (
                "[proxy]\naddress = \"10.0.0.9\"\nadmin_address = \"10.0.1.9\"\n[controller]\naddress = \"10.0.0.9\"\n",
                Ok(vec![
                    "db1@10.0.0.1 agent",
                    "db2@192.0.2.2 agent bootstrap",
                    "db3@10.0.0.3 agent",
                    "proxy@10.0.0.9 proxy+controller",
                ]),
            ),
            (
                "[proxy]\naddress = \"10.0.0.2\"\nadmin_address = \"10.0.0.2\"\nwriter_port = 3406\n[controller]\naddress = \"10.0.0.8\"\n",
                Ok(vec![
                    "db1@10.0.0.1 agent",
                    "db2@192.0.2.2 agent+proxy bootstrap",
                    "db3@10.0.0.3 agent",
                    "controller@10.0.0.8 controller",
                ]),
            ),
            (
                "[proxy]\naddress = \"127.0.0.1\"\n",
                Err(PlanError::NotDeployable {
                    field: "proxy.address".to_owned(),
                    address: "127.0.0.1".to_owned(),
                }),
            ),
            (
                "[proxy]\naddress = \"10.0.0.9\"\n",
                Err(PlanError::AdminNotReachable {
                    address: "127.0.0.1".to_owned(),
                    proxy_address: "10.0.0.9".to_owned(),
                }),
            ),
            (
                "[proxy]\naddress = \"10.0.0.9\"\nadmin_address = \"0.0.0.0\"\n",
                Err(PlanError::AdminNotReachable {
                    address: "0.0.0.0".to_owned(),
                    proxy_address: "10.0.0.9".to_owned(),
                }),
            ),
            (
                "[controller]\naddress = \"0.0.0.0\"\n",
                Err(PlanError::NotDeployable {
                    field: "controller.address".to_owned(),
                    address: "0.0.0.0".to_owned(),
                }),
            ),
        ];
        for (extra, expected) in cases {
            let expected = expected
                .clone()
                .map(|hosts| hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>());
            assert_eq!(hosts(extra), expected, "with {extra:?}");
        }
    }

    #[test]
    fn refuses_two_nodes_on_one_host_and_a_missing_section() {
        let shared = NODES.replace("address = \"10.0.0.3\"", "address = \"10.0.0.1\"\nclient_port = 3307\ngalera_port = 4577\nist_port = 4578\nsst_port = 4445\nagent_port = 4581\nrun_dir = \"/run/galley/x\"\nlog_dir = \"/var/log/x\"");
        let shared = shared.replacen(
            "data_dir = \"/var/lib/mysql\"\npriority = 3",
            "data_dir = \"/var/lib/mysql3\"\npriority = 3",
            1,
        );
        let spec = spec::parse("galley.toml".as_ref(), &shared)
            .expect("valid spec")
            .spec;
        assert_eq!(
            plan_hosts(&spec).unwrap_err().to_string(),
            "nodes db1 and db3 are both on host 10.0.0.1; galley deploy puts one data node on each host"
        );
        let without = NODES.replace("[deploy]\nssh_user = \"ops\"\n", "");
        let spec = spec::parse("galley.toml".as_ref(), &without)
            .expect("valid spec")
            .spec;
        assert_eq!(plan_hosts(&spec), Err(PlanError::NoDeploySection));
    }
}
