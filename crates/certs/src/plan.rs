//! Which certificates a cluster spec needs, with their names and subject alternative
//! names: pure, from the spec alone.

use std::net::IpAddr;

use spec::ClusterSpec;

/// What a certificate is for, which decides its extended key usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A data node: server for clients, Galera peers and SST, and client towards its
    /// peers (Galera and the SST scripts use one certificate both ways).
    Node,
    /// A client of the cluster: the controller, the CLI, the proxy.
    Client,
}

/// One leaf certificate to issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// `node-db1`, `client-controller`: the file stem in the TLS directory.
    pub stem: String,
    /// The subject's common name: `db1.prod.galley`. One word, on purpose: the rsync
    /// SST over stunnel sends the joiner's CN as the user of `CN:secret@host`, and the
    /// donor refuses a CN with a space ("Bad remote auth string", docs/tls.md).
    pub common_name: String,
    pub role: Role,
    /// IP addresses and DNS names the certificate is valid for (nodes only).
    pub ip_sans: Vec<IpAddr>,
    pub dns_sans: Vec<String>,
}

/// Every leaf certificate of `spec`: one per managed node, with the node's address
/// (and `ssh_address` when it differs) in its SAN, `localhost` for a loopback node; one
/// client certificate each for the controller, the CLI and the proxy.
pub fn plan(spec: &ClusterSpec) -> Vec<Planned> {
    let mut planned = Vec::new();
    for node in spec.nodes.iter().filter(|node| node.managed) {
        let mut ip_sans = Vec::new();
        let mut dns_sans = Vec::new();
        for address in [&node.address, &node.ssh_address] {
            match address.parse::<IpAddr>() {
                Ok(ip) if !ip_sans.contains(&ip) => ip_sans.push(ip),
                Ok(_) => {}
                Err(_) if !dns_sans.contains(address) => dns_sans.push(address.clone()),
                Err(_) => {}
            }
        }
        if spec::is_local_address(&node.address) && !dns_sans.iter().any(|dns| dns == "localhost") {
            dns_sans.push("localhost".to_owned());
        }
        planned.push(Planned {
            stem: format!("node-{}", node.name),
            common_name: format!("{}.{}.galley", node.name, spec.name),
            role: Role::Node,
            ip_sans,
            dns_sans,
        });
    }
    for client in ["controller", "cli", "proxy"] {
        planned.push(Planned {
            stem: format!("client-{client}"),
            common_name: format!("{client}.{}.galley", spec.name),
            role: Role::Client,
            ip_sans: Vec::new(),
            dns_sans: Vec::new(),
        });
    }
    planned
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(nodes: &str) -> ClusterSpec {
        let text = format!("[cluster]\nname = \"prod\"\n[tls]\n{nodes}");
        spec::parse(std::path::Path::new("/etc/galley/galley.toml"), &text)
            .expect("valid spec")
            .spec
    }

    fn node(name: &str, address: &str, extra: &str) -> String {
        format!("[[node]]\nname = \"{name}\"\naddress = \"{address}\"\n{extra}data_dir = \"/var/lib/galley/{name}\"\nrun_dir = \"/run/galley/{name}\"\nlog_dir = \"/var/log/galley/{name}\"\n")
    }

    #[test]
    fn nodes_get_their_addresses_and_clients_get_none() {
        let spec = spec(
            &[
                node("db1", "10.0.0.1", ""),
                node("db2", "db2.example.org", "ssh_address = \"192.0.2.2\"\n"),
                node("db3", "::1", ""),
            ]
            .concat(),
        );
        let summary: Vec<String> = plan(&spec)
            .iter()
            .map(|planned| {
                format!(
                    "{} {:?} ip={:?} dns={:?}",
                    planned.stem, planned.role, planned.ip_sans, planned.dns_sans
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                "node-db1 Node ip=[10.0.0.1] dns=[]",
                "node-db2 Node ip=[192.0.2.2] dns=[\"db2.example.org\"]",
                "node-db3 Node ip=[::1] dns=[\"localhost\"]",
                "client-controller Client ip=[] dns=[]",
                "client-cli Client ip=[] dns=[]",
                "client-proxy Client ip=[] dns=[]",
            ]
        );
        assert_eq!(plan(&spec)[0].common_name, "db1.prod.galley");
    }
}
