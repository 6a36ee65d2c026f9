//! zstd archives: streaming compression, verification by decompression, and
//! the careful file dance around them.
//!
//! An archive is written to a hidden temp name in the same directory, fsynced,
//! decompressed again and compared with what was read (length and SHA-256,
//! both streaming), renamed to its final name without replacing anything, and
//! only then is the plain file deleted. A crash at any point leaves the plain
//! file, or the plain file and a verified archive, never neither. Memory is
//! bounded by [`CHUNK`] plus zstd's window, whatever the file size.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Read size for compression and verification: large enough that syscalls
/// do not dominate, small enough to be irrelevant next to zstd's window.
pub(crate) const CHUNK: usize = 256 * 1024;

/// Errors of one archive operation. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: not a regular file (symbolic links are never followed)")]
    NotRegular { path: PathBuf },
    #[error("{path}: corrupt zstd archive: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "{path}: verification failed: archive decompresses to {got_len} bytes \
         (sha256 {got_hash}), expected {want_len} bytes (sha256 {want_hash})"
    )]
    Mismatch {
        path: PathBuf,
        want_len: u64,
        want_hash: String,
        got_len: u64,
        got_hash: String,
    },
    #[error(
        "{path}: changed while being compressed (size {before} -> {after}); a writer is still using it"
    )]
    Changed {
        path: PathBuf,
        before: u64,
        after: u64,
    },
    #[error("{path}: already exists")]
    Exists { path: PathBuf },
}

impl ArchiveError {
    /// Whether this is a failed verification (counted in
    /// `mcpwatch_verify_failures_total`) rather than an I/O problem.
    pub(crate) fn is_verify_failure(&self) -> bool {
        matches!(
            self,
            ArchiveError::Corrupt { .. } | ArchiveError::Mismatch { .. }
        )
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Length and SHA-256 of a byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digest256 {
    pub len: u64,
    pub(crate) sha256: [u8; 32],
}

impl Digest256 {
    fn hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

/// What compressing one file did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompressStats {
    pub(crate) bytes_in: u64,
    pub bytes_out: u64,
}

/// Opens a file for reading without following a symbolic link at its last
/// component, and checks that it is a regular file.
pub(crate) fn open_regular(path: &Path) -> Result<(File, Metadata), ArchiveError> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                ArchiveError::NotRegular {
                    path: path.to_path_buf(),
                }
            } else {
                io_err(path)(e)
            }
        })?;
    let meta = f.metadata().map_err(io_err(path))?;
    if !meta.is_file() {
        return Err(ArchiveError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    Ok((f, meta))
}

/// Decompresses the archive at `path` to nowhere, checking zstd's frame
/// checksums, and returns the length and SHA-256 of its content: the check
/// `zstd -t` does, plus what a comparison with the original needs.
pub fn verify_archive(path: &Path) -> Result<Digest256, ArchiveError> {
    let (f, _) = open_regular(path)?;
    digest_archive(f, path)
}

fn digest_archive(f: File, path: &Path) -> Result<Digest256, ArchiveError> {
    let corrupt = |e: io::Error| ArchiveError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut dec = zstd::stream::read::Decoder::new(f).map_err(corrupt)?;
    let mut sink = HashingSink::default();
    io::copy(&mut dec, &mut sink).map_err(corrupt)?;
    // An empty file is not a zstd archive; the decoder reads it as zero
    // frames, so say so here.
    if sink.len == 0 {
        let meta = std::fs::symlink_metadata(path).map_err(io_err(path))?;
        if meta.len() == 0 {
            return Err(ArchiveError::Corrupt {
                path: path.to_path_buf(),
                reason: "empty file".into(),
            });
        }
    }
    Ok(sink.finish())
}

/// Compares a verified archive's content with a plain file (crash recovery:
/// both exist after a crash between the archive's rename and the plain
/// file's deletion).
pub(crate) fn archive_matches(archive: &Path, plain: &Path) -> Result<bool, ArchiveError> {
    let a = verify_archive(archive)?;
    let (mut f, _) = open_regular(plain)?;
    let mut sink = HashingSink::default();
    io::copy(&mut f, &mut sink).map_err(io_err(plain))?;
    Ok(sink.finish() == a)
}

#[derive(Default)]
struct HashingSink {
    hasher: Sha256,
    len: u64,
}

impl HashingSink {
    fn finish(self) -> Digest256 {
        Digest256 {
            len: self.len,
            sha256: self.hasher.finalize().into(),
        }
    }
}

impl Write for HashingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.len += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Renames `from` to `to` unless `to` exists (atomically on Linux with
/// `RENAME_NOREPLACE`; elsewhere, or on file systems without it, checked
/// first — the state lock keeps other mcpwatch passes out meanwhile).
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> Result<(), ArchiveError> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| {
            CString::new(p.as_os_str().as_bytes())
                .map_err(|e| io_err(p)(io::Error::new(io::ErrorKind::InvalidInput, e)))
        };
        let (cf, ct) = (c(from)?, c(to)?);
        // SAFETY: both pointers are valid NUL-terminated strings that live
        // across the call.
        let rc = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                cf.as_ptr(),
                libc::AT_FDCWD,
                ct.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EEXIST) => {
                return Err(ArchiveError::Exists {
                    path: to.to_path_buf(),
                });
            }
            Some(libc::EINVAL) | Some(libc::ENOSYS) => {}
            _ => return Err(io_err(from)(e)),
        }
    }
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(ArchiveError::Exists {
            path: to.to_path_buf(),
        });
    }
    std::fs::rename(from, to).map_err(io_err(from))
}

/// Creates an empty file at `path` like the one `meta` describes (the log
/// just renamed away from it): the same mode, and the same owner where this
/// process may set it. `O_EXCL`: a file a writer created meanwhile is
/// neither truncated nor replaced (that is not an error: it is there).
pub(crate) fn create_like(path: &Path, meta: &std::fs::Metadata) -> io::Result<()> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
    let mode = meta.mode() & 0o7777;
    let file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    };
    // The umask may have narrowed the mode; set it as it was.
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    // Only root may give a file away; anyone else keeps their own.
    let _ = std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid()));
    file.sync_all()
}

/// Fsyncs a directory so a rename or unlink in it is durable.
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Compresses `src` into the new archive `dst` (written first as
/// `dir/.<dst name>.tmp`), verifies it, renames it into place and then
/// deletes `src`. On any failure the temp is removed and `src` is untouched.
pub(crate) fn archive_file(
    src: &Path,
    dst: &Path,
    level: i32,
) -> Result<CompressStats, ArchiveError> {
    archive_file_with(src, dst, level, |_| Ok(()))
}

/// [`archive_file`] with a hook run on the finished temp before it is
/// verified; tests use it to corrupt the temp and watch verification fail.
pub(crate) fn archive_file_with(
    src: &Path,
    dst: &Path,
    level: i32,
    before_verify: impl FnOnce(&Path) -> io::Result<()>,
) -> Result<CompressStats, ArchiveError> {
    let dir = dst.parent().unwrap_or(Path::new("."));
    let dst_name = dst
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(crate::logs::temp_name(&dst_name));
    if std::fs::symlink_metadata(dst).is_ok() {
        return Err(ArchiveError::Exists {
            path: dst.to_path_buf(),
        });
    }
    let (src_file, src_meta) = open_regular(src)?;
    let stats = compress_verified(&src_file, &src_meta, src, &tmp, level, before_verify).and_then(
        |stats| {
            rename_noreplace(&tmp, dst)?;
            Ok(stats)
        },
    );
    let stats = match stats {
        Ok(s) => s,
        Err(e) => {
            remove_unless_not_ours(&tmp, &e);
            return Err(e);
        }
    };
    sync_dir(dir);
    remove_same_file(src, &src_meta)?;
    sync_dir(dir);
    Ok(stats)
}

/// Compresses `src` into the new file `out` and verifies it, leaving `src`
/// alone; on failure `out` is removed. What [`archive_file`] does minus the
/// rename and the delete; the compression bench measures it.
pub fn compress_copy(src: &Path, out: &Path, level: i32) -> Result<CompressStats, ArchiveError> {
    let (src_file, src_meta) = open_regular(src)?;
    compress_verified(&src_file, &src_meta, src, out, level, |_| Ok(()))
        .inspect_err(|e| remove_unless_not_ours(out, e))
}

/// Removes our half-written output after a failure, unless the failure was
/// that the name already existed: then the file there is someone else's.
fn remove_unless_not_ours(out: &Path, e: &ArchiveError) {
    if !matches!(e, ArchiveError::Exists { path } if path == out) {
        let _ = std::fs::remove_file(out);
    }
}

/// Compression into `out` (created, never replaced), verification by
/// decompression against the digest of what was read, and a check that the
/// source did not grow meanwhile. The caller removes `out` on failure.
fn compress_verified(
    src_file: &File,
    src_meta: &Metadata,
    src: &Path,
    out: &Path,
    level: i32,
    before_verify: impl FnOnce(&Path) -> io::Result<()>,
) -> Result<CompressStats, ArchiveError> {
    let (want, bytes_out) = compress_to_temp(src_file, src_meta, src, out, level)?;
    before_verify(out).map_err(io_err(out))?;
    let got = verify_archive(out)?;
    if got != want {
        return Err(ArchiveError::Mismatch {
            path: out.to_path_buf(),
            want_len: want.len,
            want_hash: want.hex(),
            got_len: got.len,
            got_hash: got.hex(),
        });
    }
    // A writer that kept appending while we compressed: the archive would
    // miss its last lines, so the plain file must stay.
    let after = src_file.metadata().map_err(io_err(src))?.len();
    if after != want.len {
        return Err(ArchiveError::Changed {
            path: src.to_path_buf(),
            before: want.len,
            after,
        });
    }
    Ok(CompressStats {
        bytes_in: want.len,
        bytes_out,
    })
}

/// Streams `src` (exactly the `meta.len()` bytes it had when opened) through
/// the encoder into a new temp file, fsyncs it, and returns the digest of
/// what was read and the archive's size.
fn compress_to_temp(
    mut src: &File,
    meta: &Metadata,
    src_path: &Path,
    tmp: &Path,
    level: i32,
) -> Result<(Digest256, u64), ArchiveError> {
    let out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(tmp)
        .map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                ArchiveError::Exists {
                    path: tmp.to_path_buf(),
                }
            } else {
                io_err(tmp)(e)
            }
        })?;
    let want_len = meta.len();
    let mut enc = zstd::stream::write::Encoder::new(BufWriter::with_capacity(CHUNK, out), level)
        .map_err(io_err(tmp))?;
    enc.include_checksum(true).map_err(io_err(tmp))?;
    let mut sink = HashingSink::default();
    let mut buf = vec![0u8; CHUNK];
    let mut reader = (&mut src).take(want_len);
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(src_path)(e)),
        };
        sink.write_all(&buf[..n]).map_err(io_err(src_path))?;
        enc.write_all(&buf[..n]).map_err(io_err(tmp))?;
    }
    let digest = sink.finish();
    if digest.len != want_len {
        // Truncated under us (copytruncate by another tool).
        return Err(ArchiveError::Changed {
            path: src_path.to_path_buf(),
            before: want_len,
            after: digest.len,
        });
    }
    let out = enc
        .finish()
        .map_err(io_err(tmp))?
        .into_inner()
        .map_err(|e| io_err(tmp)(e.into_error()))?;
    out.sync_all().map_err(io_err(tmp))?;
    let bytes_out = out.metadata().map_err(io_err(tmp))?.len();
    Ok((digest, bytes_out))
}

/// Deletes `path` only if it is still the file described by `meta` (same
/// device and inode, regular): never a file swapped in meanwhile, never
/// through a symbolic link.
pub(crate) fn remove_same_file(path: &Path, meta: &Metadata) -> Result<(), ArchiveError> {
    let now = std::fs::symlink_metadata(path).map_err(io_err(path))?;
    if !now.is_file() || now.dev() != meta.dev() || now.ino() != meta.ino() {
        return Err(ArchiveError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    std::fs::remove_file(path).map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> Vec<u8> {
        let mut v = Vec::new();
        for i in 0..n {
            v.extend_from_slice(
                format!(
                    "{{\"ts\":\"2026-11-23T14:03:{:02}.412Z\",\"user_id\":\"u-{}\"}}\n",
                    i % 60,
                    i % 97
                )
                .as_bytes(),
            );
        }
        v
    }

    #[test]
    fn archive_decompresses_to_the_original_and_plain_file_is_gone() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("errors.log.20261123-000000");
        let data = sample(5000);
        std::fs::write(&src, &data).unwrap();
        let dst = d.path().join("errors.log.20261123-000000.zst");
        let stats = archive_file(&src, &dst, 3).unwrap();
        assert_eq!(stats.bytes_in, data.len() as u64);
        assert_eq!(stats.bytes_out, std::fs::metadata(&dst).unwrap().len());
        assert!(!src.exists());
        let back = zstd::decode_all(File::open(&dst).unwrap()).unwrap();
        assert_eq!(back, data);
        assert_eq!(verify_archive(&dst).unwrap().len, data.len() as u64);
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temp left behind");
    }

    #[test]
    fn verification_failure_keeps_plain_file_and_removes_temp() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("errors.log.1");
        let data = sample(3000);
        std::fs::write(&src, &data).unwrap();
        let dst = d.path().join("errors.log.20261123-000000.zst");
        let err = archive_file_with(&src, &dst, 3, |tmp| {
            let mut b = std::fs::read(tmp)?;
            let mid = b.len() / 2;
            b[mid] ^= 0xff;
            std::fs::write(tmp, b)
        })
        .unwrap_err();
        assert!(err.is_verify_failure(), "{err}");
        assert_eq!(std::fs::read(&src).unwrap(), data);
        assert!(!dst.exists());
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "bad temp removed");
    }

    #[test]
    fn truncated_and_garbage_archives_are_corrupt() {
        let d = tempfile::tempdir().unwrap();
        let good = zstd::encode_all(&sample(2000)[..], 3).unwrap();
        let trunc = d.path().join("a.zst");
        std::fs::write(&trunc, &good[..good.len() - 10]).unwrap();
        assert!(matches!(
            verify_archive(&trunc),
            Err(ArchiveError::Corrupt { .. })
        ));
        let junk = d.path().join("b.zst");
        std::fs::write(&junk, b"not zstd at all").unwrap();
        assert!(matches!(
            verify_archive(&junk),
            Err(ArchiveError::Corrupt { .. })
        ));
        let empty = d.path().join("c.zst");
        std::fs::write(&empty, b"").unwrap();
        assert!(matches!(
            verify_archive(&empty),
            Err(ArchiveError::Corrupt { .. })
        ));
    }

    #[test]
    fn symlink_source_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("secret");
        std::fs::write(&target, b"keep").unwrap();
        let link = d.path().join("errors.log.1");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = archive_file(&link, &d.path().join("x.zst"), 3).unwrap_err();
        assert!(matches!(err, ArchiveError::NotRegular { .. }), "{err}");
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        assert!(std::fs::symlink_metadata(&link).is_ok());
    }

    #[test]
    fn existing_temp_of_another_pass_is_left_alone() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("errors.log.1");
        std::fs::write(&src, sample(10)).unwrap();
        let dst = d.path().join("errors.log.20261123-000000.zst");
        let tmp = d.path().join(".errors.log.20261123-000000.zst.tmp");
        std::fs::write(&tmp, b"theirs").unwrap();
        assert!(matches!(
            archive_file(&src, &dst, 3),
            Err(ArchiveError::Exists { .. })
        ));
        assert_eq!(std::fs::read(&tmp).unwrap(), b"theirs");
        assert!(src.exists());
        let out = d.path().join("copy.zst");
        std::fs::write(&out, b"theirs").unwrap();
        assert!(compress_copy(&src, &out, 3).is_err());
        assert_eq!(std::fs::read(&out).unwrap(), b"theirs");
    }

    #[test]
    fn rename_never_replaces() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::write(&a, b"a").unwrap();
        std::fs::write(&b, b"b").unwrap();
        assert!(matches!(
            rename_noreplace(&a, &b),
            Err(ArchiveError::Exists { .. })
        ));
        assert_eq!(std::fs::read(&b).unwrap(), b"b");
    }
}
