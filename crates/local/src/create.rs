//! The spec `galley up` writes for a new local cluster, on the first block of ports
//! that is wholly free, and the state directory it goes into.

use std::io::Write as _;
use std::path::Path;

use agent::{Binaries, Secrets};
use anyhow::{bail, Context as _};
use spec::ClusterSpec;

use crate::Location;

/// What a new local cluster is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LocalTopology {
    /// Three data nodes (the default).
    #[default]
    ThreeNodes,
    /// Two data nodes and an arbitrator, garbd (`galley up --arbitrator`;
    /// docs/arbitrator.md).
    TwoNodesAndArbitrator,
}

/// The spec `galley up` writes for a new local cluster: three nodes on 127.0.0.1, on
/// ports clear of a MySQL server on 3306, everything under the state directory.
pub fn local_spec_text(dir: &Path, offset: u16) -> String {
    local_spec_text_for(dir, offset, LocalTopology::ThreeNodes)
}

/// The same, for `topology`: with an arbitrator, two nodes and `[[arbitrator]] garbd1`.
pub fn local_spec_text_for(dir: &Path, offset: u16, topology: LocalTopology) -> String {
    let data_nodes = match topology {
        LocalTopology::ThreeNodes => 3,
        LocalTopology::TwoNodesAndArbitrator => 2,
    };
    let dir = dir.display();
    let mut text = format!(
        "# galley cluster spec, written by `galley up`. Edit and run `galley up` again.\n\
         [cluster]\n\
         name = \"galley\"\n\
         secrets_file = \"{dir}/secrets.toml\"\n\
         \n\
         [server]\n\
         # Sized for three nodes sharing one machine.\n\
         buffer_pool_size = \"128M\"\n\
         log_file_size = \"48M\"\n\
         gcache_size = \"128M\"\n\
         max_connections = 1000\n\
         innodb_flush_log_at_trx_commit = 1\n\
         sst_method = \"rsync\"\n\
         \n\
         [proxy]\n\
         # Applications connect here: one writer node, reads balanced over healthy nodes.\n\
         address = \"127.0.0.1\"\n\
         writer_port = {writer}\n\
         reader_port = {reader}\n\
         admin_port = {admin}\n\
         \n\
         [controller]\n\
         # Watches every node, keeps the history and heals the cluster by itself;\n\
         # serves the web console and REST API on address:port.\n\
         state_dir = \"{dir}/controller\"\n\
         address = \"127.0.0.1\"\n\
         port = {console}\n",
        writer = 13306 + offset,
        reader = 13307 + offset,
        admin = 13380 + offset,
        console = 13390 + offset,
    );
    for index in 1..=data_nodes {
        text.push_str(&format!(
            "\n[[node]]\n\
             name = \"node{index}\"\n\
             address = \"127.0.0.1\"\n\
             client_port = {client}\n\
             galera_port = {galera}\n\
             ist_port = {ist}\n\
             sst_port = {sst}\n\
             agent_port = {agent}\n\
             data_dir = \"{dir}/node{index}/data\"\n\
             run_dir = \"{dir}/node{index}/run\"\n\
             log_dir = \"{dir}/node{index}/log\"\n",
            client = 13300 + offset + index,
            galera = 14560 + offset + index,
            ist = 14570 + offset + index,
            sst = 14440 + offset + index,
            agent = 14580 + offset + index,
        ));
    }
    if topology == LocalTopology::TwoNodesAndArbitrator {
        text.push_str(&format!(
            "\n# A voting member without data: two nodes and garbd keep quorum when one fails.\n\
             [[arbitrator]]\n\
             name = \"garbd1\"\n\
             address = \"127.0.0.1\"\n\
             galera_port = {galera}\n\
             run_dir = \"{dir}/garbd1/run\"\n\
             log_dir = \"{dir}/garbd1/log\"\n",
            galera = 14569 + offset,
        ));
    }
    text
}

/// Creates a new local cluster's state directory: galley.toml and the secrets file.
/// Checks the software first, so that a machine without MariaDB gets nothing half-made.
pub fn create_local(location: &Location, topology: LocalTopology) -> anyhow::Result<()> {
    // Another local cluster (or anything else) may hold the default ports: take the
    // first block of ports that is wholly free, so clusters in different directories
    // can run side by side.
    let mut chosen = None;
    for offset in (0..10).map(|step| step * 100) {
        let text = local_spec_text_for(&location.dir, offset, topology);
        let loaded = spec::parse(&location.config, &text)?;
        if all_ports_free(&loaded.spec) {
            chosen = Some((text, loaded));
            break;
        }
        if offset == 0 {
            eprintln!("note: galley's default local ports are in use; looking for a free block");
        }
    }
    let Some((text, loaded)) = chosen else {
        bail!("no free block of local ports found (tried 13301-14583 and nine blocks above, 100 apart); stop other clusters with `galley down --dir ...`");
    };
    Binaries::locate(&loaded.spec)?;
    if !loaded.spec.arbitrators.is_empty() {
        crate::arbitrator::locate_garbd()?;
    }
    std::fs::create_dir_all(&location.dir)
        .with_context(|| format!("cannot create {}", location.dir.display()))?;
    // mariadbd runs as its own OS user and must be able to pass through to its dirs.
    std::fs::set_permissions(
        &location.dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    Secrets::load_or_create(&loaded.spec.secrets_file)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&location.config)
        .with_context(|| format!("cannot create {}", location.config.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

fn all_ports_free(spec: &ClusterSpec) -> bool {
    let node_ports = spec
        .nodes
        .iter()
        .all(|node| agent::ports::taken_ports(&node.address, &node.ports()).is_empty());
    let proxy_ports = spec.proxy.as_ref().is_none_or(|proxy| {
        let ports = [
            ("writer_port", proxy.writer_port),
            ("reader_port", proxy.reader_port),
        ];
        agent::ports::taken_ports(&proxy.address, &ports).is_empty()
            && agent::ports::taken_ports(&proxy.admin_address, &[("admin_port", proxy.admin_port)])
                .is_empty()
    });
    let controller_port = spec.controller.as_ref().is_none_or(|controller| {
        agent::ports::taken_ports(&controller.address, &[("port", controller.port)]).is_empty()
    });
    let arbitrator_ports = spec.arbitrators.iter().all(|arbitrator| {
        agent::ports::taken_ports(
            &arbitrator.address,
            &[("galera_port", arbitrator.galera_port)],
        )
        .is_empty()
    });
    node_ports && proxy_ports && controller_port && arbitrator_ports
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::{local_spec_text, local_spec_text_for, LocalTopology};

    /// Every port of one block of the local spec, checked to be valid and distinct.
    fn ports_of_block(offset: u16) -> BTreeSet<u16> {
        let dir = Path::new("/var/lib/galley-test");
        let text = local_spec_text(dir, offset);
        let loaded = spec::parse(&dir.join("galley.toml"), &text)
            .unwrap_or_else(|error| panic!("offset {offset}: {error}"));
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let spec = loaded.spec;
        assert_eq!(spec.nodes.len(), 3);
        let proxy = spec.proxy.as_ref().expect("the local spec has a proxy");
        let controller = spec.controller.as_ref().expect("and a controller");
        let mut ports: Vec<u16> = spec
            .nodes
            .iter()
            .flat_map(|node| node.ports().into_iter().map(|(_, port)| port))
            .collect();
        ports.extend([
            proxy.writer_port,
            proxy.reader_port,
            proxy.admin_port,
            controller.port,
        ]);
        let distinct: BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len(), "offset {offset}: {ports:?}");
        distinct
    }

    #[test]
    fn every_block_of_local_ports_is_a_valid_spec_clear_of_the_others() {
        let blocks: Vec<BTreeSet<u16>> = (0..10).map(|step| ports_of_block(step * 100)).collect();
        for (index, block) in blocks.iter().enumerate() {
            assert!(!block.contains(&3306), "block {index} takes MySQL's port");
            for other in &blocks[index + 1..] {
                assert!(
                    block.is_disjoint(other),
                    "blocks overlap: {block:?} {other:?}"
                );
            }
        }
    }

    #[test]
    fn the_arbitrator_topology_is_two_nodes_and_garbd_without_warnings() {
        let dir = Path::new("/var/lib/galley-test");
        for offset in (0..10).map(|step| step * 100) {
            let text = local_spec_text_for(dir, offset, LocalTopology::TwoNodesAndArbitrator);
            let loaded = spec::parse(&dir.join("galley.toml"), &text)
                .unwrap_or_else(|error| panic!("offset {offset}: {error}"));
            assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
            let spec = loaded.spec;
            assert_eq!(spec.node_names(), ["node1", "node2"]);
            let garbd = spec.arbitrator("garbd1").expect("an arbitrator");
            assert!(garbd.run_dir.starts_with(dir) && garbd.log_dir.starts_with(dir));
            // Its port is clear of the three-node block's ports at the same offset.
            assert!(!ports_of_block(offset).contains(&garbd.galera_port));
        }
    }

    #[test]
    fn the_local_spec_keeps_everything_under_the_state_directory() {
        let dir = Path::new("/var/lib/galley-test");
        let loaded = spec::parse(&dir.join("galley.toml"), &local_spec_text(dir, 0)).unwrap();
        let spec = loaded.spec;
        assert_eq!(spec.secrets_file, dir.join("secrets.toml"));
        assert_eq!(spec.controller.unwrap().state_dir, dir.join("controller"));
        for node in &spec.nodes {
            assert!(node.data_dir.starts_with(dir.join(&node.name)));
            assert!(node.run_dir.starts_with(dir.join(&node.name)));
            assert!(node.log_dir.starts_with(dir.join(&node.name)));
        }
    }
}
