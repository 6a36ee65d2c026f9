//! Which files continue a log: at a restart, the checkpoint matched to the
//! files by their content (renamed, rotated twice, replaced by a copy,
//! compressed), the rotated copies made while the daemon was stopped, and
//! their order; while running, a copy put in the live file's place, the
//! copy a copytruncate left, and where a renamed file went.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::*;

/// The live file has the first line of a followed rotated file (a copy put
/// in its place: `sed -i`, an editor, rsync). Once that file has been read
/// to its end, the copy continues at its offset if it ends a line there
/// (SPEC §8) and the original is let go; otherwise, or when the original
/// went away, the copy is read from its beginning as a new file.
pub(super) fn continue_copy(b: &mut Base, now: Instant) {
    let Some(live) = b.live.as_mut() else {
        return;
    };
    let Some(fp) = live.continues else {
        return;
    };
    let Some(i) = b
        .rotated
        .iter()
        .position(|r| r.fp == Some(fp) || r.current_fingerprint() == Some(fp))
    else {
        live.continues = None;
        return;
    };
    let orig = &b.rotated[i];
    if !orig.at_end() && !orig.deleted {
        // Still being written or cut short by the read limit: wait.
        return;
    }
    let (offset, line) = (orig.offset, orig.line);
    live.continues = None;
    if live.resumable_at(offset) {
        live.offset = offset;
        live.read_pos = offset;
        live.line = line;
        live.idle_since = now;
        b.stats.copies_continued += 1;
        tracing::info!(
            file = %live.name,
            offset,
            "the log was replaced by a copy of itself; going on where it stopped"
        );
        // Its lines are the copy's: nothing of it is read again.
        b.rotated.remove(i);
    }
}

/// A followed file that was deleted, read to its end, while a copy of it
/// (same first line, longer) sits under a rotated name that nobody
/// follows: it was replaced by a copy and the copy then rotated
/// (copytruncate, rename) before the tailer looked. It goes on in the
/// copy from where it stopped: the copy holds its lines and more.
pub(super) fn adopt_copies(dir: &Path, base_name: &str, b: &mut Base, now: Instant) {
    for i in 0..b.rotated.len() {
        let t = &b.rotated[i];
        let Some(fp) = t.fp else { continue };
        if !t.deleted || t.zst.is_some() || t.read_pos < t.size {
            continue;
        }
        let followed = |md: &Metadata| {
            b.rotated
                .iter()
                .chain(b.live.iter())
                .any(|f| f.dev == md.dev() && f.ino == md.ino())
        };
        let (offset, line) = (t.offset, t.line);
        let found = rotated_candidates(dir, base_name, false)
            .into_iter()
            .filter(|(_, md)| !followed(md) && md.len() > offset)
            .find_map(|(name, _)| {
                let (file, md) = open_file(&dir.join(&name)).ok().flatten()?;
                let head = read_head(&file, FINGERPRINT_BYTES).ok()?;
                (fingerprint(&head) == Some(fp)).then_some((name, file, md))
            });
        let Some((name, file, md)) = found else {
            continue;
        };
        let mut c = Tracked::open(name.as_str().into(), file, &md, (0, fnv1a(&[])), 0, 0, now);
        if !c.resumable_at(offset) {
            continue;
        }
        let _ = c.verify_head();
        c.fp = Some(fp);
        c.offset = offset;
        c.read_pos = offset;
        c.line = line;
        c.rotated = true;
        tracing::info!(
            file = %c.name,
            offset,
            "a deleted log goes on in its copy under a rotated name"
        );
        b.rotated[i] = c;
    }
}

/// A file found at start-up that may continue a log.
pub(super) struct Candidate {
    pub(super) name: String,
    pub(super) md: Metadata,
    pub(super) fp: Option<Fingerprint>,
}

/// Opens the candidates of one log at start-up and computes their
/// fingerprints.
pub(super) fn candidates(dir: &Path, base_name: &str, out: &mut Batch) -> Vec<Candidate> {
    let mut found: Vec<(String, Metadata)> = Vec::new();
    match stat_file(&dir.join(base_name)) {
        Ok(Some(md)) => found.push((base_name.to_string(), md)),
        Ok(None) => {}
        Err(e) => out.errors.push(FileError {
            path: dir.join(base_name),
            error: e,
        }),
    }
    found.extend(rotated_candidates(dir, base_name, true));
    found
        .into_iter()
        .map(|(name, md)| {
            let fp = open_file(&dir.join(&name))
                .ok()
                .flatten()
                .and_then(|(f, _)| {
                    let head = if is_zst(&name) {
                        zst_head(&f, FINGERPRINT_BYTES)
                    } else {
                        read_head(&f, FINGERPRINT_BYTES)
                    };
                    head.ok()
                })
                .and_then(|h| fingerprint(&h));
            Candidate { name, md, fp }
        })
        .collect()
}

/// Matches the checkpoint to the files found at start-up (SPEC §8):
///
/// - a position with a fingerprint resumes in the file with that first
///   line, whatever its name, inode or compression (the same file renamed,
///   rotated twice, replaced by a copy, or compressed by another tool);
///   one without (its first line was incomplete, or an older checkpoint)
///   resumes in the file with its device, inode and head;
/// - it resumes at its offset only if the file ends a line there;
///   otherwise the file is read from its beginning as a new one;
/// - a file read to its end before ([`Finished`]) is not read again;
/// - an unknown rotated copy is read from its beginning when it was
///   modified after tailing began in this state directory (rotated while
///   the daemon was stopped);
/// - rotated files are then read oldest first, by the ts of their first
///   line (their names' age order when that cannot be told).
pub(super) fn restore(
    dir: &Path,
    b: &mut Base,
    mut positions: Vec<FilePosition>,
    since_ms: Option<i64>,
    now: Instant,
    out: &mut Batch,
) {
    let base_name = b.kind.base_file();
    let cands = candidates(dir, base_name, out);
    let mut claimed = vec![false; cands.len()];

    // The same file twice (the original and its copy, both followed when
    // the checkpoint was written): the further position wins.
    positions.sort_by_key(|p| std::cmp::Reverse(p.offset));
    let mut seen: Vec<Fingerprint> = Vec::new();
    positions.retain(|p| match parse_fingerprint(p.fingerprint.as_deref()) {
        Some(fp) if seen.contains(&fp) => false,
        Some(fp) => {
            seen.push(fp);
            true
        }
        None => true,
    });

    let mut opened: Vec<Tracked> = Vec::new();
    for pos in positions {
        let found = match parse_fingerprint(pos.fingerprint.as_deref()) {
            Some(fp) => {
                // Same first line; the same inode first, then the live
                // name, then a plain file over an archive.
                let rank = |c: &Candidate| {
                    (
                        !(c.md.dev() == pos.dev && c.md.ino() == pos.ino),
                        c.name != base_name,
                        is_zst(&c.name),
                    )
                };
                (0..cands.len())
                    .filter(|&i| !claimed[i] && cands[i].fp == Some(fp))
                    .min_by_key(|&i| rank(&cands[i]))
            }
            None => by_inode_and_head(dir, base_name, &pos, &cands, &claimed),
        };
        let Some(ci) = found else {
            b.stats.restore_not_found += 1;
            tracing::info!(
                file = %pos.name,
                offset = pos.offset,
                "checkpointed file is gone (deleted, or compressed once read); going on without it"
            );
            continue;
        };
        claimed[ci] = true;
        let c = &cands[ci];
        let Some(mut t) = open_candidate(dir, c, now, out) else {
            continue;
        };
        if t.same_file(&pos) || t.resumable_at(pos.offset) {
            t.offset = pos.offset;
            t.read_pos = pos.offset;
            t.line = pos.line;
        } else {
            tracing::warn!(
                file = %c.name,
                offset = pos.offset,
                "file does not end a line at its checkpointed offset; reading it from its beginning as a new file"
            );
        }
        opened.push(t);
    }

    // Files read to their end before: a plain one that grew since is read
    // on from where it ended; nothing else of them is read again.
    let mut still_there: Vec<bool> = vec![false; b.finished.len()];
    for (k, f) in b.finished.iter().enumerate() {
        let fp = parse_fingerprint(f.fingerprint.as_deref());
        for ci in 0..cands.len() {
            let c = &cands[ci];
            let same = match fp {
                Some(fp) => c.fp == Some(fp),
                // Its only line never ended: the same inode, still without
                // a complete first line.
                None => c.fp.is_none() && c.md.dev() == f.dev && c.md.ino() == f.ino,
            };
            if claimed[ci] || !same {
                continue;
            }
            claimed[ci] = true;
            still_there[k] = true;
            let c = &cands[ci];
            if is_zst(&c.name) || c.md.len() <= f.offset {
                continue;
            }
            if let Some(mut t) = open_candidate(dir, c, now, out)
                && t.resumable_at(f.offset)
            {
                t.offset = f.offset;
                t.read_pos = f.offset;
                t.line = f.line;
                opened.push(t);
            }
        }
    }
    // Forget finished files that are gone for good (compressed ones keep
    // their first line and so their entry).
    let mut k = 0;
    b.finished.retain(|_| {
        k += 1;
        still_there[k - 1]
    });

    // Rotated copies the checkpoint never saw: rotated while the daemon
    // was stopped, or before it ever ran (history: left to `scan`).
    for (ci, c) in cands.iter().enumerate() {
        if claimed[ci] || c.name == base_name || rotation_of(&c.name, base_name).is_none() {
            continue;
        }
        let recent = since_ms.is_some_and(|s| mtime_ms(&c.md) > s);
        if !recent {
            continue;
        }
        // A copy of a file already opened (same first line) is the same
        // lines again.
        if c.fp.is_some() && opened.iter().any(|t| t.fp == c.fp) {
            continue;
        }
        claimed[ci] = true;
        if let Some(t) = open_candidate(dir, c, now, out) {
            b.stats.restored_unknown += 1;
            tracing::info!(
                file = %c.name,
                "reading a rotated copy made while mcpwatch was stopped"
            );
            opened.push(t);
        }
    }

    let mut rotated: Vec<(Option<crate::event::Millis>, AgeRank, Tracked)> = Vec::new();
    for mut t in opened {
        if &*t.name == base_name && b.live.is_none() {
            b.live = Some(t);
            continue;
        }
        t.rotated = true;
        let ts = first_ts(&t, b.kind);
        let age = rotation_of(&t.name, base_name)
            .map(|(age, _)| age)
            .unwrap_or(AgeRank::Live);
        rotated.push((ts, age, t));
    }
    // Oldest first: by the first line's ts where all can be told, else by
    // the names' age order.
    if rotated.iter().all(|r| r.0.is_some()) {
        rotated.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    } else {
        rotated.sort_by(|a, b| a.1.cmp(&b.1));
    }
    b.rotated.extend(rotated.into_iter().map(|r| r.2));
}

/// The position of a checkpoint without fingerprint: the file with its
/// device, inode and head (possibly renamed), else one with its head alone
/// (a copy made by copytruncate, or the same file on a new device number).
pub(super) fn by_inode_and_head(
    dir: &Path,
    base_name: &str,
    pos: &FilePosition,
    cands: &[Candidate],
    claimed: &[bool],
) -> Option<usize> {
    // With no head (nothing read yet) an inode number alone is too weak
    // across a restart: a deleted file's inode is soon reused, e.g. by the
    // copy of a copytruncate. Then only the same name will do.
    let usable = |i: usize| {
        let c = &cands[i];
        !claimed[i]
            && !is_zst(&c.name)
            && (pos.head_len > 0 || c.name == pos.name)
            && c.md.len() >= pos.offset
            && head_matches(&dir.join(&c.name), pos.head_len, pos.head_hash)
    };
    // An archive read before (its only line never ended): the very same
    // file under the same name.
    let same_archive = |i: usize| {
        let c = &cands[i];
        !claimed[i] && is_zst(&c.name) && c.name == pos.name
    };
    let by_id = (0..cands.len()).find(|&i| {
        cands[i].md.dev() == pos.dev
            && cands[i].md.ino() == pos.ino
            && (usable(i) || same_archive(i))
    });
    by_id.or_else(|| {
        if pos.head_len == 0 {
            return None;
        }
        // The base name first (same file, new device number), then the
        // newest copy.
        (0..cands.len())
            .filter(|&i| usable(i))
            .max_by_key(|&i| (cands[i].name == base_name, mtime(&cands[i].md)))
    })
}

pub(super) fn open_candidate(
    dir: &Path,
    c: &Candidate,
    now: Instant,
    out: &mut Batch,
) -> Option<Tracked> {
    let path = dir.join(&c.name);
    let (file, md) = match open_file(&path) {
        Ok(Some(f)) => f,
        Ok(None) => return None,
        Err(e) => {
            out.errors.push(FileError { path, error: e });
            return None;
        }
    };
    match Tracked::open_named(
        c.name.as_str().into(),
        file,
        &md,
        (0, fnv1a(&[])),
        0,
        0,
        now,
    ) {
        Ok(mut t) => {
            let _ = t.verify_head();
            Some(t)
        }
        Err(e) => {
            out.errors.push(FileError { path, error: e });
            None
        }
    }
}

/// The ts of a file's first line, to order rotated copies.
pub(super) fn first_ts(t: &Tracked, kind: Kind) -> Option<crate::event::Millis> {
    let head = match &t.zst {
        None => read_head(&t.file, FINGERPRINT_BYTES),
        Some(_) => zst_head(&t.file, FINGERPRINT_BYTES),
    }
    .ok()?;
    let line = &head[..memchr::memchr(b'\n', &head).unwrap_or(head.len())];
    let parser = crate::ingest::parse::Parser {
        max_line_bytes: FINGERPRINT_BYTES,
        now_ms: i64::MAX / 4,
    };
    parser.parse(kind, line).ok().map(|ev| ev.ts)
}

pub(super) fn mtime_ms(md: &Metadata) -> i64 {
    md.modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64)
}

/// File `i` of `b` (rotated index, or the live one at `rotated.len()`)
/// shrank or its head changed: finds the copy a copytruncate left (same
/// head, at least as long as what was consumed, not followed already) and
/// opens it at the consumed position.
pub(super) fn find_copy(
    dir: &Path,
    base_name: &str,
    b: &Base,
    i: usize,
    now: Instant,
) -> Option<Tracked> {
    let t = if i == b.rotated.len() {
        b.live.as_ref()
    } else {
        b.rotated.get(i)
    }?;
    let followed = |md: &Metadata| {
        b.rotated
            .iter()
            .chain(b.live.iter())
            .any(|f| f.dev == md.dev() && f.ino == md.ino())
    };
    let mut best: Option<(String, Metadata)> = None;
    if t.head_len > 0 {
        for (name, md) in rotated_candidates(dir, base_name, false) {
            if followed(&md)
                || md.len() < t.offset
                || !head_matches(&dir.join(&name), t.head_len, t.head_hash)
            {
                continue;
            }
            if best.as_ref().is_none_or(|(_, b)| mtime(&md) > mtime(b)) {
                best = Some((name, md));
            }
        }
    }
    let found = best.and_then(|(name, _)| {
        open_file(&dir.join(&name))
            .ok()
            .flatten()
            .map(|f| (name, f))
    });
    let Some((name, (file, md))) = found else {
        if t.read_pos > t.offset {
            tracing::warn!(
                file = %t.name,
                offset = t.offset,
                "file truncated and no copy with the same head found; its partial last line is lost"
            );
        }
        return None;
    };
    let mut c = Tracked::open(
        name.as_str().into(),
        file,
        &md,
        (t.head_len, t.head_hash),
        t.offset,
        t.line,
        now,
    );
    c.rotated = true;
    Some(c)
}

/// Finds the current name of a file that left the base name, by device +
/// inode, among the rotated names in the directory.
pub(super) fn locate(dir: &Path, base_name: &str, t: &Tracked) -> Option<Arc<str>> {
    rotated_candidates(dir, base_name, false)
        .into_iter()
        .find(|(_, md)| md.dev() == t.dev && md.ino() == t.ino)
        .map(|(n, _)| n.into())
}

/// Regular files named `<base>.<something>` directly in `dir`, except
/// compressed ones (while running, a compressed file is never a
/// continuation to read), or with `archives` also the `.zst` archives of
/// SPEC §6's names.
pub(super) fn rotated_candidates(
    dir: &Path,
    base_name: &str,
    archives: bool,
) -> Vec<(String, Metadata)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let prefix = format!("{base_name}.");
    let mut v = Vec::new();
    for entry in rd.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        // `.zst` archives by SPEC §6's names, when asked for (a restart
        // looks for copies compressed while it was stopped).
        let archive = archives && is_zst(&name) && rotation_of(&name, base_name).is_some();
        if !name.starts_with(&prefix)
            || (!archive
                && [".zst", ".gz", ".xz", ".bz2", ".tmp"]
                    .iter()
                    .any(|s| name.ends_with(s)))
        {
            continue;
        }
        // DirEntry::metadata does not follow symbolic links.
        if let Ok(md) = entry.metadata()
            && md.is_file()
        {
            v.push((name, md));
        }
    }
    v
}
