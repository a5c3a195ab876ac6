//! `--node [NAME=]HOST:PORT` and `--proxy-writer HOST:PORT`: where the nodes of the
//! cluster to import are, and where its clients write today.

/// One `--node [NAME=]HOST:PORT` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeArg {
    pub name: Option<String>,
    pub host: String,
    pub port: u16,
}

impl NodeArg {
    /// `HOST:PORT`, an IPv6 host in brackets.
    pub fn address(&self) -> String {
        spec::host_port(&self.host, self.port)
    }
}

/// Parses `[NAME=]HOST:PORT` (an IPv6 host in brackets: `[::1]:3306`). The port is
/// required: a guessed 3306 would silently import the wrong server on a shared host.
pub fn parse_node_arg(text: &str) -> Result<NodeArg, String> {
    let usage = "expected [NAME=]HOST:PORT, like db1=10.0.0.1:3306";
    let (name, address) = match text.split_once('=') {
        Some((name, address)) => (Some(name.to_owned()), address),
        None => (None, text),
    };
    if let Some(name) = &name {
        if !crate::is_identifier(name) {
            return Err(format!(
                "node name `{name}` is not allowed; use 1 to 64 letters, digits, `_` or `-`"
            ));
        }
    }
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let (host, port) = rest
            .split_once("]:")
            .ok_or_else(|| format!("`{address}`: {usage}"))?;
        (host, port)
    } else {
        address
            .rsplit_once(':')
            .ok_or_else(|| format!("`{address}` has no port; {usage}"))?
    };
    if host.is_empty() || host.contains(':') && !address.starts_with('[') {
        return Err(format!("`{address}`: {usage}"));
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|port| *port > 0)
        .ok_or_else(|| format!("`{port}` is not a port; allowed: 1 to 65535"))?;
    Ok(NodeArg {
        name,
        host: host.to_owned(),
        port,
    })
}

/// Parses `HOST:PORT` without a name: where clients send writes today.
pub fn parse_writer_arg(text: &str) -> Result<NodeArg, String> {
    let parsed = parse_node_arg(text)?;
    if parsed.name.is_some() {
        return Err(format!("`{text}`: expected HOST:PORT, without a name"));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_arguments() {
        let cases: &[(&str, Result<NodeArg, &str>)] = &[
            (
                "db1=10.0.0.1:3306",
                Ok(NodeArg {
                    name: Some("db1".into()),
                    host: "10.0.0.1".into(),
                    port: 3306,
                }),
            ),
            (
                "galera-2.example.org:3307",
                Ok(NodeArg {
                    name: None,
                    host: "galera-2.example.org".into(),
                    port: 3307,
                }),
            ),
            (
                "[::1]:3306",
                Ok(NodeArg {
                    name: None,
                    host: "::1".into(),
                    port: 3306,
                }),
            ),
            ("10.0.0.1", Err("has no port")),
            ("10.0.0.1:0", Err("`0` is not a port")),
            ("10.0.0.1:99999", Err("`99999` is not a port")),
            ("db 1=10.0.0.1:3306", Err("node name `db 1` is not allowed")),
            (":3306", Err("expected [NAME=]HOST:PORT")),
        ];
        for (text, expected) in cases {
            let parsed = parse_node_arg(text);
            match (expected, &parsed) {
                (Ok(want), Ok(got)) => assert_eq!(got, want, "{text}"),
                (Err(fragment), Err(message)) => {
                    assert!(message.contains(fragment), "{text}: {message}")
                }
                _ => panic!("{text}: expected {expected:?}, got {parsed:?}"),
            }
        }
    }

    #[test]
    fn the_writer_has_no_name() {
        assert_eq!(
            parse_writer_arg("[::1]:3306").unwrap().address(),
            "[::1]:3306"
        );
        let error = parse_writer_arg("lb=10.0.0.10:3306").unwrap_err();
        assert_eq!(
            error,
            "`lb=10.0.0.10:3306`: expected HOST:PORT, without a name"
        );
    }
}
