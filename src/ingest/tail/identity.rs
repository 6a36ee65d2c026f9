//! Who a file is: its fingerprint (the SHA-256 of its first line, SPEC §8),
//! the head hash that tells a rewritten file from one that only grew, and
//! the readers beneath: positional reads of plain files and a front-to-back
//! decoder for `.zst` archives. Nothing here knows about logs or rotation.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// Bytes of a file's beginning hashed to confirm its identity: enough to
/// cover the first JSON line (which carries a timestamp) of any real log, so
/// two generations of a log never share a fingerprint.
pub(crate) const HEAD_BYTES: usize = 256;

/// Bytes of a file's first line that make its fingerprint (SPEC §8).
pub(crate) const FINGERPRINT_BYTES: usize = 1024;

/// Files read to their end remembered in the checkpoint (by fingerprint),
/// so that a restart does not read them again: a year of daily rotations
/// of three logs, plus size rotations.
pub(crate) const MAX_FINISHED: usize = 4096;

/// A file's identity by content: the SHA-256 of its first line.
pub(crate) type Fingerprint = [u8; 32];

/// The fingerprint of a file that starts with `head`: the SHA-256 of its
/// first line without the newline, or of its first [`FINGERPRINT_BYTES`]
/// when the line is longer. `None` while the first line is incomplete and
/// shorter than that (identity then rests on device and inode).
pub(crate) fn fingerprint(head: &[u8]) -> Option<Fingerprint> {
    let head = &head[..head.len().min(FINGERPRINT_BYTES)];
    let line = match memchr::memchr(b'\n', head) {
        Some(i) => &head[..i],
        None if head.len() == FINGERPRINT_BYTES => head,
        None => return None,
    };
    Some(Sha256::digest(line).into())
}

/// A `.zst` file decompressed front to back; offsets are in the
/// decompressed stream.
pub(super) struct ZstCursor {
    pub(super) decoder: zstd::stream::read::Decoder<'static, io::BufReader<PosReader>>,
    pub(super) pos: u64,
    pub(super) eof: bool,
}

impl std::fmt::Debug for ZstCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZstCursor")
            .field("pos", &self.pos)
            .field("eof", &self.eof)
            .finish()
    }
}

/// Reads a file from its start with positional reads: a duplicated
/// descriptor shares its offset with the original, so two readers of one
/// file must not rely on it.
pub(super) struct PosReader {
    pub(super) file: File,
    pub(super) pos: u64,
}

impl io::Read for PosReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = read_at(&self.file, buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl ZstCursor {
    pub(super) fn open(file: &File) -> io::Result<ZstCursor> {
        let f = PosReader {
            file: file.try_clone()?,
            pos: 0,
        };
        Ok(ZstCursor {
            decoder: zstd::stream::read::Decoder::new(f)?,
            pos: 0,
            eof: false,
        })
    }

    /// Reads decompressed bytes at `off`: forward by skipping, backward by
    /// starting over (the tailer only ever reads forward).
    pub(super) fn read_at(&mut self, file: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
        use std::io::Read;
        if off < self.pos {
            *self = ZstCursor::open(file)?;
        }
        let mut scratch = [0u8; 8192];
        while self.pos < off {
            let want = scratch.len().min((off - self.pos) as usize);
            let n = self.decoder.read(&mut scratch[..want])?;
            if n == 0 {
                self.eof = true;
                return Ok(0);
            }
            self.pos += n as u64;
        }
        let n = self.decoder.read(buf)?;
        self.pos += n as u64;
        if n == 0 && !buf.is_empty() {
            self.eof = true;
        }
        Ok(n)
    }
}

/// Reads the first `len` bytes of a `.zst` file, decompressed.
pub(super) fn zst_head(file: &File, len: usize) -> io::Result<Vec<u8>> {
    let mut z = ZstCursor::open(file)?;
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        let n = z.read_at(file, &mut buf[got..], got as u64)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    buf.truncate(got);
    Ok(buf)
}

pub(super) fn is_zst(name: &str) -> bool {
    name.ends_with(".zst")
}

pub(super) fn parse_fingerprint(hex_text: Option<&str>) -> Option<Fingerprint> {
    let mut fp = [0u8; 32];
    hex::decode_to_slice(hex_text?, &mut fp).ok()?;
    Some(fp)
}

pub(super) fn mtime(md: &Metadata) -> SystemTime {
    md.modified().unwrap_or(SystemTime::UNIX_EPOCH)
}

/// `Ok(None)` when there is no regular file at `path` (absent, a directory,
/// or the directory itself missing): the normal case for a log not written
/// yet.
pub(super) fn stat_file(path: &Path) -> io::Result<Option<Metadata>> {
    match std::fs::metadata(path) {
        Ok(md) if md.is_file() => Ok(Some(md)),
        Ok(_) => Ok(None),
        Err(e) if absent(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Opens and fstats: the identity is that of what was opened, whatever the
/// name pointed to a moment before.
pub(super) fn open_file(path: &Path) -> io::Result<Option<(File, Metadata)>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if absent(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let md = file.metadata()?;
    if !md.is_file() {
        return Ok(None);
    }
    Ok(Some((file, md)))
}

pub(super) fn absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    ) || e.raw_os_error() == Some(libc::ENOTDIR)
}

pub(super) fn head_matches(path: &Path, head_len: u64, head_hash: u64) -> bool {
    if head_len == 0 {
        return true;
    }
    if head_len > HEAD_BYTES as u64 {
        // Not a checkpoint this tailer wrote: never a match (and never a
        // huge allocation).
        return false;
    }
    let Ok(Some((file, _))) = open_file(path) else {
        return false;
    };
    match read_head(&file, head_len as usize) {
        Ok(h) => h.len() as u64 == head_len && fnv1a(&h) == head_hash,
        Err(_) => false,
    }
}

pub(super) fn read_head(file: &File, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        let n = read_at(file, &mut buf[got..], got as u64)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    buf.truncate(got);
    Ok(buf)
}

pub(super) fn read_at(file: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    loop {
        match file.read_at(buf, off) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// FNV-1a, 64 bit: stable across builds and Rust versions (the hash is
/// saved in checkpoints), and plenty to tell 256-byte log heads apart.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
