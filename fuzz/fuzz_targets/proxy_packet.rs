//! The proxy's MySQL packet handling: the server's first packet (its greeting, or an
//! error) as the kernel-splice mode reads it before handing the session to the kernel
//! (`proxy::fuzzing::read_packet`), and the error packet the proxy sends a client when
//! no backend can serve (`proxy::packet::error_packet`).

#![no_main]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use libfuzzer_sys::fuzz_target;
use proxy::fuzzing::{read_packet, MAX_GREETING};
use proxy::packet::error_packet;

/// Reads from memory never wait: the future is ready at its first poll.
fn now<T>(future: impl Future<Output = T>) -> T {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("a read from memory waited"),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut stream = data;
    let result = now(read_packet(&mut stream));
    let declared = (data.len() >= 4)
        .then(|| usize::from(data[0]) | usize::from(data[1]) << 8 | usize::from(data[2]) << 16);
    match (result, declared) {
        (Ok(packet), Some(length)) => {
            assert!(length <= MAX_GREETING);
            assert_eq!(packet, &data[..4 + length]);
            assert_eq!(stream, &data[4 + length..], "read past the packet");
        }
        (Ok(packet), None) => panic!("{packet:?} read from fewer than 4 bytes"),
        (Err(_), Some(length)) => assert!(length > MAX_GREETING || data.len() < 4 + length),
        (Err(_), None) => {}
    }

    // Any code and message give one well-formed ERR packet; a long message is cut. The
    // first byte's high bit repeats the message past one packet's worth.
    if data.len() >= 3 {
        let code = u16::from_le_bytes([data[1], data[2]]);
        let mut message = String::from_utf8_lossy(&data[3..]).into_owned();
        if data[0] & 0x80 != 0 && !message.is_empty() {
            message = message.repeat(0x1_0000 / message.len() + 2);
        }
        let packet = error_packet(code, &message);
        let length =
            usize::from(packet[0]) | usize::from(packet[1]) << 8 | usize::from(packet[2]) << 16;
        assert_eq!(length, packet.len() - 4);
        assert_eq!(packet[3], 0, "sequence id");
        assert_eq!(packet[4], 0xFF);
        assert_eq!(u16::from_le_bytes([packet[5], packet[6]]), code);
        assert_eq!(&packet[7..13], b"#HY000");
        assert!(message.as_bytes().starts_with(&packet[13..]));
        assert!(packet.len() - 13 <= 0xFFFF);
        // The proxy reads such a packet back as one packet (a chained proxy would).
        let mut stream = &packet[..];
        if length <= MAX_GREETING {
            assert_eq!(now(read_packet(&mut stream)).unwrap(), packet);
        }
    }
});
