//! galley.toml through `spec::parse` (the permissive serde stage, then validation). Any
//! text is accepted or refused with problems that each say what is wrong, without
//! panicking; a spec that validates renders every node's my.cnf, and each line of it is
//! a section, a comment, an `!include` or one `key = value` setting (a value never starts a line of its
//! own: no setting can be smuggled into my.cnf through a name or a path).

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fn check_my_cnf(node: &str, text: &str) {
    for line in text.lines() {
        let line = line.trim();
        // `!include` names the SST credentials file, in the node's run_dir.
        if line.is_empty() || line.starts_with('#') || line.starts_with("!include /") {
            continue;
        }
        if line.starts_with('[') {
            assert!(line.ends_with(']'), "{node}: section line {line:?}");
            continue;
        }
        let key = line.split_once('=').map_or(line, |(key, _)| key).trim();
        assert!(
            !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.".contains(&b)),
            "{node}: my.cnf line {line:?} is not a setting"
        );
    }
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{node}: my.cnf holds a control character"
    );
}

fuzz_target!(|data: &[u8]| {
    // spec::load reads the file with `read_to_string`: it never sees invalid UTF-8.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match spec::parse(Path::new("/etc/galley/galley.toml"), text) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                let _ = warning.to_string();
            }
            let spec = &loaded.spec;
            for node in &spec.nodes {
                check_my_cnf(&node.name, &spec::render_node_config(spec, node));
                let _ = (node.agent_address(), node.client_address(), node.ports());
            }
            let _ = (spec.client_endpoint(), spec.cluster_address());
        }
        Err(error) => {
            assert!(!error.problems.is_empty());
            assert!(error.to_string().contains("/etc/galley/galley.toml"));
        }
    }
});
