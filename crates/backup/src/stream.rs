//! A reader of mariabackup's mbstream (xbstream) format as it passes, pure: it checks
//! each chunk's CRC-32, hashes each file's payload with SHA-256, and keeps the small
//! metadata files (xtrabackup_galera_info, xtrabackup_checkpoints, ...) in memory.
//!
//! The format (MariaDB's extra/mariabackup/xbstream_write.cc), all integers little-endian:
//! `XBSTCK01`, flags (1 byte), type (1 byte: `P` payload, `E` end of file), path length
//! (4), path; then for `P` only: payload length (8), payload offset (8), CRC-32 of the
//! payload (4), the payload. A file's chunks arrive in offset order; chunks of different
//! files may interleave.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

const MAGIC: &[u8; 8] = b"XBSTCK01";
/// Files kept whole in memory: what galley reads from a backup without extracting it.
pub const KEPT_FILES: &[&str] = &[
    "xtrabackup_galera_info",
    "xtrabackup_checkpoints",
    "xtrabackup_info",
    "backup-my.cnf",
];
const KEPT_LIMIT: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error(
        "the backup stream is not mbstream: chunk at byte {offset} does not start with XBSTCK01"
    )]
    BadMagic { offset: u64 },
    #[error("the backup stream has a chunk of unknown type {kind:?} at byte {offset}")]
    UnknownType { kind: char, offset: u64 },
    #[error("the backup stream's file `{path}` fails its chunk checksum at offset {file_offset}")]
    Crc { path: String, file_offset: u64 },
    #[error("the backup stream's file `{path}` has a chunk at offset {file_offset}, expected {expected}")]
    OutOfOrder {
        path: String,
        file_offset: u64,
        expected: u64,
    },
    #[error("the backup stream names an unsafe path `{path}`")]
    UnsafePath { path: String },
    #[error("the backup stream ends inside a chunk")]
    Truncated,
}

#[derive(Default)]
struct FileState {
    hasher: Sha256,
    length: u64,
    kept: Option<Vec<u8>>,
}

/// Feed it the stream in pieces of any size; `finish` gives each file's hash and size.
#[derive(Default)]
pub struct Scanner {
    buffer: Vec<u8>,
    start: usize,
    state: ScanState,
}

#[derive(Default)]
struct ScanState {
    consumed: u64,
    files: BTreeMap<String, FileState>,
    payload_bytes: u64,
}

impl std::fmt::Debug for Scanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scanner")
            .field("consumed", &self.state.consumed)
            .field("files", &self.state.files.len())
            .finish()
    }
}

/// What a whole stream held.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scanned {
    /// SHA-256 (hex) of each file.
    pub files: BTreeMap<String, String>,
    /// The contents of the `KEPT_FILES` present.
    pub kept: BTreeMap<String, Vec<u8>>,
    pub payload_bytes: u64,
}

impl Scanner {
    pub fn new() -> Scanner {
        Scanner::default()
    }

    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), StreamError> {
        // Whole chunks straight from `bytes` when nothing is pending; only a chunk cut
        // by the piece boundary is copied.
        let mut rest = bytes;
        if self.buffer.len() == self.start {
            self.buffer.clear();
            self.start = 0;
            while let Some(used) = self.state.chunk(rest)? {
                rest = &rest[used..];
            }
        }
        self.buffer.extend_from_slice(rest);
        while let Some(used) = self.state.chunk(&self.buffer[self.start..])? {
            self.start += used;
        }
        if self.start > 0 && self.start * 2 >= self.buffer.len() {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        Ok(())
    }

    pub fn finish(self) -> Result<Scanned, StreamError> {
        if self.start != self.buffer.len() {
            return Err(StreamError::Truncated);
        }
        let mut scanned = Scanned {
            payload_bytes: self.state.payload_bytes,
            ..Scanned::default()
        };
        for (path, state) in self.state.files {
            scanned
                .files
                .insert(path.clone(), hex(&state.hasher.finalize()));
            if let Some(kept) = state.kept {
                scanned.kept.insert(path, kept);
            }
        }
        Ok(scanned)
    }
}

impl ScanState {
    /// Parses one whole chunk at the front of `data`, or None when more bytes are needed.
    fn chunk(&mut self, data: &[u8]) -> Result<Option<usize>, StreamError> {
        let used = self.parse(data)?;
        if let Some(used) = used {
            self.consumed += used as u64;
        }
        Ok(used)
    }

    fn parse(&mut self, data: &[u8]) -> Result<Option<usize>, StreamError> {
        if data.len() < 14 {
            return Ok(None);
        }
        if &data[..8] != MAGIC {
            return Err(StreamError::BadMagic {
                offset: self.consumed,
            });
        }
        let kind = data[9];
        let path_length = u32::from_le_bytes(data[10..14].try_into().expect("4 bytes")) as usize;
        let header = 14 + path_length;
        if data.len() < header {
            return Ok(None);
        }
        let path = String::from_utf8_lossy(&data[14..header]).into_owned();
        match kind {
            b'E' => {
                check_path(&path)?;
                return Ok(Some(header));
            }
            b'P' => {}
            other => {
                return Err(StreamError::UnknownType {
                    kind: other as char,
                    offset: self.consumed,
                })
            }
        }
        if data.len() < header + 20 {
            return Ok(None);
        }
        let field = |at: usize| u64::from_le_bytes(data[at..at + 8].try_into().expect("8 bytes"));
        let length = field(header) as usize;
        let file_offset = field(header + 8);
        let crc = u32::from_le_bytes(data[header + 16..header + 20].try_into().expect("4 bytes"));
        let total = header + 20 + length;
        if data.len() < total {
            return Ok(None);
        }
        let payload = &data[header + 20..total];
        if crc32fast::hash(payload) != crc {
            return Err(StreamError::Crc { path, file_offset });
        }
        if !self.files.contains_key(&path) {
            check_path(&path)?;
        }
        let state = self.files.entry(path.clone()).or_insert_with(|| FileState {
            kept: KEPT_FILES.contains(&path.as_str()).then(Vec::new),
            ..FileState::default()
        });
        if file_offset != state.length {
            return Err(StreamError::OutOfOrder {
                path,
                file_offset,
                expected: state.length,
            });
        }
        state.hasher.update(payload);
        state.length += length as u64;
        if let Some(kept) = &mut state.kept {
            if kept.len() + payload.len() <= KEPT_LIMIT {
                kept.extend_from_slice(payload);
            }
        }
        self.payload_bytes += length as u64;
        Ok(Some(total))
    }
}

/// Stream paths are relative, without `..`: mbstream -x writes them under its directory.
fn check_path(path: &str) -> Result<(), StreamError> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.split('/').any(|part| part.is_empty() || part == "..")
        || path.contains('\0');
    if bad {
        return Err(StreamError::UnsafePath {
            path: path.escape_debug().to_string(),
        });
    }
    Ok(())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Builds an mbstream from (path, chunks) for tests.
#[cfg(test)]
pub(crate) fn encode(files: &[(&str, &[&[u8]])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, chunks) in files {
        let mut offset = 0u64;
        for chunk in *chunks {
            out.extend_from_slice(MAGIC);
            out.push(0);
            out.push(b'P');
            out.extend_from_slice(&(path.len() as u32).to_le_bytes());
            out.extend_from_slice(path.as_bytes());
            out.extend_from_slice(&(chunk.len() as u64).to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            out.extend_from_slice(&crc32fast::hash(chunk).to_le_bytes());
            out.extend_from_slice(chunk);
            offset += chunk.len() as u64;
        }
        out.extend_from_slice(MAGIC);
        out.push(0);
        out.push(b'E');
        out.extend_from_slice(&(path.len() as u32).to_le_bytes());
        out.extend_from_slice(path.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_in_pieces(stream: &[u8], piece: usize) -> Result<Scanned, StreamError> {
        let mut scanner = Scanner::new();
        for part in stream.chunks(piece) {
            scanner.feed(part)?;
        }
        scanner.finish()
    }

    #[test]
    fn hashes_each_file_whatever_the_piece_size() {
        let stream = encode(&[
            ("ibdata1", &[b"hello ", b"world"]),
            ("xtrabackup_galera_info", &[b"uuid:5"]),
        ]);
        for piece in [1, 3, 7, 64, stream.len()] {
            let scanned = scan_in_pieces(&stream, piece).unwrap();
            assert_eq!(
                scanned.files["ibdata1"],
                hex(&Sha256::digest(b"hello world")),
                "piece {piece}"
            );
            assert_eq!(scanned.kept["xtrabackup_galera_info"], b"uuid:5");
            assert!(!scanned.kept.contains_key("ibdata1"));
            assert_eq!(scanned.payload_bytes, 17);
        }
    }

    #[test]
    fn refuses_corruption_truncation_and_unsafe_paths() {
        let mut stream = encode(&[("ibdata1", &[b"hello world"])]);
        let at = stream.windows(5).position(|w| w == b"hello").unwrap();
        stream[at] ^= 1;
        assert!(matches!(
            scan_in_pieces(&stream, 5),
            Err(StreamError::Crc { .. })
        ));
        let stream = encode(&[("ibdata1", &[b"hello world"])]);
        assert_eq!(
            scan_in_pieces(&stream[..stream.len() - 3], 5),
            Err(StreamError::Truncated)
        );
        let stream = encode(&[("../etc/passwd", &[b"x"])]);
        assert!(matches!(
            scan_in_pieces(&stream, 5),
            Err(StreamError::UnsafePath { .. })
        ));
        assert!(matches!(
            scan_in_pieces(b"NOTMAGIC and more bytes", 5),
            Err(StreamError::BadMagic { offset: 0 })
        ));
    }
}
