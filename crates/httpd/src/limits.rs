//! The limits one HTTP server keeps, with a default for each of galley's three servers and
//! the reason for each number.

use std::time::Duration;

/// What one server allows a client. Every field is a hard bound: nothing waits for a
/// client without a timeout, and no number of clients makes the server hold more than
/// `max_connections` connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// From the moment a connection is accepted (a TLS handshake included) to a complete
    /// first request head. A client sends its head within milliseconds of connecting; a
    /// silent or trickling one is closed when this runs out.
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request and read that
    /// request's head (hyper's header timer, which starts whenever a connection goes
    /// idle). Longer than the first header timeout so that polling clients (the
    /// controller asks each agent every second, the console polls every 2 s) keep their
    /// connection.
    pub idle_timeout: Duration,
    /// From a complete request head to the end of the handler, the body's upload
    /// included; answered 503 when it runs out.
    pub request_timeout: Duration,
    /// Connections held at once, in total. A connection over the cap takes the place of
    /// the connection that has been idle longest; when none is idle it is closed at once.
    pub max_connections: usize,
    /// Connections held at once from one source (an IPv4 address, or an IPv6 /64: one
    /// host gets a whole /64). Over it, the same rule as for the total, within the source.
    pub max_connections_per_source: usize,
    /// The largest request body accepted; a larger one gets 413, before it is read when
    /// it declares its length.
    pub max_body_bytes: usize,
    /// hyper's read buffer, which bounds a request head (431 beyond it) and the memory
    /// each connection can make the server hold for one.
    pub max_header_bytes: usize,
}

/// Shared by the three servers. No galley route takes a body larger than a few KiB (a
/// user with its grants, an OpenStack provisioning request), so 1 MiB leaves a wide margin
/// and still bounds what 1,024 connections can make the server buffer. 64 KiB of head is
/// eight times hyper's smallest buffer and more than any browser sends.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_BODY_BYTES: usize = 1 << 20;
const MAX_HEADER_BYTES: usize = 64 << 10;
/// One address may hold 64 connections: a browser opens 6 per site, the controller one
/// or two per agent, a monitoring scraper one; 64 leaves room for a NAT in front of a
/// team, and a single source filling it only evicts its own idle connections.
const PER_SOURCE: usize = 64;

impl Limits {
    /// The controller's REST API and console. Its CLI client waits 120 s for an answer
    /// (the slowest routes provision OpenStack databases over SQL), so a handler may take
    /// a little longer; 1,024 connections stay far under the open-files limit of any host
    /// the controller runs on (the check in [`crate::Server::serve`] warns otherwise).
    pub fn controller_api() -> Limits {
        Limits {
            header_read_timeout: HEADER_READ_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            request_timeout: Duration::from_secs(150),
            max_connections: 1024,
            max_connections_per_source: PER_SOURCE,
            max_body_bytes: MAX_BODY_BYTES,
            max_header_bytes: MAX_HEADER_BYTES,
        }
    }

    /// A node agent. A graceful stop waits up to `server.stop_timeout_s` (at most
    /// 3,600 s, `spec::ServerSettings::MAX_STOP_TIMEOUT_S`) and then kills the server,
    /// and the agent's client waits 30 s more; a handler cut short here would drop the
    /// stop before its kill, so it may run a little longer than both. Its callers are
    /// the controller, the CLI and an HAProxy health check: 256 is plenty.
    pub fn agent_api() -> Limits {
        Limits {
            header_read_timeout: HEADER_READ_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            request_timeout: Duration::from_secs(3_660),
            max_connections: 256,
            max_connections_per_source: PER_SOURCE,
            max_body_bytes: MAX_BODY_BYTES,
            max_header_bytes: MAX_HEADER_BYTES,
        }
    }

    /// The proxy's admin endpoint. The proxy keeps 128 descriptors outside its sessions'
    /// budget (`proxy::raise_descriptor_limit`) for its probes and this endpoint, so the
    /// endpoint holds at most 64; every handler answers from memory at once.
    pub fn proxy_admin() -> Limits {
        Limits {
            header_read_timeout: HEADER_READ_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            request_timeout: Duration::from_secs(30),
            max_connections: 64,
            max_connections_per_source: 16,
            max_body_bytes: MAX_BODY_BYTES,
            max_header_bytes: MAX_HEADER_BYTES,
        }
    }
}
