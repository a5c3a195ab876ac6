//! The controller's API served in-process on real sockets: TLS with a certificate made
//! by the openssl command (the API over TLS, and the session cookie marked Secure), the
//! HTTP limits (timeouts, connection caps, the body limit), and console logins from
//! several loopback source addresses (limits and the hashing pool).

mod limits;
mod logins;
mod tls;
