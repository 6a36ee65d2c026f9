//! Line framing: a byte stream → numbered lines, without their endings.
//!
//! [`LineReader`] reads big chunks (256 KiB) and splits them on `\n` with
//! `memchr`, lending each line as a slice of its own buffer, so a line costs
//! no allocation and no copy. It strips `\n` / `\r\n` and a UTF-8 BOM at the
//! start of the stream (SPEC §1). A line longer than the maximum is skipped to
//! its newline without being buffered whole (memory stays bounded by the
//! maximum plus one chunk) and reported as `too_long` with its number, so the
//! lines around it are unaffected.
//!
//! [`open_log`] opens a log or a `.zst` archive of one as a plain byte stream.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::event::RejectReason;

/// How much is read from the source at a time.
pub(crate) const CHUNK_BYTES: usize = 256 * 1024;

use crate::ingest::frame::Framer;

/// One line: its bytes (without line ending) or `Err(RejectReason::TooLong)`.
pub(crate) type LineResult<'a> = Result<&'a [u8], RejectReason>;

/// Splits a reader into lines. Lines are numbered from 1, counting every
/// line including empty and too-long ones.
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    max_line_bytes: usize,
    line_no: u64,
    /// Stream bytes consumed by the lines returned so far.
    offset: u64,
    framer: Framer,
    emit_partial: bool,
}

impl<R: Read> LineReader<R> {
    /// A reader whose last line is returned even without a newline (what
    /// `scan` wants: the file is complete).
    pub fn new(inner: R, max_line_bytes: usize) -> Self {
        LineReader {
            inner,
            buf: vec![0; CHUNK_BYTES],
            start: 0,
            end: 0,
            max_line_bytes,
            line_no: 0,
            offset: 0,
            framer: Framer::default(),
            emit_partial: true,
        }
    }

    /// Whether a last line without a newline is returned at end of input
    /// (default true). False: a partial line then stays buffered, uncounted
    /// in [`offset`](Self::offset), and a later `next_line` that finds more
    /// input completes it (only the tests set it: the tailer reads by
    /// position with a [`Framer`] of its own).
    #[cfg(test)]
    pub(crate) fn emit_partial(mut self, yes: bool) -> Self {
        self.emit_partial = yes;
        self
    }

    /// Number of the last line returned (0 before the first).
    pub(crate) fn line_no(&self) -> u64 {
        self.line_no
    }

    /// Bytes of the stream consumed by the lines returned so far, endings
    /// included; where reading would resume after a restart.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes read from the source but not yet returned as lines (a partial
    /// line, or what follows the last returned line): the source's position
    /// minus this is [`offset`](Self::offset), between lines (inside a
    /// too-long line, the bytes dropped of it are neither).
    pub(crate) fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// The source, positioned past what has been buffered (to set a reader
    /// aside and [`resume_at`](Self::resume_at) its offset later).
    pub(crate) fn into_inner(self) -> R {
        self.inner
    }

    /// Starts counting from a known place, for a tailer that resumes a file
    /// at a checkpoint: `inner` must be positioned at `offset`, which is
    /// the start of line `line_no + 1`. No BOM is looked for after offset 0.
    pub(crate) fn resume_at(mut self, offset: u64, line_no: u64) -> Self {
        self.offset = offset;
        self.line_no = line_no;
        self
    }

    /// The next line, `None` at end of input.
    pub fn next_line(&mut self) -> io::Result<Option<(u64, LineResult<'_>)>> {
        // Bytes at `start` known to hold no newline.
        let mut searched = 0;
        let found = loop {
            let held = &self.buf[self.start..self.end];
            let starts_file = self.offset == 0;
            if let Some(f) = self
                .framer
                .split(held, searched, starts_file, self.max_line_bytes)
            {
                break f;
            }
            if !self.framer.keep(held.len(), self.max_line_bytes) {
                self.start = self.end;
            }
            searched = self.end - self.start;
            if self.fill()? == 0 {
                if !self.emit_partial {
                    return Ok(None);
                }
                let held = &self.buf[self.start..self.end];
                match self.framer.finish(held, starts_file, self.max_line_bytes) {
                    Some(f) => break f,
                    None => return Ok(None),
                }
            }
        };
        let at = self.start;
        self.start += found.used;
        self.offset += found.len;
        self.line_no += 1;
        let line = found.line.map(|r| &self.buf[at + r.start..at + r.end]);
        Ok(Some((self.line_no, line)))
    }

    /// Reads more input behind `end`, compacting or growing the buffer as
    /// needed. Returns the number of bytes read (0 at end of input).
    /// Slices previously lent out stay valid until the next call only, which
    /// the borrow of `next_line` enforces.
    fn fill(&mut self) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            // Only while a line of up to the maximum is accumulating: the
            // framer drops a line past it, so growth stops at max + 4 + one
            // chunk.
            let grow = CHUNK_BYTES.max(self.buf.len() / 2);
            self.buf.resize(self.buf.len() + grow, 0);
        }
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Reads a log or archive front to back, handing each line (or its
/// `too_long` reject) to `visit` until it says stop: the one loop for a
/// pass over one file outside the merge.
pub(crate) fn each_line(
    path: &Path,
    max_line_bytes: usize,
    mut visit: impl FnMut(LineResult<'_>) -> std::ops::ControlFlow<()>,
) -> io::Result<()> {
    let mut lines = LineReader::new(open_log(path)?, max_line_bytes);
    while let Some((_, line)) = lines.next_line()? {
        if visit(line).is_break() {
            break;
        }
    }
    Ok(())
}

/// Opens a log file for reading: `.zst` archives are decompressed on the fly
/// (all frames), anything else is read as it is.
pub fn open_log(path: &Path) -> io::Result<Box<dyn Read + Send>> {
    Ok(Box::new(LogStream::open(path)?))
}

/// A log or a `.zst` archive of one, read as a plain byte stream, that can
/// be set aside to its file descriptor alone ([`into_file`]) and resumed
/// later ([`resume`]): a merge of months of archives keeps every file open,
/// and a file waiting for its turn then holds no buffer and no decoder.
///
/// The bytes read from the file (before decompression) are added to an
/// optional counter, for progress bars over on-disk sizes.
///
/// [`into_file`]: LogStream::into_file
/// [`resume`]: LogStream::resume
pub(crate) enum LogStream {
    Plain(CountedFile),
    Zst(zstd::stream::read::Decoder<'static, io::BufReader<CountedFile>>),
}

/// A file whose bytes read are added to a counter, when there is one.
pub(crate) struct CountedFile {
    file: File,
    counter: Option<Arc<AtomicU64>>,
}

impl Read for CountedFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        if let Some(c) = &self.counter {
            c.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

impl LogStream {
    /// Opens `path`, decompressing when it ends in `.zst`.
    pub(crate) fn open(path: &Path) -> io::Result<LogStream> {
        let zst = path.extension().is_some_and(|e| e == "zst");
        LogStream::new(File::open(path)?, zst, None)
    }

    /// The stream of `file` from where it stands (its start, when just
    /// opened; a pipe, say, cannot be sought).
    pub(crate) fn new(
        file: File,
        zst: bool,
        counter: Option<Arc<AtomicU64>>,
    ) -> io::Result<LogStream> {
        let file = CountedFile { file, counter };
        Ok(if zst {
            LogStream::Zst(zstd::Decoder::new(file)?)
        } else {
            LogStream::Plain(file)
        })
    }

    /// The stream of `file` from byte `offset` of its (decompressed)
    /// content: a seek for a plain file; an archive is decompressed from
    /// its start to there (those bytes are not counted again).
    pub(crate) fn resume(
        mut file: File,
        zst: bool,
        offset: u64,
        counter: Option<Arc<AtomicU64>>,
    ) -> io::Result<LogStream> {
        use std::io::{Seek, SeekFrom};
        if !zst {
            file.seek(SeekFrom::Start(offset))?;
            return LogStream::new(file, false, counter);
        }
        file.seek(SeekFrom::Start(0))?;
        let mut stream = LogStream::new(file, true, None)?;
        let skipped = io::copy(&mut (&mut stream).take(offset), &mut io::sink())?;
        if skipped < offset {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the archive ends at byte {skipped}, before byte {offset} read earlier"),
            ));
        }
        if let LogStream::Zst(d) = &mut stream {
            d.get_mut().get_mut().counter = counter;
        }
        Ok(stream)
    }

    /// The file descriptor alone (buffers and decoder dropped). `unread`
    /// bytes of a plain file were read ahead and will be read again on
    /// [`resume`](Self::resume): they are taken off the counter.
    pub(crate) fn into_file(self, unread: usize) -> File {
        let counted = match self {
            LogStream::Plain(f) => {
                if let Some(c) = &f.counter {
                    // Counted when read: the counter holds at least these.
                    c.fetch_sub(unread as u64, Ordering::Relaxed);
                }
                f
            }
            LogStream::Zst(d) => d.finish().into_inner(),
        };
        counted.file
    }
}

impl Read for LogStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            LogStream::Plain(f) => f.read(buf),
            LogStream::Zst(d) => d.read(buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes per read, to exercise
    /// lines split across reads.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn collect<R: Read>(mut r: LineReader<R>) -> Vec<(u64, Result<String, RejectReason>)> {
        let mut out = Vec::new();
        while let Some((n, line)) = r.next_line().expect("read") {
            out.push((n, line.map(|l| String::from_utf8_lossy(l).into_owned())));
        }
        out
    }

    fn lines(data: &[u8], max: usize) -> Vec<(u64, Result<String, RejectReason>)> {
        let whole = collect(LineReader::new(data, max));
        for step in [1, 2, 3, 7] {
            let trickled = collect(LineReader::new(Trickle { data, step }, max));
            assert_eq!(trickled, whole, "step {step}");
        }
        whole
    }

    fn ok(n: u64, s: &str) -> (u64, Result<String, RejectReason>) {
        (n, Ok(s.to_owned()))
    }

    #[test]
    fn lf_and_crlf_endings_are_stripped() {
        assert_eq!(
            lines(b"a\nb\r\nc\r\n\n", 100),
            vec![ok(1, "a"), ok(2, "b"), ok(3, "c"), ok(4, "")]
        );
    }

    #[test]
    fn bom_at_stream_start_is_stripped_only_there() {
        assert_eq!(
            lines(b"\xEF\xBB\xBFa\n\xEF\xBB\xBFb\n", 100),
            vec![ok(1, "a"), (2, Ok("\u{feff}b".to_owned()))]
        );
        assert_eq!(lines(b"\xEF\xBB\xBF", 100), vec![]);
        assert_eq!(lines(b"\xEF\xBB", 100), vec![ok(1, "\u{fffd}")]);
    }

    #[test]
    fn last_line_without_newline_is_returned() {
        assert_eq!(lines(b"a\nlast", 100), vec![ok(1, "a"), ok(2, "last")]);
        assert_eq!(lines(b"", 100), vec![]);
    }

    #[test]
    fn too_long_line_in_the_middle_keeps_neighbours() {
        let mut data = b"before\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 50));
        data.extend(b"\nafter\n");
        assert_eq!(
            lines(&data, 10),
            vec![
                ok(1, "before"),
                (2, Err(RejectReason::TooLong)),
                ok(3, "after")
            ]
        );
    }

    #[test]
    fn line_of_exactly_the_maximum_passes_even_with_crlf() {
        assert_eq!(
            lines(b"0123456789\r\n01234567890\r\nz", 10),
            vec![
                ok(1, "0123456789"),
                (2, Err(RejectReason::TooLong)),
                ok(3, "z")
            ]
        );
    }

    #[test]
    fn too_long_last_line_without_newline() {
        assert_eq!(
            lines(b"a\nxxxxxxxxxxxxxxxxxxxxxxxx", 5),
            vec![ok(1, "a"), (2, Err(RejectReason::TooLong))]
        );
    }

    #[test]
    fn huge_line_is_skipped_with_bounded_memory() {
        let max = 1000;
        let mut data = Vec::new();
        data.extend(b"a\n");
        data.extend(std::iter::repeat_n(b'y', 5 * CHUNK_BYTES));
        data.extend(b"\nb\n");
        let mut r = LineReader::new(&data[..], max);
        let mut got = Vec::new();
        while let Some((n, line)) = r.next_line().expect("read") {
            got.push((n, line.map(<[u8]>::to_vec)));
        }
        assert_eq!(
            got,
            vec![
                (1, Ok(b"a".to_vec())),
                (2, Err(RejectReason::TooLong)),
                (3, Ok(b"b".to_vec()))
            ]
        );
        assert!(
            r.buf.len() <= 2 * CHUNK_BYTES,
            "buffer grew to {}",
            r.buf.len()
        );
        assert_eq!(r.offset(), data.len() as u64);
    }

    #[test]
    fn lines_longer_than_a_chunk_but_within_max_are_whole() {
        let long = "z".repeat(CHUNK_BYTES * 2 + 17);
        let data = format!("{long}\nq");
        let got = lines(data.as_bytes(), CHUNK_BYTES * 3);
        assert_eq!(got, vec![ok(1, &long), ok(2, "q")]);
    }

    #[test]
    fn partial_last_line_waits_when_not_emitting() {
        let mut r = LineReader::new(&b"\xEF\xBB\xBFa\r\npart"[..], 100).emit_partial(false);
        let (n, l) = r.next_line().expect("read").expect("line");
        assert_eq!((n, l), (1, Ok(&b"a"[..])));
        assert!(r.next_line().expect("read").is_none());
        assert_eq!(
            r.offset(),
            6,
            "BOM + a\\r\\n; the partial line is not consumed"
        );
    }

    #[test]
    fn resume_counts_from_the_checkpoint() {
        let mut r = LineReader::new(&b"\xEF\xBB\xBFc\n"[..], 100).resume_at(40, 7);
        let (n, l) = r.next_line().expect("read").expect("line");
        assert_eq!((n, l), (8, Ok(&b"\xEF\xBB\xBFc"[..])));
        assert_eq!(r.offset(), 45);
    }

    #[test]
    fn zst_input_is_decoded_and_plain_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = b"\xEF\xBB\xBF{\"ts\":1}\r\n{\"ts\":2}\n{\"ts\":3}";
        let zst = dir.path().join("tool-usage.log.20261102-000000.zst");
        std::fs::write(&zst, zstd::encode_all(&text[..], 3).expect("encode")).expect("write");
        let plain = dir.path().join("tool-usage.log");
        std::fs::write(&plain, text).expect("write");
        for path in [&zst, &plain] {
            let r = LineReader::new(open_log(path).expect("open"), 100);
            assert_eq!(
                collect(r),
                vec![
                    ok(1, r#"{"ts":1}"#),
                    ok(2, r#"{"ts":2}"#),
                    ok(3, r#"{"ts":3}"#)
                ],
                "{}",
                path.display()
            );
        }
    }

    #[test]
    fn a_log_stream_set_aside_resumes_where_it_stopped() {
        let d = tempfile::tempdir().unwrap();
        let text: String = (0..5000).map(|i| format!("line {i}\n")).collect();
        let plain = d.path().join("tool-usage.log");
        let zst = d.path().join("tool-usage.log.1.zst");
        std::fs::write(&plain, &text).unwrap();
        std::fs::write(&zst, zstd::encode_all(text.as_bytes(), 3).unwrap()).unwrap();
        for (path, is_zst) in [(&plain, false), (&zst, true)] {
            let mut r = LineReader::new(LogStream::open(path).unwrap(), 1 << 20);
            for _ in 0..3 {
                r.next_line().unwrap();
            }
            let (offset, line) = (r.offset(), r.line_no());
            let unread = r.buffered();
            let file = r.into_inner().into_file(unread);
            let stream = LogStream::resume(file, is_zst, offset, None).unwrap();
            let mut r = LineReader::new(stream, 1 << 20).resume_at(offset, line);
            let (n, l) = r.next_line().unwrap().unwrap();
            assert_eq!((n, l.unwrap()), (4, &b"line 3"[..]), "{path:?}");
            let mut rest = 1;
            while r.next_line().unwrap().is_some() {
                rest += 1;
            }
            assert_eq!(rest, 4997);
        }
        // An archive shorter than the place to resume at is an error.
        let file = File::open(&zst).unwrap();
        let err = LogStream::resume(file, true, text.len() as u64 + 1, None)
            .err()
            .expect("past the end");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
