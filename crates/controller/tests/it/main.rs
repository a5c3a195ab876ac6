//! The controller's API served in-process on real sockets: TLS with a certificate made
//! by the openssl command (the API over TLS, and the session cookie marked Secure), and
//! console logins from several loopback source addresses (limits and the hashing pool).

mod logins;
mod tls;
