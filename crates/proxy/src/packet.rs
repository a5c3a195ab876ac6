//! The MySQL error packet a client gets when the proxy cannot give it a backend: a clear
//! message instead of a hang or a silent close.

/// CR_CONN_HOST_ERROR: client libraries and oslo.db treat it as "cannot connect" and
/// retry, which is what the client should do.
pub const NO_BACKEND: u16 = 2003;
/// ER_CON_COUNT_ERROR: the proxy's own connection limit.
pub const TOO_MANY_CONNECTIONS: u16 = 1040;

/// An ERR packet with sequence id 0, sent instead of the server greeting, as servers do
/// for "too many connections". The message is cut to fit one packet.
pub fn error_packet(code: u16, message: &str) -> Vec<u8> {
    let message = &message.as_bytes()[..message.len().min(0xFFFF)];
    let mut payload = Vec::with_capacity(9 + message.len());
    payload.push(0xFF);
    payload.extend_from_slice(&code.to_le_bytes());
    payload.extend_from_slice(b"#HY000");
    payload.extend_from_slice(message);
    let length = payload.len() as u32;
    let mut packet = Vec::with_capacity(4 + payload.len());
    packet.extend_from_slice(&length.to_le_bytes()[..3]);
    packet.push(0);
    packet.extend_from_slice(&payload);
    packet
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_layout() {
        let packet = error_packet(NO_BACKEND, "no node");
        assert_eq!(&packet[..4], &[16, 0, 0, 0]);
        assert_eq!(packet[4], 0xFF);
        assert_eq!(u16::from_le_bytes([packet[5], packet[6]]), 2003);
        assert_eq!(&packet[7..13], b"#HY000");
        assert_eq!(&packet[13..], b"no node");
    }
}
