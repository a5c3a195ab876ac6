//! The Linux system calls behind the kernel splice that neither std nor nix wraps: bpf(2)
//! to create a socket map and to load and attach two small socket programs, and
//! getsockopt(2) for a socket's cookie and its TCP byte counters.
//!
//! This is the only module of galley that uses `unsafe`: each block passes the kernel a
//! pointer to memory that lives across the call and has the size the call is told.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd as _, OwnedFd};

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;

const BPF_MAP_TYPE_SOCKHASH: u32 = 18;
const BPF_PROG_TYPE_SK_SKB: u32 = 14;
const BPF_SK_SKB_STREAM_PARSER: u32 = 4;
const BPF_SK_SKB_STREAM_VERDICT: u32 = 5;

/// SOL_SOCKET option: a socket's 64-bit cookie, unique while the kernel runs.
const SO_COOKIE: libc::c_int = 57;

/// Size of the `union bpf_attr` prefix we pass; the kernel accepts a shorter union than
/// its own and wants the bytes it does not know to be zero.
const ATTR_SIZE: usize = 128;

/// A `union bpf_attr`, filled field by field at the offsets of linux/bpf.h.
struct Attr([u8; ATTR_SIZE]);

impl Attr {
    fn new() -> Attr {
        Attr([0; ATTR_SIZE])
    }

    fn u32(mut self, offset: usize, value: u32) -> Attr {
        self.0[offset..offset + 4].copy_from_slice(&value.to_ne_bytes());
        self
    }

    fn u64(mut self, offset: usize, value: u64) -> Attr {
        self.0[offset..offset + 8].copy_from_slice(&value.to_ne_bytes());
        self
    }

    fn pointer<T>(self, offset: usize, pointer: *const T) -> Attr {
        self.u64(offset, pointer as u64)
    }
}

/// bpf(2). Every pointer stored in `attr` must point to memory that outlives the call.
fn bpf(command: libc::c_long, attr: &mut Attr) -> io::Result<libc::c_long> {
    // SAFETY: the kernel reads (and for some commands writes) at most ATTR_SIZE bytes of
    // `attr`, which is borrowed mutably for the call; the callers keep whatever the
    // pointers inside it point to alive until this returns.
    let result = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            command,
            attr.0.as_mut_ptr(),
            ATTR_SIZE as libc::c_uint,
        )
    };
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

fn owned_fd(fd: libc::c_long) -> OwnedFd {
    // SAFETY: `fd` was just returned by bpf(2) as a new descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) }
}

/// A socket hash map keyed by the cookie of the socket data arrives on; its value is the
/// socket the data is to be sent out of.
pub fn create_sockhash(max_entries: u32) -> io::Result<OwnedFd> {
    let mut attr = Attr::new()
        .u32(0, BPF_MAP_TYPE_SOCKHASH)
        .u32(4, 8) // key: the u64 cookie
        .u32(8, 4) // value: a socket descriptor
        .u32(12, max_entries);
    bpf(BPF_MAP_CREATE, &mut attr).map(owned_fd)
}

/// One eBPF instruction: opcode, destination and source registers, offset, immediate.
const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let off = off.to_le_bytes();
    let imm = imm.to_le_bytes();
    [
        code,
        (src << 4) | dst,
        off[0],
        off[1],
        imm[0],
        imm[1],
        imm[2],
        imm[3],
    ]
}

const BPF_FUNC_GET_SOCKET_COOKIE: i32 = 46;
const BPF_FUNC_SK_REDIRECT_HASH: i32 = 72;
/// `ld_imm64` with src = BPF_PSEUDO_MAP_FD: the immediate is a map descriptor.
const PSEUDO_MAP_FD: u8 = 1;

/// The stream parser: every received buffer is one message (r0 = skb->len).
fn parser_program() -> Vec<u8> {
    [insn(0x61, 0, 1, 0, 0), insn(0x95, 0, 0, 0, 0)].concat()
}

/// The verdict: send the data out of the socket stored under the receiving socket's
/// cookie. A socket without an entry drops the data, which cannot happen while both
/// sockets of a session are in the map: the proxy removes them only when it closes them.
fn verdict_program(map: &OwnedFd) -> Vec<u8> {
    [
        insn(0xbf, 6, 1, 0, 0),                           // r6 = ctx
        insn(0x85, 0, 0, 0, BPF_FUNC_GET_SOCKET_COOKIE),  // r0 = cookie(ctx)
        insn(0x7b, 10, 0, -8, 0),                         // *(u64 *)(fp - 8) = r0
        insn(0xbf, 1, 6, 0, 0),                           // r1 = ctx
        insn(0x18, 2, PSEUDO_MAP_FD, 0, map.as_raw_fd()), // r2 = map
        insn(0, 0, 0, 0, 0),                              //      (second half of ld_imm64)
        insn(0xbf, 3, 10, 0, 0),                          // r3 = fp
        insn(0x07, 3, 0, 0, -8),                          // r3 += -8: the key
        insn(0xb7, 4, 0, 0, 0),                           // r4 = 0: out of, not into, the socket
        insn(0x85, 0, 0, 0, BPF_FUNC_SK_REDIRECT_HASH),   // r0 = redirect(ctx, map, key, 0)
        insn(0x95, 0, 0, 0, 0),                           // return r0
    ]
    .concat()
}

fn load_program(name: &str, code: &[u8]) -> io::Result<OwnedFd> {
    const LICENSE: &[u8] = b"GPL\0";
    let mut log = vec![0u8; 16 * 1024];
    let mut attr = Attr::new()
        .u32(0, BPF_PROG_TYPE_SK_SKB)
        .u32(4, (code.len() / 8) as u32)
        .pointer(8, code.as_ptr())
        .pointer(16, LICENSE.as_ptr())
        .u32(24, 1) // log level
        .u32(28, log.len() as u32)
        .pointer(32, log.as_mut_ptr());
    let name = name.as_bytes();
    attr.0[48..48 + name.len().min(15)].copy_from_slice(&name[..name.len().min(15)]);
    bpf(BPF_PROG_LOAD, &mut attr)
        .map(owned_fd)
        .map_err(|error| {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let verifier = String::from_utf8_lossy(&log[..end]);
            io::Error::new(
                error.kind(),
                format!("{error}; verifier: {}", verifier.trim()),
            )
        })
}

fn attach(map: &OwnedFd, program: &OwnedFd, attach_type: u32) -> io::Result<()> {
    let mut attr = Attr::new()
        .u32(0, map.as_raw_fd() as u32)
        .u32(4, program.as_raw_fd() as u32)
        .u32(8, attach_type);
    bpf(BPF_PROG_ATTACH, &mut attr).map(|_| ())
}

/// Loads the parser and the verdict and attaches both to `map`. The map keeps them
/// attached while its descriptor (or any socket in it) lives.
pub fn load_and_attach(map: &OwnedFd) -> io::Result<(OwnedFd, OwnedFd)> {
    let parser = load_program("galley_parser", &parser_program())?;
    let verdict = load_program("galley_verdict", &verdict_program(map))?;
    attach(map, &parser, BPF_SK_SKB_STREAM_PARSER)?;
    attach(map, &verdict, BPF_SK_SKB_STREAM_VERDICT)?;
    Ok((parser, verdict))
}

/// Stores `socket` under `key` (BPF_ANY: insert or replace).
pub fn map_update(map: &OwnedFd, key: u64, socket: &impl AsRawFd) -> io::Result<()> {
    let value: u32 = socket.as_raw_fd() as u32;
    let mut attr = Attr::new()
        .u32(0, map.as_raw_fd() as u32)
        .pointer(8, &key)
        .pointer(16, &value);
    bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(|_| ())
}

pub fn map_delete(map: &OwnedFd, key: u64) -> io::Result<()> {
    let mut attr = Attr::new().u32(0, map.as_raw_fd() as u32).pointer(8, &key);
    bpf(BPF_MAP_DELETE_ELEM, &mut attr).map(|_| ())
}

fn getsockopt<T: Copy>(
    socket: &impl AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    mut value: T,
) -> io::Result<T> {
    let mut length = size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` is a plain-data T of `length` bytes, borrowed for the call; the
    // kernel writes at most `length` bytes into it.
    let result = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&mut value as *mut T).cast(),
            &mut length,
        )
    };
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(value)
    }
}

pub fn socket_cookie(socket: &impl AsRawFd) -> io::Result<u64> {
    getsockopt(socket, libc::SOL_SOCKET, SO_COOKIE, 0u64)
}

/// What TCP has counted on a socket: payload bytes received in order, and payload bytes
/// written by either the kernel or the proxy (acknowledged by the peer or still queued).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TcpBytes {
    pub received: u64,
    pub written: u64,
}

pub fn tcp_bytes(socket: &impl AsRawFd) -> io::Result<TcpBytes> {
    // SAFETY: tcp_info is plain old data, for which all zeroes is a valid value.
    let zeroed: libc::tcp_info = unsafe { std::mem::zeroed() };
    let info = getsockopt(socket, libc::IPPROTO_TCP, libc::TCP_INFO, zeroed)?;
    let mut queued: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one c_int, into `queued`.
    let result = unsafe { libc::ioctl(socket.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(TcpBytes {
        received: info.tcpi_bytes_received,
        written: info.tcpi_bytes_acked + queued.max(0) as u64,
    })
}

/// Sends a FIN after what is queued (shutdown(2) of the write side). tokio's own
/// shutdown needs the stream mutably, and a spliced session watches both at once.
pub fn shutdown_write(socket: &impl AsRawFd) {
    // SAFETY: shutdown(2) takes a descriptor and a flag; no memory is passed.
    let _ = unsafe { libc::shutdown(socket.as_raw_fd(), libc::SHUT_WR) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_are_encoded_little_endian_with_registers_packed() {
        assert_eq!(
            insn(0x7b, 10, 0, -8, 0),
            [0x7b, 0x0a, 0xf8, 0xff, 0, 0, 0, 0]
        );
        assert_eq!(insn(0x85, 0, 0, 0, 72), [0x85, 0, 0, 0, 72, 0, 0, 0]);
        assert_eq!(insn(0x18, 2, 1, 0, 7)[1], 0x12);
    }

    #[test]
    fn programs_end_with_exit() {
        assert_eq!(parser_program().len(), 16);
        assert_eq!(&parser_program()[8..], &insn(0x95, 0, 0, 0, 0));
    }
}
