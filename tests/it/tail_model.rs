//! Model-based test of the tailer (SPEC §6, §8 "no event lost"): random
//! sequences of writes, partial writes, rename rotation, copytruncate,
//! delete-and-recreate, clean restarts and crashes run against a real
//! directory, and a model says which lines must come out.
//!
//! The assertion is the one the daemon needs. Deliveries are "committed"
//! when the checkpoint taken after them is saved (the daemon saves detector
//! state with it); a crash throws away what was delivered since the last
//! save and restarts from that checkpoint. At the end, the committed stream
//! must hold every line of every file generation exactly once, in file
//! order, with its right line number: so after a crash a line may be
//! delivered again only if it came after the restored checkpoint.
//!
//! What the model allows to be lost, as SPEC §6 does: nothing. Lines written
//! between a copytruncate's copy and its truncate were never in either file;
//! the model writes nothing there. Two limits of any tailer are kept out of
//! the random walk on purpose, each with its reason:
//! - a file generation must have been seen (non-empty) by a saved
//!   checkpoint before it is rotated away, or a crash can restore a
//!   checkpoint that never heard of it; the model saves first when needed
//!   (the daemon checkpoints every second);
//! - a file is deleted only once consumed (deleting unread logs loses them
//!   by definition);
//! - a writer appends to a renamed file only if that file was known to the
//!   saved checkpoint with content (a file created and renamed between two
//!   looks is nobody's continuation), and only within `rotate_wait` of its
//!   previous write (after that the tailer lets it go, as SPEC §6 lets the
//!   rotator compress it).
//!
//! Rotations while the tailer is stopped (twice, one copy compressed by
//! another tool) and a log replaced by a copy of itself (running or
//! stopped) are operations of the walk too (SPEC §8).
//!
//! Cases: 64 by default, `PROPTEST_CASES` to change.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mcpwatch::event::Kind;
use mcpwatch::ingest::tail::Tailer;
use mcpwatch::state::TailCheckpoint;
use proptest::prelude::*;

const ROTATE_WAIT: Duration = Duration::from_secs(10);
const MAX_LINE: usize = 4096;

#[derive(Clone, Debug)]
enum Op {
    /// Append `n` complete lines (completing a held partial line first).
    Write {
        k: usize,
        n: u8,
        pad: u8,
        crlf: bool,
    },
    /// Append part of a line, no newline.
    Partial {
        k: usize,
        len: u8,
    },
    /// Finish the partial line (or write one line).
    Complete {
        k: usize,
        crlf: bool,
    },
    /// `mv log log.N`, then maybe create a new empty `log`.
    Rotate {
        k: usize,
        create: bool,
    },
    /// `cp log log.N; truncate log` with nothing written in between.
    CopyTruncate {
        k: usize,
    },
    /// `rm log`, then maybe create a new empty `log`.
    DeleteRecreate {
        k: usize,
        create: bool,
    },
    /// Rename a rotated file again (logrotate shifting `.1` to `.2`).
    Shift {
        pick: u8,
    },
    /// A writer that has not reopened yet appends to a renamed file, within
    /// `rotate_wait` of its last write.
    LateWrite {
        pick: u8,
        n: u8,
    },
    /// While the tailer is stopped (saved, then a new one): `mv log log.N`
    /// and new lines, maybe twice (logrotate shifting meanwhile), the older
    /// copy maybe compressed to `.zst` by another tool. The restart reads
    /// every copy it has not finished before the live file (SPEC §8).
    RotateWhileStopped {
        k: usize,
        n: u8,
        twice: bool,
        compress: bool,
    },
    /// `cp log t && mv t log` (`sed -i`, an editor, rsync): the same lines
    /// under a new inode, running or stopped; nothing is read twice.
    ReplaceByCopy {
        k: usize,
        stopped: bool,
    },
    Poll,
    Save,
    Restart,
    Crash,
    Tick {
        secs: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0usize..3;
    prop_oneof![
        6 => (k.clone(), 1u8..5, 0u8..40, any::<bool>())
            .prop_map(|(k, n, pad, crlf)| Op::Write { k, n, pad, crlf }),
        2 => (k.clone(), 0u8..30).prop_map(|(k, len)| Op::Partial { k, len }),
        2 => (k.clone(), any::<bool>()).prop_map(|(k, crlf)| Op::Complete { k, crlf }),
        2 => (k.clone(), any::<bool>()).prop_map(|(k, create)| Op::Rotate { k, create }),
        2 => k.clone().prop_map(|k| Op::CopyTruncate { k }),
        1 => (k.clone(), any::<bool>()).prop_map(|(k, create)| Op::DeleteRecreate { k, create }),
        1 => (k.clone(), 1u8..4, any::<bool>(), any::<bool>())
            .prop_map(|(k, n, twice, compress)| Op::RotateWhileStopped { k, n, twice, compress }),
        1 => (k, any::<bool>()).prop_map(|(k, stopped)| Op::ReplaceByCopy { k, stopped }),
        1 => any::<u8>().prop_map(|pick| Op::Shift { pick }),
        2 => (any::<u8>(), 1u8..4).prop_map(|(pick, n)| Op::LateWrite { pick, n }),
        3 => Just(Op::Poll),
        2 => Just(Op::Save),
        1 => Just(Op::Restart),
        1 => Just(Op::Crash),
        1 => (1u8..30).prop_map(|secs| Op::Tick { secs }),
    ]
}

/// One generation of a log's content: what one file (or a file after a
/// truncation) held from its first byte.
#[derive(Debug)]
struct Gen {
    kind: usize,
    /// Lines this generation must deliver, in order (line i has number i+1).
    lines: Vec<String>,
    /// The partial line written so far, if any.
    partial: Option<String>,
    /// A BOM is written before the first byte of this generation.
    bom_pending: bool,
    /// Bytes in the file.
    bytes: u64,
    /// Name after a rename rotation, while the file is still there.
    renamed: Option<String>,
    /// The file ends in a partial line that the model counts as a line.
    closed_partial: bool,
    last_write: Instant,
}

struct Model {
    dir: PathBuf,
    gens: Vec<Gen>,
    /// Current generation under each base name (None: no file).
    live: [Option<usize>; 3],
    /// Generations a saved checkpoint has seen with content.
    known: Vec<bool>,
    counter: u32,
    now: Instant,
    /// Read limit per file and poll (None: read to the end).
    limit: Option<u64>,
    tailer: Tailer,
    saved: Option<TailCheckpoint>,
    committed: Vec<(usize, u64, String)>,
    uncommitted: Vec<(usize, u64, String)>,
}

fn base(k: usize) -> &'static str {
    Kind::ALL[k].base_file()
}

/// When tailing began, for every tailer of one run: as the daemon passes
/// the wall clock at its first start (files older than this are history).
fn started_ms() -> i64 {
    static START: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *START.get_or_init(|| chrono::Utc::now().timestamp_millis() - 1_000)
}

fn new_tailer(dir: &Path, cp: Option<TailCheckpoint>, limit: Option<u64>) -> Tailer {
    let mut t = Tailer::new(dir, MAX_LINE, cp)
        .with_rotate_wait(ROTATE_WAIT)
        .with_since(started_ms());
    if let Some(l) = limit {
        t.set_read_limit(l);
    }
    t
}

impl Model {
    fn path(&self, k: usize) -> PathBuf {
        self.dir.join(base(k))
    }

    fn new_gen(&mut self, k: usize) -> usize {
        let id = self.gens.len();
        self.gens.push(Gen {
            kind: k,
            lines: Vec::new(),
            partial: None,
            bom_pending: id.is_multiple_of(3),
            bytes: 0,
            renamed: None,
            closed_partial: false,
            last_write: self.now,
        });
        self.known.push(false);
        id
    }

    fn append(&mut self, k: usize, text: &str) {
        let g = match self.live[k] {
            Some(g) => g,
            None => {
                let g = self.new_gen(k);
                self.live[k] = Some(g);
                g
            }
        };
        let mut bytes = Vec::new();
        if self.gens[g].bom_pending {
            bytes.extend(b"\xEF\xBB\xBF");
            self.gens[g].bom_pending = false;
        }
        bytes.extend(text.as_bytes());
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(k))
            .unwrap();
        f.write_all(&bytes).unwrap();
        self.gens[g].bytes += bytes.len() as u64;
        self.gens[g].last_write = self.now;
    }

    /// Prefix of the next line of generation `g`: unique per line.
    fn next_prefix(&self, g: usize) -> String {
        format!("g{g:04}-s{:04}-", self.gens[g].lines.len())
    }

    fn live_gen(&mut self, k: usize) -> usize {
        match self.live[k] {
            Some(g) => g,
            None => {
                // creating the file happens at the first write
                let g = self.new_gen(k);
                self.live[k] = Some(g);
                g
            }
        }
    }

    fn complete(&mut self, k: usize, crlf: bool) {
        let g = self.live_gen(k);
        let eol = if crlf { "\r\n" } else { "\n" };
        match self.gens[g].partial.take() {
            Some(p) => {
                self.append(k, &format!("end{eol}"));
                self.gens[g].lines.push(format!("{p}end"));
            }
            None => {
                let text = format!("{}one", self.next_prefix(g));
                self.append(k, &format!("{text}{eol}"));
                self.gens[g].lines.push(text);
            }
        }
    }

    /// The generation leaves the base name: a held partial line will come
    /// out as it is after `rotate_wait`.
    fn close(&mut self, g: usize) {
        if let Some(p) = self.gens[g].partial.take() {
            self.gens[g].lines.push(p);
            self.gens[g].closed_partial = true;
        }
    }

    /// Saves first when a generation about to be rotated away is unknown to
    /// the saved checkpoint (see the module comment).
    fn ensure_known(&mut self, k: usize) {
        if let Some(g) = self.live[k]
            && !self.known[g]
            && self.gens[g].bytes > 0
        {
            self.save();
        }
    }

    /// One poll; returns whether every file was read to its end.
    fn poll(&mut self) -> bool {
        let batch = self.tailer.poll(self.now).unwrap();
        assert!(batch.errors.is_empty(), "errors: {:?}", batch.errors);
        assert!(batch.rejected.is_empty(), "rejected: {:?}", batch.rejected);
        for (l, bytes) in batch.iter() {
            let text = String::from_utf8(bytes.to_vec()).expect("utf-8 line");
            let g: usize = text
                .get(1..5)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| {
                    panic!(
                        "unexpected line {text:?} from {} line {}",
                        l.file, l.line_no
                    )
                });
            assert_eq!(
                Kind::ALL[self.gens[g].kind],
                l.kind,
                "line {text:?} from {}",
                l.file
            );
            self.uncommitted.push((g, l.line_no, text));
        }
        batch.caught_up
    }

    fn save(&mut self) {
        self.poll();
        self.committed.append(&mut self.uncommitted);
        self.saved = Some(self.tailer.checkpoint());
        for k in 0..3 {
            if let Some(g) = self.live[k]
                && self.gens[g].bytes > 0
            {
                self.known[g] = true;
            }
        }
    }

    fn apply(&mut self, op: &Op) {
        self.now += Duration::from_secs(1);
        match *op {
            Op::Write { k, n, pad, crlf } => {
                let g = self.live_gen(k);
                if self.gens[g].partial.is_some() {
                    self.complete(k, crlf);
                }
                let eol = if crlf { "\r\n" } else { "\n" };
                let mut chunk = String::new();
                for _ in 0..n {
                    let text = format!("{}{}", self.next_prefix(g), "x".repeat(pad as usize));
                    chunk.push_str(&text);
                    chunk.push_str(eol);
                    self.gens[g].lines.push(text);
                }
                self.append(k, &chunk);
            }
            Op::Partial { k, len } => {
                let g = self.live_gen(k);
                let more = "p".repeat(len as usize);
                let (write, whole) = match self.gens[g].partial.take() {
                    Some(p) => (more.clone(), format!("{p}{more}")),
                    None => {
                        let s = format!("{}{more}", self.next_prefix(g));
                        (s.clone(), s)
                    }
                };
                self.append(k, &write);
                self.gens[g].partial = Some(whole);
            }
            Op::Complete { k, crlf } => self.complete(k, crlf),
            Op::Rotate { k, create } => {
                if !self.path(k).exists() {
                    return;
                }
                self.ensure_known(k);
                self.counter += 1;
                let to = if self.counter.is_multiple_of(2) {
                    format!("{}.{}", base(k), self.counter)
                } else {
                    format!("{}.20261123-0000{:02}", base(k), self.counter % 100)
                };
                fs::rename(self.path(k), self.dir.join(&to)).unwrap();
                if let Some(g) = self.live[k].take() {
                    self.close(g);
                    self.gens[g].renamed = Some(to);
                }
                if create {
                    fs::File::create(self.path(k)).unwrap();
                    let g = self.new_gen(k);
                    self.live[k] = Some(g);
                }
            }
            Op::CopyTruncate { k } => {
                if !self.path(k).exists() {
                    return;
                }
                self.ensure_known(k);
                self.counter += 1;
                let to = self.dir.join(format!("{}.{}", base(k), self.counter));
                fs::copy(self.path(k), to).unwrap();
                OpenOptions::new()
                    .write(true)
                    .open(self.path(k))
                    .unwrap()
                    .set_len(0)
                    .unwrap();
                if let Some(g) = self.live[k].take() {
                    self.close(g);
                }
                let g = self.new_gen(k);
                self.live[k] = Some(g);
            }
            Op::DeleteRecreate { k, create } => {
                if !self.path(k).exists() {
                    return;
                }
                if let Some(g) = self.live[k]
                    && self.gens[g].partial.is_some()
                {
                    self.complete(k, false);
                }
                while !self.poll() {}
                self.save();
                fs::remove_file(self.path(k)).unwrap();
                if let Some(g) = self.live[k].take() {
                    self.close(g);
                }
                if create {
                    fs::File::create(self.path(k)).unwrap();
                    let g = self.new_gen(k);
                    self.live[k] = Some(g);
                }
            }
            Op::Shift { pick } => {
                let cands: Vec<usize> = (0..self.gens.len())
                    .filter(|&g| self.gens[g].renamed.is_some())
                    .collect();
                if cands.is_empty() {
                    return;
                }
                let g = cands[pick as usize % cands.len()];
                self.counter += 1;
                let to = format!("{}.{}", base(self.gens[g].kind), self.counter);
                let from = self.gens[g].renamed.replace(to.clone()).unwrap();
                fs::rename(self.dir.join(from), self.dir.join(to)).unwrap();
            }
            Op::LateWrite { pick, n } => {
                let now = self.now;
                let cands: Vec<usize> = (0..self.gens.len())
                    .filter(|&g| {
                        let r#gen = &self.gens[g];
                        r#gen.renamed.is_some()
                            && self.known[g]
                            && !r#gen.closed_partial
                            && now.duration_since(r#gen.last_write) < ROTATE_WAIT
                    })
                    .collect();
                if cands.is_empty() {
                    return;
                }
                let g = cands[pick as usize % cands.len()];
                let mut chunk = String::new();
                for _ in 0..n {
                    let text = format!("{}late", self.next_prefix(g));
                    chunk.push_str(&text);
                    chunk.push('\n');
                    self.gens[g].lines.push(text);
                }
                let path = self.dir.join(self.gens[g].renamed.as_ref().unwrap());
                let mut f = OpenOptions::new().append(true).open(path).unwrap();
                f.write_all(chunk.as_bytes()).unwrap();
                self.gens[g].bytes += chunk.len() as u64;
                self.gens[g].last_write = now;
            }
            Op::RotateWhileStopped {
                k,
                n,
                twice,
                compress,
            } => {
                self.save();
                let mut first_rotated = None;
                for _ in 0..(1 + usize::from(twice)) {
                    if self.path(k).exists() {
                        // Numbered names only: a restart reads a copy it
                        // never saw only under SPEC §6's names.
                        self.counter += 1;
                        let to = format!("{}.{}", base(k), self.counter);
                        fs::rename(self.path(k), self.dir.join(&to)).unwrap();
                        if let Some(g) = self.live[k].take() {
                            self.close(g);
                            self.gens[g].renamed = Some(to);
                            first_rotated.get_or_insert(g);
                        }
                    }
                    self.apply(&Op::Write {
                        k,
                        n,
                        pad: 3,
                        crlf: false,
                    });
                }
                if compress && let Some(g) = first_rotated {
                    let plain = self.dir.join(self.gens[g].renamed.take().unwrap());
                    let data = fs::read(&plain).unwrap();
                    let mut zst = plain.clone().into_os_string();
                    zst.push(".zst");
                    fs::write(zst, zstd::encode_all(&data[..], 1).unwrap()).unwrap();
                    fs::remove_file(plain).unwrap();
                }
                self.tailer = new_tailer(&self.dir, self.saved.clone(), self.limit);
            }
            Op::ReplaceByCopy { k, stopped } => {
                // A copy is known by its first line: one must have ended.
                let Some(g) = self.live[k] else { return };
                if self.gens[g].lines.is_empty() || !self.path(k).exists() {
                    return;
                }
                if stopped {
                    self.save();
                }
                let tmp = self.dir.join(format!(".{}.tmp", base(k)));
                fs::copy(self.path(k), &tmp).unwrap();
                fs::rename(&tmp, self.path(k)).unwrap();
                if stopped {
                    self.tailer = new_tailer(&self.dir, self.saved.clone(), self.limit);
                }
            }
            Op::Poll => {
                self.poll();
            }
            Op::Save => self.save(),
            Op::Restart => {
                self.save();
                self.tailer = new_tailer(&self.dir, self.saved.clone(), self.limit);
            }
            Op::Crash => {
                self.uncommitted.clear();
                self.tailer = new_tailer(&self.dir, self.saved.clone(), self.limit);
            }
            Op::Tick { secs } => self.now += Duration::from_secs(u64::from(secs)),
        }
    }

    /// Lets every rotated file's wait run out, reads all, saves, and checks
    /// the committed stream against the model.
    fn finish(mut self) -> Result<(), TestCaseError> {
        let mut polls = 0;
        while !self.poll() {
            polls += 1;
            prop_assert!(polls < 100_000, "never caught up");
        }
        self.now += ROTATE_WAIT * 2;
        self.poll();
        self.now += ROTATE_WAIT * 2;
        self.save();
        let mut got: BTreeMap<usize, Vec<(u64, String)>> = BTreeMap::new();
        for (g, line_no, text) in self.committed {
            got.entry(g).or_default().push((line_no, text));
        }
        for (g, generation) in self.gens.iter().enumerate() {
            let want: Vec<(u64, String)> = generation
                .lines
                .iter()
                .enumerate()
                .map(|(i, t)| (i as u64 + 1, t.clone()))
                .collect();
            let have = got.remove(&g).unwrap_or_default();
            prop_assert_eq!(have, want, "generation {} of {}", g, base(generation.kind));
        }
        prop_assert!(got.is_empty(), "lines of unknown generations: {:?}", got);
        Ok(())
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn every_complete_line_is_delivered_exactly_once_in_order(
        ops in prop::collection::vec(op(), 1..40),
        limit in prop_oneof![3 => Just(None), 1 => (1u64..200).prop_map(Some)],
    ) {
        let d = tempfile::tempdir().unwrap();
        let mut m = Model {
            dir: d.path().to_path_buf(),
            gens: Vec::new(),
            live: [None, None, None],
            known: Vec::new(),
            counter: 0,
            now: Instant::now(),
            limit,
            tailer: new_tailer(d.path(), None, limit),
            saved: None,
            committed: Vec::new(),
            uncommitted: Vec::new(),
        };
        for op in &ops {
            m.apply(op);
        }
        m.finish()?;
    }
}
