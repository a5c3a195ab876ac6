//! The MySQL login, relayed in userspace for every session in both forwarding modes: from
//! the server's greeting to its OK or ERR on the login. The session's caller bounds it
//! by `proxy.login_timeout_ms` from the accept, so that a socket that connects and says
//! nothing gives its server connection back in seconds (docs/proxy-limits.md); the
//! kernel splice takes the session only after it, at a moment when neither side has
//! anything in flight; and it reads what the client asked for in its handshake
//! response (TLS, the capability flags the drain tracker needs: docs/drain-safe-moves.md).

use std::io;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// CLIENT_SSL: the client's first packet is an SSLRequest, and TLS follows.
pub const CLIENT_SSL: u32 = 0x0800;

/// A login packet is a few hundred bytes (with connection attributes a few KiB); more
/// than this before the server answers is not a MySQL client.
const MAX_LOGIN_BYTES: usize = 1 << 20;

/// How the login ended.
#[derive(Debug)]
pub struct LoggedIn {
    /// The server's OK or ERR on the login (or its greeting, when that was already an
    /// ERR), read but not yet passed on: the caller joins the kernel splice first, then
    /// writes it, so that nothing the client sends after it can be left unread.
    pub answer: Vec<u8>,
    /// Set when the session must be copied in userspace from here on, and why: TLS (the
    /// proxy can read no further) or a client that sent commands before the answer.
    pub copy_only: Option<&'static str>,
    /// The capability flags of the client's handshake response (0 if none arrived).
    pub capabilities: u32,
}

/// Splits the first complete MySQL packet (header included) off the front of `buffer`.
pub fn take_packet(buffer: &mut Vec<u8>) -> Option<Vec<u8>> {
    if buffer.len() < 4 {
        return None;
    }
    let length =
        usize::from(buffer[0]) | usize::from(buffer[1]) << 8 | usize::from(buffer[2]) << 16;
    if buffer.len() < 4 + length {
        return None;
    }
    let rest = buffer.split_off(4 + length);
    Some(std::mem::replace(buffer, rest))
}

/// Passes the greeting on and relays the login both ways until the server's OK or ERR
/// on it, which is returned unsent. The caller bounds the time.
pub async fn relay(
    client: &mut TcpStream,
    backend: &mut TcpStream,
    greeting: &[u8],
) -> io::Result<LoggedIn> {
    if greeting.get(4) == Some(&0xFF) {
        // The server refused before any login ("too many connections", a blocked host).
        return Ok(LoggedIn {
            answer: greeting.to_vec(),
            copy_only: None,
            capabilities: 0,
        });
    }
    client.write_all(greeting).await?;
    let mut from_client = Vec::new();
    let mut from_server = Vec::new();
    let mut client_buffer = [0u8; 4096];
    let mut server_buffer = [0u8; 4096];
    let mut client_packets = 0u32;
    let mut capabilities = 0u32;
    let mut pipelined = false;
    loop {
        tokio::select! {
            read = client.read(&mut client_buffer) => {
                let read = read?;
                if read == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the client left during its login"));
                }
                backend.write_all(&client_buffer[..read]).await?;
                from_client.extend_from_slice(&client_buffer[..read]);
                while let Some(packet) = take_packet(&mut from_client) {
                    client_packets += 1;
                    if client_packets == 1 {
                        if let Some(flags) = packet.get(4..8) {
                            capabilities = u32::from_le_bytes(flags.try_into().expect("4 bytes"));
                        }
                        // The SSLRequest is the handshake response's first 32 bytes alone.
                        if capabilities & CLIENT_SSL != 0 && packet.len() == 4 + 32 {
                            return Ok(LoggedIn { answer: Vec::new(), copy_only: Some("TLS"), capabilities });
                        }
                    } else if packet[3] == 0 {
                        // Sequence id 0 starts a command: sent before the login's answer.
                        pipelined = true;
                    }
                }
                if from_client.len() > MAX_LOGIN_BYTES {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "the client's login packet is too long"));
                }
            }
            read = backend.read(&mut server_buffer) => {
                let read = read?;
                if read == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed during the login"));
                }
                from_server.extend_from_slice(&server_buffer[..read]);
                while let Some(packet) = take_packet(&mut from_server) {
                    // Auth switch (0xFE) and plugin data (0x01) go on; the server ends
                    // the login with OK (0x00) or ERR (0xFF), and prefixes plugin data
                    // that would begin with either.
                    if matches!(packet.get(4), Some(0x00 | 0xFF)) {
                        let mut answer = packet;
                        let copy_only = if pipelined || !from_server.is_empty() {
                            answer.extend_from_slice(&from_server);
                            Some("commands sent before the login's answer")
                        } else {
                            None
                        };
                        return Ok(LoggedIn { answer, copy_only, capabilities });
                    }
                    client.write_all(&packet).await?;
                }
                if from_server.len() > MAX_LOGIN_BYTES {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "the server's login packet is too long"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_are_split_off_whole() {
        let mut buffer = vec![1, 0, 0, 0, 0x0E, 2, 0, 0, 1, 0xFF];
        assert_eq!(take_packet(&mut buffer), Some(vec![1, 0, 0, 0, 0x0E]));
        // The second is not complete yet.
        assert_eq!(take_packet(&mut buffer), None);
        buffer.push(0x01);
        assert_eq!(take_packet(&mut buffer), Some(vec![2, 0, 0, 1, 0xFF, 0x01]));
        assert!(buffer.is_empty());
    }
}
