//! The controller's API served in-process on real sockets: TLS with a certificate made
//! by the openssl command (the API over TLS, and the session cookie marked Secure), and
//! the HTTP limits (timeouts, connection caps, the body limit).

mod limits;
mod tls;
